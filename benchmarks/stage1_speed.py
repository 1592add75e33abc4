#!/usr/bin/env python
"""Seconds per stage-1 update of Light-T base at 100 % vs 25 % temporal sampling.

One process, one randomly initialised ``light_t`` model (ResNet-18 -> K3 temporal
module -> VL-Adapter -> 3+3-layer Light-T, d = 512, |V| = 2,400), the same synthetic
uint8 videos (PHOENIX-2014-T-like lengths, ~116 raw frames +-) for every sampling rate,
and the same initial weights for each rate (restored before its warm-up). An update is
what ``fairseq-train`` does per batch: host->device copy of the padded uint8 videos,
forward, fairseq's label-smoothed cross-entropy, backward, SGD (lr 1e-2, momentum 0.9)
step. Only real frames reach the CNN, so its cost scales with the sampled frame count.

    python benchmarks/stage1_speed.py --device cuda                    # paper setting: 224 px, batch 8
    python benchmarks/stage1_speed.py --device cpu                     # reduced CPU defaults (see --help)
    python benchmarks/stage1_speed.py --device cpu --size 224 --batch-size 8   # the full setting on a CPU
"""
import argparse
import copy
import math
import os
import resource
import statistics
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import flallm_plugin  # noqa: E402,F401  (registers the task and the models)
from fairseq import options, tasks  # noqa: E402
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion  # noqa: E402
from fairseq.data import data_utils  # noqa: E402
from fairseq.dataclass.utils import convert_namespace_to_omegaconf  # noqa: E402
from flallm_plugin.data.video_io import sample_indices  # noqa: E402

