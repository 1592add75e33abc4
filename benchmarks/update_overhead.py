#!/usr/bin/env python
"""Where the fixed cost of a stage-1 update goes: one update of ``light_t_tiny`` on a few small
frames (so the CNN is small and what does not scale with frames shows), through fairseq's own
``Trainer.train_step`` (the task's ``train_step``, fairseq's gradient bookkeeping, clipping,
optimizer step and logging), profiled with ``torch.profiler`` on the CPU.

Each row is a region of the update: its CPU milliseconds and the number of top-level ATen
operator calls in it (on a GPU each launches one or more kernels: the count is the
hardware-independent part of the fixed cost). ``collate`` is the dataset's collater building
the batch (in a data-loader worker in training, so off the update's critical path).

    python benchmarks/update_overhead.py                         # SGD (the stage-1 recipe)
    python benchmarks/update_overhead.py --optimizer adam         # fairseq's Adam
    python benchmarks/update_overhead.py --compare adam,param_group_adam   # interleaved A/B of whole updates
    python benchmarks/update_overhead.py --cuts        # each cut before/after, interleaved, on the model's gradients

:func:`fixed_update_cost` is the importable measurement (``benchmarks/run_all.py``).
"""
import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import flallm_plugin  # noqa: E402,F401  (registers the task and the models)
from fairseq import metrics, options, tasks  # noqa: E402
from fairseq.dataclass.utils import convert_namespace_to_omegaconf  # noqa: E402
from fairseq.trainer import Trainer  # noqa: E402

from flallm_plugin.data.data_cfg import SignDataConfig  # noqa: E402
from flallm_plugin.data.sign_translation_dataset import SignTranslationDataset, SignTranslationDatasetItem  # noqa: E402
from flallm_plugin.data.visual_input import VisualInputSpec  # noqa: E402
from flallm_plugin.tasks.grad_norms import GRAD_NORMS_REGION  # noqa: E402

PLUGIN = os.path.join(REPO, "flallm_plugin")
VOCAB = 2400
OPTIMIZER_ARGS = {
    "sgd": ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "1e-2"],
    "adam": ["--optimizer", "adam", "--lr", "1e-3"],
    "param_group_adam": ["--optimizer", "param_group_adam", "--lr", "1e-3"],
    "param_group_sgd": ["--optimizer", "param_group_sgd", "--momentum", "0.9", "--lr", "1e-2"],
}
# fairseq's own profiler ranges (fairseq_task.train_step and trainer.train_step) and ours
REGIONS = ("forward", "backward", GRAD_NORMS_REGION, "reduce-grads", "multiply-grads", "clip-grads", "optimizer")
VISUAL_REGION = "visual encoder forward"


def write_data_dir(data_dir, size):
    with open(os.path.join(data_dir, "config.yaml"), "w") as f:
        f.write(f"vocab_filename: dict.txt\nresize: {size}\ncrop: {size}\n")
    with open(os.path.join(data_dir, "dict.txt"), "w") as f:
        f.writelines(f"tok{i} 1\n" for i in range(VOCAB - 4))


def build_trainer(data_dir, optimizer="sgd", arch="light_t_tiny", seed=1, extra=(), device="cpu"):
    """Task, model, criterion and fairseq's Trainer as fairseq-train builds them (on CUDA with --amp)."""
    argv = [data_dir, "--user-dir", PLUGIN, "--task", "sign_translation", "--arch", arch,
            "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy",
            "--label-smoothing", "0.1", "--seed", str(seed), "--cpu" if device == "cpu" else "--amp",
            "--clip-norm", "1.0",
            "--lr-scheduler", "fixed", "--batch-size", "2", "--required-batch-size-multiple", "1",
            ] + OPTIMIZER_ARGS[optimizer] + list(extra)
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(seed)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    return task, model, criterion, Trainer(cfg, task, model, criterion)


def make_items(task, batch, frames, size, tgt_len, seed):
    rng = np.random.RandomState(seed)
    d = task.target_dictionary
    items = []
    for i in range(batch):
        video = torch.from_numpy(rng.randint(0, 256, (frames, size, size, 3), dtype=np.uint8))
        toks = torch.from_numpy(np.append(rng.randint(d.nspecial, len(d), tgt_len - 1), d.eos())).long()
        items.append(SignTranslationDatasetItem(index=i, source=video, target=toks))
    return items


