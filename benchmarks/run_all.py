#!/usr/bin/env python
"""Every performance figure of the project in one run, one table (Markdown + JSON).

Each figure is measured in this process, side by side with what it is compared to, on the
machine named at the top of the table:

* **stage-1 update** (``light_t`` base, random weights, fairseq's label-smoothed criterion, SGD)
  at 100 / 50 / 25 / 12.5 % temporal sampling, the same videos and initial weights for each rate;
  CNN frames/s and peak memory per sampled frame;
* **stage-1 memory** with and without ``--checkpoint-backbone-activations``, and its time cost;
* **stage-2 update** (``sign_mbart``) on raw video vs on cached sign-wise features;
* **feature extraction** (``flallm-extract-features``'s forward pass) frames/s, and its FLOP rate as a
  fraction of a dense matrix product timed in the same run;
* **fixed per-update cost**: a ``light_t_tiny`` update on 2 x 2 frames of 32 px through fairseq's
  ``Trainer`` (the CNN small, so what does not scale with frames shows), ``--optimizer adam``
  (fairseq's per-parameter loop) vs ``param_group_adam`` (multi-tensor) interleaved, with the ATen
  operators per update (each one or more GPU kernels; ``benchmarks/update_overhead.py`` profiles it);
* **data loading**: sampled frames/s of one data-loader worker on PHOENIX-sized frame folders
  (210 x 260 px PNG, ~116 frames, augmentation on, the task's real dataset and fairseq's iterator),
  against the frames/s the stage-1 update consumes: the number of workers that keeps up; one worker
  with ``--augment-on-device`` (decoding only; the warp on the model's device) against one without,
  interleaved; one worker on the same frames as frame packs (``flallm-pack-frames``) with that option;
  and the frames/s of decoding alone vs decoding + transform (the bound of that option);
* **decoding**: ``fairseq-generate``'s step (the task's ``inference_step`` with fairseq's
  ``SequenceGenerator``) in sentences/s, beam 5 and greedy, stage 1 and stage 2, batch 1 and 32,
  and how many times the visual encoder ran per sentence (1.00: never per beam or per step).

On CUDA the updates use ``--amp``'s arithmetic (fp16 autocast with a gradient scaler) and the
CNN runs channels-last, as docs/training.md recommends for GPUs; the CPU runs fp32.

    python benchmarks/run_all.py --quick                 # CPU, <= 5 minutes on 2 cores
    python benchmarks/run_all.py --device cuda           # the paper's sizes (224 px, batch 8), one GPU
    python benchmarks/run_all.py --device cuda --out benchmarks/results/h100   # also writes .md/.json

Random weights never stop early, so decoding is fixed at ``--decode-len`` tokens per sentence
(``min_len = max_len``): sentences/s then compare like with like.
"""
import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from argparse import Namespace

import torch

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
for p in (REPO, BENCH):
    if p not in sys.path:
        sys.path.insert(0, p)

import flallm_plugin  # noqa: E402,F401  (registers the task and the models)
import stage1_speed  # noqa: E402
from stage2_speed import make_data_dir  # noqa: E402

PLUGIN = os.path.join(REPO, "flallm_plugin")
RATES = (1.0, 0.5, 0.25, 0.125)

# sizes per setting: the paper's on a GPU; on a CPU the largest that keep --quick within 5 minutes
SETTINGS = {
    "cuda": dict(s1_arch="light_t", s1_size=224, s1_batch=8, s1_updates=5, s1_warmup=2,
                 s2_arch="sign_mbart_large", s2_size=224, s2_batch=8, s2_updates=5,
                 ext_size=224, ext_frames=512, ext_repeat=5,
                 mem_size=224, mem_batch=8, mem_frames=116, mem_chunk=64, mem_steps=2,
                 dec_s1_arch="light_t", dec_s2_arch="sign_mbart_large", dec_size=224, dec_batches=(1, 32),
                 loader_videos=32, loader_batch=4, loader_batches=9),
    "cpu": dict(s1_arch="light_t", s1_size=112, s1_batch=2, s1_updates=2, s1_warmup=1,
                s2_arch="sign_mbart_tiny", s2_size=112, s2_batch=4, s2_updates=3,
                ext_size=112, ext_frames=64, ext_repeat=2,
                mem_size=224, mem_batch=2, mem_frames=32, mem_chunk=16, mem_steps=1,
                dec_s1_arch="light_t_tiny", dec_s2_arch="sign_mbart_tiny", dec_size=64, dec_batches=(1, 32),
                loader_videos=8, loader_batch=2, loader_batches=13),
}
for _name, _rounds in (("cuda", 20), ("cpu", 7)):
    SETTINGS[_name].update(overhead_rounds=_rounds, loader_rounds=3)
