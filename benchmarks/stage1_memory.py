#!/usr/bin/env python
"""Memory per frame and time of a stage-1 update with and without ``--checkpoint-backbone-activations``.

One update is what ``fairseq-train`` does per batch (the model of ``stage1_speed.py``: randomly
initialised ``light_t``, fairseq's label-smoothed cross-entropy, SGD with momentum) on a batch of
``--batch-size`` synthetic uint8 videos holding ``--frames`` frames in all, every one reaching the CNN
(100 % sampling). Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU (after a warm-up update),
the process's peak resident set (``VmHWM``) on a CPU, each setting in a fresh subprocess there.
``per_frame`` is (peak - memory held before the update) / frames: the update's activation memory
per frame. ``seconds``: mean time of the timed updates.

    python benchmarks/stage1_memory.py --device cuda                 # 8 videos x 116 frames, 224 px
    python benchmarks/stage1_memory.py --device cpu                  # 2 videos x 16 frames, 224 px

:func:`measure_stage1_memory` is the importable measurement (``benchmarks/run_all.py``).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage1_speed import build, make_data, make_sample, to_device, write_model_data_dir  # noqa: E402

CPU_DEFAULTS = dict(frames=32, batch_size=2)
CUDA_DEFAULTS = dict(frames=928, batch_size=8)  # PHOENIX-2014-T: ~116 frames per video, 100 % sampling


def peak_rss_bytes() -> int:
    """This process's peak resident set since its exec (``VmHWM``). Unlike ``getrusage``'s ``ru_maxrss``,
    it does not carry over a larger parent's peak into a subprocess."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(device, frames, size, checkpoint, batch_size, steps, arch, max_frames_per_chunk, seed=1):
    """In this process: build, one warm-up update (on a CPU on one frame per video, as the peak resident
    set never goes down, then the measured update), then ``steps`` timed updates."""
    device = torch.device(device)
    if frames % batch_size:
        raise ValueError(f"--frames {frames} is not a multiple of --batch-size {batch_size}")
    args = argparse.Namespace(arch=arch, seed=seed, device=device.type, frames=frames // batch_size, frames_std=0.0,
                              batch_size=batch_size, size=size, tgt_len=20)
    extra = ["--max-frames-per-chunk", str(max_frames_per_chunk)]
    if checkpoint:
        extra.append("--checkpoint-backbone-activations")
    with tempfile.TemporaryDirectory() as data_dir:
        write_model_data_dir(data_dir, size)
        task, model, criterion = build(args, data_dir, extra)
    model.to(device).train()
    tgt_dict = task.target_dictionary
    videos, targets = make_data(args, tgt_dict)
    sample = make_sample(videos, targets, 1.0, tgt_dict, pin=device.type == "cuda")
    one_frame = make_sample([v[:1] for v in videos], targets, 1.0, tgt_dict, pin=False)
    del videos
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)

    def update(sample=sample):
        batch = to_device(sample, device)
        loss, sample_size, _ = criterion(model, batch)
        optimizer.zero_grad(set_to_none=True)
        (loss / sample_size).backward()
        optimizer.step()

    if device.type == "cuda":
        update()  # warm-up: cuDNN algorithms, optimizer state
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        update(one_frame)  # gradients and optimizer state, with next to no activations
        base = peak_rss_bytes()
        update()
        peak = peak_rss_bytes()
    times = []
    for _ in range(steps):
        _sync(device)
        t = time.perf_counter()
        update()
        _sync(device)
        times.append(time.perf_counter() - t)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    return {"peak_bytes": int(peak), "base_bytes": int(base), "per_frame": (peak - base) / frames,
            "seconds": statistics.mean(times) if times else None, "frames": frames, "size": size,
            "batch_size": batch_size, "checkpoint": bool(checkpoint), "max_frames_per_chunk": max_frames_per_chunk,
            "device": name}


def measure_stage1_memory(device: str = "cuda", frames: int = 928, size: int = 224, checkpoint: bool = False,
                          batch_size: int = 8, steps: int = 2, arch: str = "light_t", max_frames_per_chunk: int = 0,
                          ) -> dict:
    """Peak memory (``peak_bytes``), activation memory per frame (``per_frame``) and seconds per update
    (``seconds``) of one stage-1 update on ``frames`` frames of ``size`` px; see the module docstring.
    On a CPU the measurement runs in a fresh subprocess (the peak resident set never goes down)."""
    if device != "cpu":
        return _measure(device, frames, size, checkpoint, batch_size, steps, arch, max_frames_per_chunk)
    cmd = [sys.executable, os.path.abspath(__file__), "--device", "cpu", "--frames", str(frames), "--size", str(size),
           "--batch-size", str(batch_size), "--steps", str(steps), "--arch", arch,
           "--max-frames-per-chunk", str(max_frames_per_chunk), "--json"] + (["--checkpoint"] if checkpoint else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit status {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--frames", type=int, help=f"frames in the batch (cuda {CUDA_DEFAULTS['frames']}, "
                                              f"cpu {CPU_DEFAULTS['frames']})")
    p.add_argument("--batch-size", type=int, help=f"videos (cuda {CUDA_DEFAULTS['batch_size']}, "
                                                  f"cpu {CPU_DEFAULTS['batch_size']})")
    p.add_argument("--size", type=int, default=224, help="frame size in px")
    p.add_argument("--steps", type=int, default=2, help="timed updates")
    p.add_argument("--arch", default="light_t")
    p.add_argument("--max-frames-per-chunk", type=int, default=0)
    p.add_argument("--checkpoint", action="store_true", help="with --json: the one setting to measure")
    p.add_argument("--json", action="store_true", help="measure one setting in this process, print it as JSON")
    args = p.parse_args(argv)
    defaults = CUDA_DEFAULTS if args.device == "cuda" else CPU_DEFAULTS
    frames, batch_size = args.frames or defaults["frames"], args.batch_size or defaults["batch_size"]
    if args.json:
        print(json.dumps(_measure(args.device, frames, args.size, args.checkpoint, batch_size, args.steps, args.arch,
                                  args.max_frames_per_chunk)))
        return None
    results = {}
    for ckpt in (False, True):
        results[ckpt] = r = measure_stage1_memory(args.device, frames, args.size, ckpt, batch_size, args.steps,
                                                  args.arch, args.max_frames_per_chunk)
        print(f"checkpoint={ckpt!s:5}: peak {r['peak_bytes'] / 2**30:.2f} GiB, before the update "
              f"{r['base_bytes'] / 2**30:.2f} GiB, {r['per_frame'] / 2**20:.2f} MiB per frame, "
              f"{r['seconds']:.3f} s/update", flush=True)
    off, on = results[False], results[True]
    print(f"{off['device']}; {batch_size} videos, {frames} frames of {args.size} px, {args.arch}, "
          f"max frames per chunk {args.max_frames_per_chunk or 'all'}")
    print(f"--checkpoint-backbone-activations: {off['per_frame'] / on['per_frame']:.2f}x less memory per frame, "
          f"{on['seconds'] / off['seconds']:.2f}x the time per update")
    return results


if __name__ == "__main__":
    main()
