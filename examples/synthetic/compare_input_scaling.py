#!/usr/bin/env python
"""Light-T's input scaling, measured: adapter output x sqrt(d) (fairseq's token-embedding
convention) or unscaled (GFSLT-VLP's ``scale_embedding: False`` for the visual input).

Trains the demo's stage-1 recipe (:func:`run_demo.stage1_command`) on the demo's data directory
with and without ``--no-scale-visual-input``, for several seeds, then decodes the dev split with
beam 5 and prints dev BLEU-4 / ROUGE-L after the same number of updates::

    make demo                                   # writes demo_out/data
    python examples/synthetic/compare_input_scaling.py --demo-dir demo_out --seeds 1 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from run_demo import BIN, USER_DIR, get_parser as demo_parser, stage1_command, train_common

from flallm_plugin.scoring.generate_output import hypotheses_and_references, parse_generate_lines
from flallm_plugin.scoring.sign_eval import evaluate
from flallm_plugin.data.sign_translation_dataset import read_manifest

SETTINGS = {"sqrt_d": ["--scale-visual-input"], "unscaled": ["--no-scale-visual-input"]}


def run(cmd, log):
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed (exit {proc.returncode}); see {log}")
    with open(log, encoding="utf-8") as f:
        return f.read()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-dir", default="demo_out", help="output directory of `make demo` (uses its data/)")
    p.add_argument("--out-dir", default=None, help="default: DEMO_DIR/input_scaling")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--stage1-epochs", type=int, default=None, help="default: the demo's")
    args = p.parse_args(argv)
    data = os.path.join(args.demo_dir, "data")
    out = args.out_dir or os.path.join(args.demo_dir, "input_scaling")
    os.makedirs(out, exist_ok=True)
    refs = [r["tgt_text"] for r in read_manifest(os.path.join(data, "dev.tsv"))]
    rows = []
    for seed in args.seeds:
        for name, extra in SETTINGS.items():
            epochs = [] if args.stage1_epochs is None else ["--stage1-epochs", str(args.stage1_epochs)]
            demo = demo_parser().parse_args(["--seed", str(seed)] + epochs)
            ckpt = os.path.join(out, f"{name}_seed{seed}")
            t0 = time.time()
            run(stage1_command(data, ckpt, demo, train_common(demo)) + extra,
                os.path.join(out, f"{name}_seed{seed}.train.log"))
            gen = run([os.path.join(BIN, "fairseq-generate"), data, "--user-dir", USER_DIR, "--task",
                       "sign_translation", "--cpu", "--gen-subset", "dev", "--beam", "5", "--batch-size", "16",
                       "--required-batch-size-multiple", "1", "--path", os.path.join(ckpt, "checkpoint_best.pt")],
                      os.path.join(out, f"{name}_seed{seed}.dev.txt"))
            samples = parse_generate_lines(gen.splitlines(), f"{name} seed {seed} generate output")
            hyps, _ = hypotheses_and_references(samples, "generate output")
            r = evaluate(hyps, [refs[i] for i in sorted(samples)])
            rows.append({"setting": name, "seed": seed, "dev_bleu4": r["bleu4"], "dev_rouge_l": r["rouge_l"],
                         "seconds": round(time.time() - t0)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| input scaling | dev BLEU-4 per seed | mean | dev ROUGE-L mean |\n|---|---|---|---|")
    for name in SETTINGS:
        rs = [r for r in rows if r["setting"] == name]
        b = [r["dev_bleu4"] for r in rs]
        print(f"| {name} | {' / '.join(f'{x:.2f}' for x in b)} | {statistics.mean(b):.2f} | "
              f"{statistics.mean(r['dev_rouge_l'] for r in rs):.2f} |")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