QUICK_CPU = dict(s1_updates=1, s2_updates=2, ext_repeat=1, overhead_rounds=4, loader_rounds=3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--quick", action="store_true", help="fewer timed repetitions (CPU: within 5 minutes on 2 cores)")
    p.add_argument("--only", default=None,
                   help="comma-separated sections to run (machine is always run): "
                        "stage1,memory,stage2,extraction,overhead,loader,decoding")
    p.add_argument("--decode-len", type=int, default=30, help="tokens per decoded sentence")
    p.add_argument("--frames", type=int, default=116, help="mean raw frames per video (PHOENIX-2014-T: ~116)")
    p.add_argument("--vocab", type=int, default=2400, help="target vocabulary (a trimmed mBART's order)")
    p.add_argument("--out", default=None, help="also write OUT.md and OUT.json")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    args.s = dict(SETTINGS[args.device])
    if args.quick and args.device == "cpu":
        args.s.update(QUICK_CPU)
    return args


# ------------------------------------------------------------------ helpers
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat, warmup=1):
    """Median seconds of ``fn()`` over ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device):
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def autocast(device):
    return torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda")


def build_model(arch, data_dir, device, extra=()):
    """A model with random weights, built the way fairseq-train builds it, and the task."""
    from fairseq import options, tasks

    margs = options.parse_args_and_arch(options.get_training_parser(), [
        data_dir, "--user-dir", PLUGIN, "--task", "sign_translation", "--arch", arch,
        "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
    ] + (["--pretrained-mbart", "none", "--load-visual-encoder-from", "none"] if arch.startswith("sign_mbart") else [])
      + list(extra) + (["--cpu"] if device.type == "cpu" else []))
    task = tasks.setup_task(margs)
    model = task.build_model(margs).to(device)
    return task, model, task.build_criterion(margs).to(device)


def video_data_dir(root, vocab, size):
    make_data_dir(root, vocab, "video")
    with open(os.path.join(root, "config.yaml"), "a", encoding="utf-8") as f:
        f.write(f"resize: {size}\ncrop: {size}\n")
    return root


def update_step(model, criterion, optimizer, scaler, sample, device):
    """One training update as fairseq's trainer does it (``--amp`` on CUDA, fp32 on CPU)."""
    with autocast(device):
        loss, sample_size, _ = criterion(model, sample)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss / sample_size).backward()
    scaler.step(optimizer)
    scaler.update()