PLUGIN = os.path.join(REPO, "flallm_plugin")
VOCAB = 2400  # target vocabulary of the paper's Table 7 counts
CPU_DEFAULTS = dict(size=224, batch_size=2)
CUDA_DEFAULTS = dict(size=224, batch_size=8)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--arch", default="light_t", help="light_t architecture (default: the base, 3+3 layers, d 512)")
    p.add_argument("--size", type=int, default=None,
                   help=f"frame size in px (default {CUDA_DEFAULTS['size']}; cpu {CPU_DEFAULTS['size']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"videos per update (default {CUDA_DEFAULTS['batch_size']}; cpu {CPU_DEFAULTS['batch_size']}: "
                        "100 %% sampling at 224 px, batch 8 needs ~40 GB of host memory for the CNN activations)")
    p.add_argument("--frames", type=int, default=116, help="mean raw frames per video (PHOENIX-2014-T: ~116)")
    p.add_argument("--frames-std", type=float, default=0.25,
                   help="relative spread of the raw video lengths (uniform in mean*(1 +- std))")
    p.add_argument("--tgt-len", type=int, default=20, help="mean target length in tokens (incl. </s>)")
    p.add_argument("--rates", default="1,0.25", help="temporal sampling rates to compare (comma separated)")
    p.add_argument("--updates", type=int, default=2, help="timed updates per sampling rate")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up updates per sampling rate")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    defaults = CUDA_DEFAULTS if args.device == "cuda" else CPU_DEFAULTS
    args.size = args.size or defaults["size"]
    args.batch_size = args.batch_size or defaults["batch_size"]
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    return args


def write_model_data_dir(data_dir, size):
    """What building the model reads of a data directory: config.yaml (frame size) and a |V|-type dict.txt."""
    with open(os.path.join(data_dir, "config.yaml"), "w") as f:
        f.write(f"vocab_filename: dict.txt\nresize: {size}\ncrop: {size}\n")
    with open(os.path.join(data_dir, "dict.txt"), "w") as f:
        f.writelines(f"tok{i} 1\n" for i in range(VOCAB - 4))


def build(args, data_dir, extra=()):
    """Task, model and criterion as fairseq-train builds them; ``extra``: more command-line options."""
    parser = options.get_training_parser()
    fs_args = options.parse_args_and_arch(parser, [
        data_dir, "--user-dir", PLUGIN, "--task", "sign_translation", "--arch", args.arch,
        "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy",
        "--label-smoothing", "0.1", "--seed", str(args.seed),
    ] + (["--cpu"] if args.device == "cpu" else []) + list(extra))
    cfg = convert_namespace_to_omegaconf(fs_args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(args.seed)
    model = task.build_model(cfg.model)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    return task, model, criterion


def make_data(args, tgt_dict):
    """Raw uint8 videos (list of T x H x W x 3) and targets, fixed by --seed."""
    rng = np.random.RandomState(args.seed)
    lo, hi = args.frames * (1 - args.frames_std), args.frames * (1 + args.frames_std)
    lengths = [max(1, int(round(x))) for x in rng.uniform(lo, hi, args.batch_size)]
    videos = [torch.from_numpy(rng.randint(0, 256, (n, args.size, args.size, 3), dtype=np.uint8)) for n in lengths]
    targets = []
    for _ in range(args.batch_size):
        n = max(2, int(round(rng.uniform(0.7, 1.3) * args.tgt_len)))
        toks = rng.randint(tgt_dict.nspecial, len(tgt_dict), n - 1)
        targets.append(torch.from_numpy(np.append(toks, tgt_dict.eos())).long())
    return videos, targets


def make_sample(videos, targets, rate, tgt_dict, pin):
    """The batch the dataset's collater would build at this sampling rate (phase 0)."""
    stride = round(1 / rate)
    clips = [v[torch.from_numpy(sample_indices(v.size(0), stride, 0))] for v in videos]
    lengths = torch.tensor([c.size(0) for c in clips])
    src = clips[0].new_zeros((len(clips), int(lengths.max())) + tuple(clips[0].shape[1:]))
    for i, c in enumerate(clips):
        src[i, : c.size(0)] = c
    if pin:
        src = src.pin_memory()
    pad, eos = tgt_dict.pad(), tgt_dict.eos()
    return {
        "net_input": {
            "src_tokens": src,
            "src_lengths": lengths,
            "prev_output_tokens": data_utils.collate_tokens(targets, pad, eos, move_eos_to_beginning=True),
        },
        "target": data_utils.collate_tokens(targets, pad, eos),
        "ntokens": sum(len(t) for t in targets),
        "nsentences": len(targets),
    }


def to_device(sample, device):
    out = dict(sample)
    out["net_input"] = {k: v.to(device, non_blocking=True) for k, v in sample["net_input"].items()}
    out["target"] = sample["target"].to(device, non_blocking=True)
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_rate(model, criterion, init_state, sample, args, device):
    model.load_state_dict(init_state)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    visual = model.encoder.visual
    times, losses = [], []
    frames0 = visual.frames_processed
    for step in range(args.warmup + args.updates):
        sync(device)
        t = time.perf_counter()
        batch = to_device(sample, device)
        loss, sample_size, _ = criterion(model, batch)
        optimizer.zero_grad(set_to_none=True)
        (loss / sample_size).backward()
        optimizer.step()
        sync(device)
        dt = time.perf_counter() - t
        losses.append(float(loss.detach()) / sample_size / math.log(2))
        if step >= args.warmup:
            times.append(dt)
    cnn_frames = (visual.frames_processed - frames0) // (args.warmup + args.updates)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"times": times, "cnn_frames": cnn_frames, "peak_gib": peak, "losses": losses}


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as data_dir:
        write_model_data_dir(data_dir, args.size)
        task, model, criterion = build(args, data_dir)
    model.to(device)
    init_state = copy.deepcopy(model.state_dict())
    tgt_dict = task.target_dictionary
    videos, targets = make_data(args, tgt_dict)
    n_params = sum(p.numel() for p in model.parameters())
    raw = [v.size(0) for v in videos]
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.arch}: {n_params / 1e6:.2f}M parameters ({model.translator_num_params() / 1e6:.2f}M Light-T), "
          f"|V| = {len(tgt_dict):,}; device {dev_name}; torch {torch.__version__}")
    print(f"batch {args.batch_size} x {args.size}px, raw frames per video {raw} (mean {statistics.mean(raw):.1f}), "
          f"targets {[len(t) for t in targets]} tokens; {args.warmup} warm-up + {args.updates} timed updates per rate")
    results = {}
    for rate in rates:
        sample = make_sample(videos, targets, rate, tgt_dict, pin=device.type == "cuda")
        t0 = time.perf_counter()
        results[rate] = run_rate(model, criterion, init_state, sample, args, device)
        results[rate]["wall"] = time.perf_counter() - t0
        r = results[rate]
        print(f"  rate {rate:g}: done in {r['wall']:.1f}s ({', '.join(f'{t:.3f}' for t in r['times'])} s/update)",
              flush=True)
    print()
    header = f"{'sampling':>9} {'frames/video':>13} {'CNN frames/upd':>15} {'s/update':>9} {'min':>8} {'CNN frames/s':>13}"
    if device.type == "cuda":
        header += f" {'peak GiB':>9}"
    print(header)
    for rate, r in results.items():
        mean_t = statistics.mean(r["times"])
        line = (f"{rate * 100:>8.1f}% {r['cnn_frames'] / args.batch_size:>13.1f} {r['cnn_frames']:>15d} "
                f"{mean_t:>9.3f} {min(r['times']):>8.3f} {r['cnn_frames'] / mean_t:>13.1f}")
        if device.type == "cuda":
            line += f" {r['peak_gib']:>9.2f}"
        print(line)
    if len(rates) >= 2:
        a, b = rates[0], rates[-1]
        ta, tb = statistics.mean(results[a]["times"]), statistics.mean(results[b]["times"])
        fa, fb = results[a]["cnn_frames"], results[b]["cnn_frames"]
        print(f"\nspeed-up {a * 100:g}% -> {b * 100:g}% sampling: {ta / tb:.2f}x per update "
              f"(CNN frames {fa / fb:.2f}x fewer)")
    if device.type == "cpu":
        print(f"peak host memory (process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    return results


if __name__ == "__main__":
    main()
