#!/usr/bin/env python
"""Resident memory of a long ``fairseq-train`` run, sampled from outside at the end of every epoch.

Builds the coloured-block PHOENIX-2014-T release (``flallm_tools.synthetic.make_phoenix``, 32 px
frames cropped to 28), then runs stage 1 (``light_t_tiny``, validation with BLEU every epoch,
checkpoints every epoch) for ``--epochs`` epochs. Each time the run logs the end of an epoch, the
``VmRSS`` of the fairseq-train process (plus its data-loader workers, with ``--num-workers`` > 0) is
read from ``/proc/<pid>/status``. Prints the curve and the growth after the first ``--warmup`` epochs
(allocator and caches settle there); flat memory is a growth of a few per cent at most.

    python benchmarks/memory_curve.py                      # 30 epochs, --num-workers 0
    python benchmarks/memory_curve.py --epochs 60 --num-workers 2
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from flallm_tools.synthetic import make_phoenix  # noqa: E402

EPOCH_END = re.compile(r"end of epoch (\d+) ")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status: no VmRSS line")


def children(pid: int):
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def tree_rss_kib(pid: int) -> int:
    """RSS of ``pid`` and its live children (data-loader workers); shared pages count in each."""
    total = rss_kib(pid)
    for c in children(pid):
        try:
            total += rss_kib(c)
        except FileNotFoundError:  # a worker that ended between the listing and the read
            pass
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="epochs before the growth is measured")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--work-dir", default=None, help="where the data and checkpoints go (default: a temp dir)")
    args = p.parse_args()

    work = args.work_dir or tempfile.mkdtemp(prefix="memory_curve_")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [x for x in [os.environ.get("PYTHONPATH")] if x]))
    env.setdefault("OMP_NUM_THREADS", "1")
    release = make_phoenix(os.path.join(work, "release"))
    data = os.path.join(work, "data")
    subprocess.run([sys.executable, os.path.join(REPO, "preprocess/prep_phoenix14t.py"), "--data-root", release,
                    "--out-dir", data, "--resize", "32", "--crop", "28", "--vocab-size", "100"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    bin_dir = os.path.dirname(sys.executable)
    cmd = [os.path.join(bin_dir, "fairseq-train"), data, "--user-dir", os.path.join(REPO, "flallm_plugin"),
           "--task", "sign_translation", "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
           "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2", "--optimizer", "adam",
           "--lr", "1e-3", "--max-epoch", str(args.epochs), "--batch-size", str(args.batch_size),
           "--required-batch-size-multiple", "1", "--cpu", "--num-workers", str(args.num_workers),
           "--valid-subset", "dev", "--eval-bleu", "--eval-bleu-args", '{"beam": 2, "max_len_b": 10}',
           "--save-dir", os.path.join(work, "ckpt"), "--keep-last-epochs", "2", "--log-format", "simple"]
    print(" ".join(cmd), flush=True)
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    curve, tail = [], []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        m = EPOCH_END.search(line)
        if m:
            curve.append((int(m.group(1)), tree_rss_kib(proc.pid), time.time() - start))
            print(f"epoch {curve[-1][0]:3d}  RSS {curve[-1][1] / 1024:8.1f} MiB  ({curve[-1][2]:6.1f} s, "
                  f"{len(children(proc.pid))} child processes)", flush=True)
    if proc.wait() != 0:
        sys.exit(f"fairseq-train failed (exit status {proc.returncode}):\n{''.join(tail)}")
    if len(curve) <= args.warmup:
        sys.exit(f"only {len(curve)} epochs logged; need more than --warmup {args.warmup}")
    base = curve[args.warmup - 1][1]
    after = [r for _, r, _ in curve[args.warmup:]]
    print(f"\nRSS after epoch {args.warmup}: {base / 1024:.1f} MiB; epochs {args.warmup + 1}-{curve[-1][0]}: "
          f"min {min(after) / 1024:.1f}, max {max(after) / 1024:.1f}, last {after[-1] / 1024:.1f} MiB")
    print(f"growth after epoch {args.warmup}: max {100 * (max(after) - base) / base:+.1f} %, "
          f"last {100 * (after[-1] - base) / base:+.1f} %  (flat: <= 5 %)")
    print(f"first epoch: {curve[0][1] / 1024:.1f} MiB; work dir {work}")


if __name__ == "__main__":
    main()