# ------------------------------------------------------------------ sections
def machine(args, device):
    """Device, software, and the dense matrix-product rate the FLOP fractions are relative to."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        n, dtype = 8192, torch.float16
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
        n, dtype = 2048, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sec = timed(lambda: torch.mm(a, b), device, repeat=5 if device.type == "cuda" else 3)
    flops = 2 * n ** 3 / sec
    return {"device": name, "torch": torch.__version__, "python": platform.python_version(),
            "matmul": f"{n}x{n}x{n} {str(dtype).replace('torch.', '')}", "matmul_tflops": flops / 1e12}


def stage1(args, device, tmp):
    """Stage-1 updates by sampling rate (stage1_speed's batch and step, --amp on CUDA)."""
    s = args.s
    ns = Namespace(arch=s["s1_arch"], size=s["s1_size"], batch_size=s["s1_batch"], frames=args.frames,
                   frames_std=0.25, tgt_len=20, seed=args.seed, device=device.type)
    data = video_data_dir(os.path.join(tmp, "s1"), args.vocab, s["s1_size"])
    task, model, criterion = build_model(s["s1_arch"], data, device)
    init = copy.deepcopy(model.state_dict())
    videos, targets = stage1_speed.make_data(ns, task.target_dictionary)
    rows = []
    for rate in RATES:
        sample = stage1_speed.to_device(
            stage1_speed.make_sample(videos, targets, rate, task.target_dictionary, pin=device.type == "cuda"), device)
        model.load_state_dict(init)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
        scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        visual = model.encoder.visual
        f0 = visual.frames_processed
        reset_peak(device)
        sec = timed(lambda: update_step(model, criterion, optimizer, scaler, sample, device), device,
                    repeat=s["s1_updates"], warmup=s["s1_warmup"])
        frames = (visual.frames_processed - f0) // (s["s1_updates"] + s["s1_warmup"])
        peak = peak_bytes(device)
        rows.append({"rate": rate, "frames": frames, "s_per_update": sec, "cnn_frames_per_s": frames / sec,
                     "peak_mib_per_frame": peak / frames / 2**20 if peak else None})
        print(f"  stage 1 at {rate:.1%}: {sec:.3f} s/update, {frames} CNN frames", flush=True)
    return {"arch": s["s1_arch"], "size": s["s1_size"], "batch": s["s1_batch"], "rows": rows}


def memory(args, device, tmp):
    """Activation memory per frame of a stage-1 update at 100 % sampling: plain, with
    ``--checkpoint-backbone-activations``, and with it plus ``--max-frames-per-chunk``."""
    from stage1_memory import measure_stage1_memory

    s = args.s
    frames = s["mem_batch"] * s["mem_frames"]
    out = []
    for ckpt, chunk in ((False, 0), (True, 0), (True, s["mem_chunk"])):
        r = measure_stage1_memory(device=device.type, frames=frames, size=s["mem_size"], checkpoint=ckpt,
                                  batch_size=s["mem_batch"], steps=s["mem_steps"], arch=s["s1_arch"],
                                  max_frames_per_chunk=chunk)
        if r["per_frame"] <= 0:
            raise RuntimeError(f"stage-1 memory not measurable at {frames} frames of {s['mem_size']} px: the peak "
                               "resident set did not grow over the warm-up update (use more frames)")
        out.append(r)
        print(f"  memory, checkpointing {ckpt}, chunk {chunk}: {r['per_frame'] / 2**20:.2f} MiB/frame, "
              f"{r['seconds']:.3f} s/update", flush=True)
    return {"size": s["mem_size"], "batch": s["mem_batch"], "frames": frames, "rows": out}


def stage2(args, device, tmp):
    """Stage-2 updates on raw video (frozen visual encoder run every step) vs cached sign features."""
    s = args.s
    task, model, criterion = build_model(s["s2_arch"], video_data_dir(os.path.join(tmp, "s2v"), args.vocab,
                                                                      s["s2_size"]), device)
    feat_data = make_data_dir(os.path.join(tmp, "s2f"), args.vocab, "features")
    _, feat_model, _ = build_model(s["s2_arch"], feat_data, device)
    feat_model.load_state_dict(model.state_dict())
    n = int(math.ceil(args.frames * 0.25))
    B, T = s["s2_batch"], 24
    g = torch.Generator().manual_seed(args.seed)
    videos = torch.randint(0, 256, (B, n, s["s2_size"], s["s2_size"], 3), dtype=torch.uint8, generator=g)
    lengths = torch.full((B,), n, dtype=torch.long)
    tgt = torch.randint(4, args.vocab, (B, T), generator=g)
    tgt[:, -1] = 2
    prev = torch.cat([tgt[:, -1:], tgt[:, :-1]], dim=1)
    model.eval()
    with torch.no_grad(), autocast(device):
        feats, _ = model.encoder.visual(videos.to(device), lengths.to(device), level="sign")
    feats = feats.float()
    rows = []
    for name, m, src in (("raw video", model, videos), ("cached features", feat_model, feats.cpu())):
        sample = {"net_input": {"src_tokens": src.to(device), "src_lengths": lengths.to(device),
                                "prev_output_tokens": prev.to(device)},
                  "target": tgt.to(device), "ntokens": B * T, "nsentences": B}
        m.train()
        optimizer = torch.optim.Adam([q for q in m.parameters() if q.requires_grad], lr=1e-5)
        scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        sec = timed(lambda: update_step(m, criterion, optimizer, scaler, sample, device), device,
                    repeat=s["s2_updates"])
        rows.append({"input": name, "s_per_update": sec,
                     "input_mb": src.numel() * src.element_size() / 2**20})
        print(f"  stage 2 on {name}: {sec:.3f} s/update", flush=True)
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    return {"arch": s["s2_arch"], "size": s["s2_size"], "batch": B, "frames": n, "trainable": trainable, "rows": rows}


def extraction(args, device, tmp, matmul_tflops):
    """The visual encoder's forward pass (what flallm-extract-features runs) in frames/s and FLOP rate."""
    from torch.utils.flop_counter import FlopCounterMode

    s = args.s
    _, model, _ = build_model(s["s1_arch"], video_data_dir(os.path.join(tmp, "ext"), args.vocab, s["ext_size"]),
                              device)
    visual = model.encoder.visual.eval()
    n = s["ext_frames"]
    g = torch.Generator().manual_seed(args.seed)
    video = torch.randint(0, 256, (1, n, s["ext_size"], s["ext_size"], 3), dtype=torch.uint8, generator=g).to(device)
    lengths = torch.tensor([n], device=device)

    def forward():
        with torch.no_grad(), autocast(device):
            visual(video, lengths, level="sign")

    with FlopCounterMode(display=False) as counter:
        forward()
    flops = counter.get_total_flops()
    sec = timed(forward, device, repeat=s["ext_repeat"])
    rate = flops / sec
    print(f"  extraction: {n / sec:.1f} frames/s, {rate / 1e12:.3f} TFLOP/s", flush=True)
    return {"size": s["ext_size"], "frames": n, "frames_per_s": n / sec, "gflop_per_frame": flops / n / 1e9,
            "tflops": rate / 1e12, "fraction_of_matmul": rate / 1e12 / matmul_tflops}


def overhead(args, device, tmp):
    """The fixed cost of an update: light_t_tiny on 2 x 2 and 2 x 8 frames of 32 px through fairseq's Trainer,
    fairseq's Adam vs param_group_adam (fused), interleaved; the fixed cost is the time extrapolated to
    no frames."""
    from update_overhead import fixed_update_cost

    opts = ("adam", "param_group_adam")
    r = fixed_update_cost(opts, batch=2, frames=2, size=32, rounds=args.s["overhead_rounds"], device=device.type,
                          frames_hi=8)
    for o in opts:
        print(f"  update, --optimizer {o}: {r[o]['s'] * 1e3:.1f} ms at 2 frames, {r[o]['s_hi'] * 1e3:.1f} ms at 8, "
              f"fixed {r[o]['fixed_s'] * 1e3:.1f} ms; {r[o]['ops']} ATen calls", flush=True)
    return {"batch": 2, "frames": 2, "frames_hi": 8, "size": 32, "rows": [dict(optimizer=o, **r[o]) for o in opts]}


def loader(args, device, tmp):
    """Sampled frames/s of the data loader (main process, one worker) on PHOENIX-sized frame folders
    (210 x 260 PNG, resize 256, crop 224, augmentation on, 25 % sampling)."""
    from loader_speed import decode_only_rate, loader_frames_per_second, make_packed, make_phoenix_sized_data

    s = args.s
    data = make_phoenix_sized_data(os.path.join(tmp, "loader"), videos=s["loader_videos"], frames=args.frames)
    dirs = {"png": data, "packed": make_packed(data, os.path.join(tmp, "loader_packed"))}
    runs = {}
    # the main process once; one worker on PNG folders with and without --augment-on-device, and on their frame
    # packs with it, interleaved
    settings = ((1, False, "png"), (1, True, "png"), (1, True, "packed"))
    for workers, on_device, store in ((0, False, "png"),) + settings * s["loader_rounds"]:
        r = loader_frames_per_second(dirs[store], "train", workers=workers, n_batches=s["loader_batches"],
                                     batch_size=s["loader_batch"], augment=True, sampling_rate=0.25,
                                     augment_on_device=on_device)
        runs.setdefault((workers, on_device, store), []).append(r)
        print(f"  loader, {workers} workers, {store}{', augment on device' if on_device else ''}: "
              f"{r['frames_per_s']:.0f} sampled frames/s", flush=True)

    def median_run(key):
        rs = sorted(runs[key], key=lambda r: r["frames_per_s"])
        return dict(rs[len(rs) // 2], frames_per_s=statistics.median(r["frames_per_s"] for r in rs), runs=len(rs))

    bound = decode_only_rate(data, videos=4, sampling_rate=0.25, rounds=3)
    print(f"  loader, decode only vs decode + transform: {bound['speedup']:.2f}x", flush=True)
    return {"main_process": median_run((0, False, "png")), "one_worker": median_run((1, False, "png")),
            "one_worker_on_device": median_run((1, True, "png")),
            "one_worker_packed_on_device": median_run((1, True, "packed")), "decode_only": bound}


def decoding(args, device, tmp):
    """Sentences/s of the generate step, beam 5 and greedy, stage 1 and stage 2, batch 1 and 32."""
    from fairseq import options
    from fairseq.data import data_utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    s = args.s
    data = video_data_dir(os.path.join(tmp, "dec"), args.vocab, s["dec_size"])
    n = int(math.ceil(args.frames * 0.25))
    rows = []
    for stage, arch in (("stage 1", s["dec_s1_arch"]), ("stage 2", s["dec_s2_arch"])):
        task, model, _ = build_model(arch, data, device)
        model.eval()
        if device.type == "cuda":
            model.half()
        visual = model.encoder.visual
        # greedy first: fairseq's generator sets the attention's beam size only when it is > 1
        for beam in (1, 5):
            gargs = options.parse_args_and_arch(options.get_generation_parser(), [
                data, "--user-dir", PLUGIN, "--task", "sign_translation", "--beam", str(beam),
                "--max-len-a", "0", "--max-len-b", str(args.decode_len), "--min-len", str(args.decode_len)])
            generator = task.build_generator([model], convert_namespace_to_omegaconf(gargs).generation)
            for bsz in s["dec_batches"]:
                g = torch.Generator().manual_seed(args.seed)
                video = torch.randint(0, 256, (bsz, n, s["dec_size"], s["dec_size"], 3), dtype=torch.uint8, generator=g)
                sample = {"id": torch.arange(bsz), "net_input": {
                    "src_tokens": video.to(device), "src_lengths": torch.full((bsz,), n, device=device),
                    "prev_output_tokens": data_utils.collate_tokens(
                        [torch.tensor([2])] * bsz, 1, 2).to(device)}, "target": None, "nsentences": bsz}
                f0, calls = visual.frames_processed, [0]

                def step():
                    calls[0] += 1
                    hypos = task.inference_step(generator, [model], sample)
                    if any(len(h[0]["tokens"]) != args.decode_len + 1 for h in hypos):
                        raise RuntimeError(f"expected {args.decode_len} tokens + </s> per sentence")

                sec = timed(step, device, repeat=2 if device.type == "cpu" else 5)
                runs = (visual.frames_processed - f0) / (calls[0] * bsz * n)
                rows.append({"stage": stage, "arch": arch, "beam": beam, "batch": bsz, "sentences_per_s": bsz / sec,
                             "visual_runs_per_sentence": runs})
                print(f"  {stage} {arch} beam {beam} batch {bsz}: {bsz / sec:.2f} sentences/s, visual encoder "
                      f"ran {runs:.2f} times per sentence", flush=True)
    return {"size": s["dec_size"], "frames": n, "tokens": args.decode_len, "rows": rows}


# ------------------------------------------------------------------ report
def markdown(r, args):
    m = r["machine"]
    lines = [f"**Machine**: {m['device']}; torch {m['torch']}, Python {m['python']}; "
             f"dense matmul ({m['matmul']}) {m['matmul_tflops']:.2f} TFLOP/s; "
             f"{'AMP (fp16) + channels-last' if args.device == 'cuda' else 'fp32'}"
             f"{'; --quick' if args.quick else ''}; total {r['seconds']:.0f} s", "",
             "| what | setting | figure | ratio |", "|---|---|---|---|"]
    s1_arch = args.s["s1_arch"]
    if "stage1" in r:
        s1 = r["stage1"]
        base = s1["rows"][0]["s_per_update"]
        for row in s1["rows"]:
            mem = f", {row['peak_mib_per_frame']:.1f} MiB peak/frame" if row["peak_mib_per_frame"] else ""
            lines.append(f"| stage-1 update, {row['rate']:.1%} sampling | `{s1['arch']}`, batch {s1['batch']}, "
                         f"{s1['size']} px, {row['frames']} CNN frames | {row['s_per_update']:.3f} s/update, "
                         f"{row['cnn_frames_per_s']:.0f} frames/s{mem} | {base / row['s_per_update']:.2f}x vs 100 % |")
    if "memory" in r:
        mm = r["memory"]
        plain = mm["rows"][0]
        for row in mm["rows"]:
            what = ("plain" if not row["checkpoint"] else "`--checkpoint-backbone-activations`"
                    + (f" + `--max-frames-per-chunk {row['max_frames_per_chunk']}`" if row["max_frames_per_chunk"] else ""))
            lines.append(f"| stage-1 activation memory, {what} | `{s1_arch}`, batch {mm['batch']}, {mm['frames']} frames "
                         f"(100 %) at {mm['size']} px | {row['per_frame'] / 2**20:.2f} MiB/frame, peak "
                         f"{row['peak_bytes'] / 2**30:.2f} GiB, {row['seconds']:.3f} s/update | memory "
                         f"{plain['per_frame'] / row['per_frame']:.2f}x less, time {row['seconds'] / plain['seconds']:.2f}x |")
    if "stage2" in r:
        s2 = r["stage2"]
        v, c = s2["rows"]
        lines.append(f"| stage-2 update, raw video vs cached features | `{s2['arch']}` ({s2['trainable'] / 1e6:.1f} M "
                     f"trainable), batch {s2['batch']}, {s2['frames']} frames at {s2['size']} px | "
                     f"{v['s_per_update']:.3f} vs {c['s_per_update']:.3f} s/update; {v['input_mb']:.2f} vs "
                     f"{c['input_mb']:.2f} MB input | {v['s_per_update'] / c['s_per_update']:.2f}x (video time / cached time) |")
    if "extraction" in r:
        e = r["extraction"]
        lines.append(f"| feature extraction (visual encoder forward) | {e['frames']} frames at {e['size']} px, "
                     f"{e['gflop_per_frame']:.2f} GFLOP/frame | {e['frames_per_s']:.0f} frames/s, "
                     f"{e['tflops']:.3f} TFLOP/s | {e['fraction_of_matmul']:.1%} of dense matmul |")
    if "overhead" in r:
        o = r["overhead"]
        a, b = o["rows"]
        lines.append(f"| fixed per-update cost, `--optimizer {a['optimizer']}` vs `{b['optimizer']}` | `light_t_tiny`, "
                     f"batch {o['batch']} x {o['frames']} and {o['frames_hi']} frames of {o['size']} px, fairseq's "
                     f"Trainer; fixed = time extrapolated to no frames | "
                     f"{a['fixed_s'] * 1e3:.1f} vs {b['fixed_s'] * 1e3:.1f} ms fixed ({a['s'] * 1e3:.1f} vs "
                     f"{b['s'] * 1e3:.1f} ms/update at {o['frames']} frames); {a['ops']} vs {b['ops']} ATen calls/update | "
                     f"{a['fixed_s'] / b['fixed_s']:.2f}x fixed cost, {a['ops'] / b['ops']:.2f}x fewer calls |")
    if "loader" in r:
        ld = r["loader"]
        one = ld["one_worker"]["frames_per_s"]
        lines.append(f"| data loading, 1 worker | 210x260 PNG folders, {args.frames} frames, 25 % sampling, augment, "
                     f"resize 256, crop 224 | {one:.0f} sampled frames/s (main process: "
                     f"{ld['main_process']['frames_per_s']:.0f}) | |")
        dev = ld["one_worker_on_device"]["frames_per_s"]
        lines.append(f"| data loading, 1 worker, `--augment-on-device` | the same, the warp on the model's device | "
                     f"{dev:.0f} vs {one:.0f} sampled frames/s (median of {ld['one_worker_on_device']['runs']}, "
                     f"interleaved) | {dev / one:.2f}x per worker |")
        packed = ld["one_worker_packed_on_device"]["frames_per_s"]
        lines.append(f"| data loading, 1 worker, frame packs (`flallm-pack-frames`), `--augment-on-device` | the same "
                     f"frames packed (Zstandard, one file per video) | {packed:.0f} vs {dev:.0f} (PNG, on device) vs "
                     f"{one:.0f} (PNG) sampled frames/s (medians, interleaved) | {packed / dev:.2f}x vs PNG on device, "
                     f"{packed / one:.2f}x vs PNG |")
        dec = ld["decode_only"]
        lines.append(f"| data loading, decode only (device-side augmentation's bound) | the same PNG frames, 25 % "
                     f"sampling | {dec['decode_frames_per_s']:.0f} vs {dec['decode_transform_frames_per_s']:.0f} "
                     f"sampled frames/s (decode vs decode + transform) | {dec['speedup']:.2f}x per worker |")
        if "stage1" in r:
            need = [row for row in r["stage1"]["rows"] if row["rate"] == 0.25][0]["cnn_frames_per_s"]
            lines.append(f"| loader vs model | stage-1 update at 25 % consumes {need:.0f} frames/s | "
                         f"{math.ceil(need / one)} worker(s) keep up on PNG, {math.ceil(need / packed)} on frame "
                         f"packs with `--augment-on-device` | {one / need:.2f}x / {packed / need:.2f}x per worker |")
    if "decoding" in r:
        d = r["decoding"]
        for row in d["rows"]:
            lines.append(f"| decoding {row['stage']}, beam {row['beam']}, batch {row['batch']} | `{row['arch']}`, "
                         f"{d['frames']} frames at {d['size']} px, {d['tokens']} tokens | "
                         f"{row['sentences_per_s']:.2f} sentences/s | visual encoder runs "
                         f"{row['visual_runs_per_sentence']:.2f}x per sentence |")
    return "\n".join(lines)


SECTIONS = ("stage1", "memory", "stage2", "extraction", "overhead", "loader", "decoding")


def main(argv=None):
    args = parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown sections {sorted(unknown)} (have {', '.join(SECTIONS)})")
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    r = {"args": {k: v for k, v in vars(args).items() if k != "s"}, "settings": args.s}
    r["machine"] = machine(args, device)
    print(f"machine: {r['machine']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="run_all.") as tmp:
        for name in SECTIONS:
            if name not in only:
                continue
            t = time.perf_counter()
            if name == "extraction":
                r[name] = extraction(args, device, tmp, r["machine"]["matmul_tflops"])
            else:
                r[name] = globals()[name](args, device, tmp)
            r[name]["section_seconds"] = time.perf_counter() - t
            if device.type == "cuda":
                torch.cuda.empty_cache()
    r["seconds"] = time.perf_counter() - t0
    table = markdown(r, args)
    print("\n" + table)
    if args.out:
        from flallm_plugin.data.atomic_file import atomic_write_text

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_text(args.out + ".md", lambda f: f.write(table + "\n"))
        atomic_write_text(args.out + ".json", lambda f: json.dump(r, f, indent=1, default=str))
    return r


if __name__ == "__main__":
    main()