def make_dataset(task, data_dir, items):
    """The task's dataset class over in-memory items: its real collater."""
    cfg = SignDataConfig(os.path.join(data_dir, "config.yaml"))
    ds = SignTranslationDataset("train", True, cfg, [f"v{i}" for i in range(len(items))],
                                [x.source.size(0) for x in items], tgt_texts=["x"] * len(items),
                                tgt_dict=None, visual_input=VisualInputSpec.from_data_cfg(cfg, 1.0))
    ds.tgt_dict, ds.tgt_tokens = task.target_dictionary, [x.target for x in items]
    return ds


@contextlib.contextmanager
def visual_region(model):
    """A profiler range around the visual encoder's forward (hooks, removed on exit)."""
    visual = model.encoder.visual
    state = {}

    def pre(module, args):
        state["r"] = torch.autograd.profiler.record_function(VISUAL_REGION)
        state["r"].__enter__()

    def post(module, args, out):
        state.pop("r").__exit__(None, None, None)

    handles = [visual.register_forward_pre_hook(pre), visual.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# operators that only make tensor metadata or allocate: no kernel on a GPU
METADATA_OPS = {"aten::" + n for n in ("detach", "detach_", "alias", "view", "as_strided", "empty", "empty_strided",
                                        "empty_like", "t", "transpose", "expand", "slice", "select", "unsqueeze",
                                        "squeeze", "_unsafe_view", "reshape", "lift_fresh", "resolve_conj",
                                        "resolve_neg", "permute", "unbind", "split", "chunk", "narrow", "to")}


def count_ops(events):
    """ATen operators among ``events`` and their descendants, not counting those called by another
    ATen operator, nor those that only make metadata (``METADATA_OPS``): roughly, GPU kernel launches."""
    n, stack = 0, list(events)
    while stack:
        e = stack.pop()
        if e.name.startswith("aten::"):
            n += e.name not in METADATA_OPS or count_ops(e.cpu_children) > 0
        else:
            stack.extend(e.cpu_children)
    return n


def region_table(prof, total_ms):
    """(name, ms, top-level ATen calls) per region, with the rest of the update as 'fairseq bookkeeping'."""
    events = prof.events()
    by_name = {}
    for ev in events:
        if ev.name in REGIONS + (VISUAL_REGION, "update", "collate"):
            by_name.setdefault(ev.name, []).append(ev)

    def top_aten(ev):
        return count_ops(ev.cpu_children)

    def ms(name):
        return sum(e.cpu_time_total for e in by_name.get(name, [])) / 1e3

    def ops(name):
        return sum(top_aten(e) for e in by_name.get(name, []))

    rows = []
    for name in REGIONS:
        if name == "forward":
            rows.append(("forward: visual encoder (CNN + temporal)", ms(VISUAL_REGION), ops(VISUAL_REGION)))
            rows.append(("forward: VL-Adapter + Light-T + loss", ms("forward") - ms(VISUAL_REGION),
                         ops("forward") - ops(VISUAL_REGION)))
        else:
            rows.append((name, ms(name), ops(name)))
    inside = sum(r[1] for r in rows)
    inside_ops = sum(r[2] for r in rows)
    rows.append(("fairseq bookkeeping (rest of train_step)", ms("update") - inside, ops("update") - inside_ops))
    rows.append(("update total (Trainer.train_step)", ms("update"), ops("update")))
    rows.append(("collate (data-loader worker)", ms("collate"), ops("collate")))
    return rows


def profile_update(trainer, dataset, items, warmup=3, repeat=5):
    """Median-update profile: ``repeat`` profiled updates after ``warmup``, each region averaged."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        trainer.train_step([dataset.collater(items)])
    with visual_region(trainer.model), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeat):
            with torch.autograd.profiler.record_function("collate"):
                sample = dataset.collater(items)
            with torch.autograd.profiler.record_function("update"):
                trainer.train_step([sample])
    rows = region_table(prof, None)
    return [(name, t / repeat, n / repeat) for name, t, n in rows]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_updates(trainer, sample, n, device="cpu"):
    times = []
    for _ in range(n):
        sync(device)
        t = time.perf_counter()
        trainer.train_step([sample])
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def fixed_update_cost(optimizers=("sgd",), batch=2, frames=2, size=32, tgt_len=8, rounds=7, per_round=3,
                      warmup=3, seed=1, device="cpu", frames_hi=None):
    """Median seconds (``s``) of a ``light_t_tiny`` update on ``batch`` x ``frames`` frames of ``size`` px
    through fairseq's Trainer, one trainer per optimizer, interleaved (A, B, A, B...) in this process,
    and the ATen operators of one update as on a GPU (``ops``, :func:`gpu_ops`). With ``frames_hi``, also
    the median at that many frames (``s_hi``, interleaved with the rest) and the fixed cost ``fixed_s``: the
    update time extrapolated to no frames, ``s - frames * (s_hi - s) / (frames_hi - frames)``."""
    with tempfile.TemporaryDirectory(prefix="update_overhead.") as d:
        write_data_dir(d, size)
        built = {o: build_trainer(d, o, seed=seed, device=device) for o in optimizers}
        task = built[optimizers[0]][0]
        samples = {}
        for f in (frames,) if frames_hi is None else (frames, frames_hi):
            items = make_items(task, batch, f, size, tgt_len, seed)
            samples[f] = make_dataset(task, d, items).collater(items)
    sample = samples[frames]
    ops = {}
    for o in optimizers:
        for x in samples.values():
            time_updates(built[o][3], x, warmup, device)
        ops[o] = gpu_ops(lambda: built[o][3].train_step([sample]))
    times = {(o, f): [] for o in optimizers for f in samples}
    for _ in range(rounds):
        for o in optimizers:
            for f, x in samples.items():
                times[o, f] += time_updates(built[o][3], x, per_round, device)
    out = {}
    for o in optimizers:
        out[o] = {"s": statistics.median(times[o, frames]), "ops": ops[o]}
        if frames_hi is not None:
            hi = statistics.median(times[o, frames_hi])
            out[o].update(s_hi=hi, fixed_s=out[o]["s"] - frames * (hi - out[o]["s"]) / (frames_hi - frames))
    return out


def per_parameter_grad_norms(model, sample_size):
    """The gradient norms as computed before ``torch._foreach_norm`` (one norm per parameter)."""
    out = {}
    for name, ps in model.grad_norm_groups().items():
        grads = [p.grad.detach().float() for p in ps if p.grad is not None]
        out[name] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) / max(
            float(sample_size), 1.0)
    return out


def interleaved(fns, rounds=15, per_round=3):
    """Median seconds of each of ``fns`` (name -> callable), called A, B, A, B... in this process."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            for _ in range(per_round):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def top_level_ops(fn):
    """ATen operators ``fn`` calls from Python (each one or more kernels on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return count_ops([e for e in prof.events() if e.cpu_parent is None])


def cuts(batch=2, frames=2, size=32, tgt_len=8, seed=1, rounds=15):
    """Before/after of each cut on one light_t_tiny model's real gradients: gradient norms, clipping,
    Adam step. Returns rows (cut, before ms, after ms, before ops, after ops)."""
    from fairseq import utils
    from fairseq.optim.adam import Adam as FairseqAdamAlgorithm

    from flallm_plugin.optim.foreach import ForeachAdam, foreach_clip_grad_norm_
    from flallm_plugin.tasks.grad_norms import grad_norms

    with tempfile.TemporaryDirectory(prefix="update_overhead.") as d:
        write_data_dir(d, size)
        task, model, _, trainer = build_trainer(d, "sgd", seed=seed)
        items = make_items(task, batch, frames, size, tgt_len, seed)
        sample = make_dataset(task, d, items).collater(items)
    trainer.train_step([sample])  # leaves this update's gradients in place
    params = [p for p in model.parameters() if p.grad is not None]

    def copies():
        out = [torch.nn.Parameter(p.detach().clone()) for p in params]
        for c, p in zip(out, params):
            c.grad = p.grad.clone()
        return out

    adam_before = FairseqAdamAlgorithm(copies(), lr=1e-5)
    adam_after = ForeachAdam(copies(), lr=1e-5)
    pairs = {
        "gradient norms (ours, per group)": (lambda: per_parameter_grad_norms(model, 10),
                                             lambda: grad_norms(model, None, 10)),
        # max_norm far above the norm: the multiply by 1 leaves the gradients as they are
        "gradient clipping (fairseq's, --clip-norm)": (lambda: utils.clip_grad_norm_(params, 1e9),
                                                        lambda: foreach_clip_grad_norm_(params, 1e9)),
        "Adam step (--optimizer adam vs param_group_adam)": (adam_before.step, adam_after.step),
    }
    rows = []
    for name, (before, after) in pairs.items():
        t = interleaved({"before": before, "after": after}, rounds=rounds)
        rows.append((name, t["before"] * 1e3, t["after"] * 1e3, top_level_ops(before), top_level_ops(after),
                     gpu_ops(after)))
    return rows


def gpu_ops(fn):
    """``top_level_ops(fn)`` as on a GPU, where ForeachAdam does not cut its buckets into CPU-cache chunks."""
    from flallm_plugin.optim import foreach

    saved = foreach.CPU_CHUNK_ELEMENTS
    foreach.CPU_CHUNK_ELEMENTS = float("inf")
    try:
        return top_level_ops(fn)
    finally:
        foreach.CPU_CHUNK_ELEMENTS = saved


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZER_ARGS), default="sgd")
    p.add_argument("--compare", default=None,
                   help="comma-separated optimizers: median s/update of each, interleaved, instead of the profile")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--frames", type=int, default=2, help="frames per video")
    p.add_argument("--frames-hi", type=int, default=8,
                   help="--compare: also time updates on this many frames per video and report the fixed cost "
                        "(the update time extrapolated to no frames); 0: only --frames")
    p.add_argument("--size", type=int, default=32, help="frame size in px")
    p.add_argument("--tgt-len", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rounds", type=int, default=7, help="--compare: interleaved rounds")
    p.add_argument("--cuts", action="store_true", help="each cut before/after (interleaved) instead of the profile")
    args = p.parse_args(argv)
    logging.getLogger("fairseq").setLevel(logging.WARNING)
    logging.getLogger("flallm_plugin").setLevel(logging.WARNING)
    print(f"light_t_tiny, batch {args.batch_size} x {args.frames} frames of {args.size} px, target {args.tgt_len} "
          f"tokens, |V| {VOCAB}; CPU, {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    if args.cuts:
        rows = cuts(args.batch_size, args.frames, args.size, args.tgt_len)
        print("| cut | before ms | after ms | speed-up | ATen calls before -> after (as on a GPU) |")
        print("|---|---|---|---|---|")
        for name, b, a, ob, oa, og in rows:
            print(f"| {name} | {b:.2f} | {a:.2f} | {b / a:.2f}x | {ob} -> {oa} ({og}) |")
        return rows
    if args.compare:
        opts = tuple(args.compare.split(","))
        unknown = set(opts) - set(OPTIMIZER_ARGS)
        if unknown:
            raise SystemExit(f"--compare: unknown optimizers {sorted(unknown)} (have {', '.join(OPTIMIZER_ARGS)})")
        r = fixed_update_cost(opts, args.batch_size, args.frames, args.size, args.tgt_len, rounds=args.rounds,
                              frames_hi=args.frames_hi or None)
        base = r[opts[0]]
        for o, x in r.items():
            print(f"  {o:>18}: {x['s'] * 1e3:.2f} ms/update (median), {base['s'] / x['s']:.2f}x vs {opts[0]}; "
                  f"{x['ops']} ATen calls per update (as on a GPU)")
            if "fixed_s" in x:
                print(f"  {'':>18}  {x['s_hi'] * 1e3:.2f} ms at {args.frames_hi} frames; fixed cost (no frames) "
                      f"{x['fixed_s'] * 1e3:.2f} ms, {base['fixed_s'] / x['fixed_s']:.2f}x vs {opts[0]}")
        return r
    with tempfile.TemporaryDirectory(prefix="update_overhead.") as d:
        write_data_dir(d, args.size)
        task, model, criterion, trainer = build_trainer(d, args.optimizer)
        items = make_items(task, args.batch_size, args.frames, args.size, args.tgt_len, 1)
        dataset = make_dataset(task, d, items)
    with metrics.aggregate("train"):
        rows = profile_update(trainer, dataset, items, repeat=args.repeat)
    total = [r for r in rows if r[0].startswith("update total")][0][1]
    print(f"--optimizer {args.optimizer}; {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters in "
          f"{len(list(model.parameters()))} tensors; mean of {args.repeat} profiled updates\n")
    print("| region | CPU ms | share of update | top-level ATen calls |")
    print("|---|---|---|---|")
    for name, t, n in rows:
        share = f"{t / total:.1%}" if not name.startswith("collate") else "(worker)"
        print(f"| {name} | {t:.2f} | {share} | {n:.0f} |")
    return rows


if __name__ == "__main__":
    main()
