#!/usr/bin/env python
"""Latency of translating one PHOENIX-length clip with a model directory (flallm-translate's path).

For each architecture: a model with random weights (same code path as a trained one) is saved as a
fairseq checkpoint, exported with flallm-export, and one mp4 clip (default 116 frames of 210 x 260 px,
PHOENIX-2014-T's average length and size) is translated:

* ``load``: ``SignTranslator.from_pretrained(MODEL_DIR)`` (model load, in process);
* ``translate``: ``t.translate(clip)`` after one warm-up call, median of ``--repeat`` (decode the mp4,
  resize/crop, visual encoder, beam search); ``t.encode(clip)`` times the part before the beam search;
* ``cold CLI``: wall time of ``flallm-translate MODEL_DIR clip.mp4`` in a fresh process (interpreter,
  imports, load, translate).

Random weights rarely emit ``</s>`` early, so the number of generated tokens is printed: beam search
time grows with it (``--max-len-b`` caps it, as it would for a trained model's sentence length).

On a shared CPU run it with ``OMP_NUM_THREADS=1``: OpenMP threads spinning against other processes
slow every figure several times.

    python benchmarks/translate_latency.py                                   # tiny models, CPU
    python benchmarks/translate_latency.py --archs light_t,sign_mbart_large --max-len-b 30
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def make_data_dir(root, vocab, resize, crop):
    """stage2_speed's minimal data directory, with this clip's frame size."""
    from stage2_speed import make_data_dir as minimal_data_dir

    minimal_data_dir(root, vocab, "video")
    with open(os.path.join(root, "config.yaml"), "a", encoding="utf-8") as f:
        f.write(f"resize: {resize}\ncrop: {crop}\nsampling_rate: 0.25\n")
    return root


def random_checkpoint(arch, data, path, device):
    """A fairseq checkpoint of ``arch`` with random weights (cfg saved as fairseq's trainer saves it)."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    margs = options.parse_args_and_arch(options.get_training_parser(), [
        data, "--user-dir", os.path.join(REPO, "flallm_plugin"), "--task", "sign_translation", "--arch", arch,
        "--visual-backbone-weights", "none",
    ] + (["--pretrained-mbart", "none", "--load-visual-encoder-from", "none"] if arch.startswith("sign_mbart") else [])
      + (["--cpu"] if device == "cpu" else []))
    task = tasks.setup_task(margs)
    model = task.build_model(margs)
    cfg = convert_namespace_to_omegaconf(margs)
    state = {
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "args": None,
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "x", "optimizer_name": "x", "lr_scheduler_state": {}, "num_updates": 0}],
        "extra_state": {},
    }
    torch.save(state, path)
    return sum(p.numel() for p in model.parameters())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="light_t_tiny,sign_mbart_tiny")
    p.add_argument("--frames", type=int, default=116)
    p.add_argument("--height", type=int, default=260)
    p.add_argument("--width", type=int, default=210)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--vocab", type=int, default=2400)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-len-b", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-cli", action="store_true", help="skip the fresh-process timing")
    args = p.parse_args()

    import flallm_plugin  # noqa: F401
    from flallm_plugin.cli.export import export
    from flallm_plugin.hub import SignTranslator
    from flallm_tools.synthetic import write_mp4

    tmp = tempfile.mkdtemp(prefix="translate_latency.")
    rng = np.random.RandomState(0)
    base = rng.randint(0, 256, (args.height // 8, args.width // 8, 3)).astype(np.uint8)
    import cv2

    frames = [np.roll(cv2.resize(base, (args.width, args.height)), i, axis=1) for i in range(args.frames)]
    clip = os.path.join(tmp, "clip.mp4")
    write_mp4(clip, frames)
    data = make_data_dir(os.path.join(tmp, "data"), args.vocab, args.resize, args.crop)
    cpu = args.device == "cpu"
    print(f"clip: {args.frames} frames {args.width}x{args.height} px mp4 -> resize {args.resize}, crop {args.crop}, "
          f"sampling 0.25; beam {args.beam}, max-len-b {args.max_len_b}; device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for arch in args.archs.split(","):
        ckpt = os.path.join(tmp, f"{arch}.pt")
        n_params = random_checkpoint(arch, data, ckpt, args.device)
        model_dir = os.path.join(tmp, f"model_{arch}")
        export(argparse.Namespace(checkpoint=ckpt, data=data, out=model_dir, scores=None))
        os.unlink(ckpt)
        t0 = time.perf_counter()
        t = SignTranslator.from_pretrained(model_dir, cpu=cpu)
        load = time.perf_counter() - t0
        first = t.translate_full(clip, beam=args.beam, max_len_b=args.max_len_b)[0]
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            t.translate(clip, beam=args.beam, max_len_b=args.max_len_b)
            times.append(time.perf_counter() - t0)
        enc = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            t.encode(clip)
            enc.append(time.perf_counter() - t0)
        n_tok = len(first.translation.split())
        line = (f"{arch:<18} {n_params / 1e6:7.1f} M params | load {load:6.2f} s | translate {statistics.median(times):6.2f} s "
                f"(median of {args.repeat}; of which reading + visual encoder {statistics.median(enc):5.2f} s; "
                f"{first.frames} frames read, {n_tok} tokens out) | load + translate "
                f"{load + statistics.median(times):6.2f} s")
        if not args.no_cli:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flallm_plugin.cli.translate", model_dir, clip, "--beam",
                            str(args.beam), "--max-len-b", str(args.max_len_b)] + (["--cpu"] if cpu else []),
                           check=True, capture_output=True, cwd=REPO)
            line += f" | cold CLI {time.perf_counter() - t0:6.2f} s"
        print(line, flush=True)
        del t


if __name__ == "__main__":
    main()
