#!/usr/bin/env python
"""One-command demo of the whole FLa-LLM pipeline on a synthetic sign language (``make demo``).

1. generate a synthetic dataset in the PHOENIX-2014-T release layout (+ a text-only corpus)
2. pre-train a tiny mBART "LLM" with fairseq's multilingual_denoising task on that corpus
3. trim its vocabulary to the training text (preprocess/trim_mbart.py)
4. preprocess the videos with the real PHOENIX preprocessor (mBART's tokenizer and dictionary)
5. stage 1: fairseq-train the light_t_tiny translator end to end (visual initialing)
6. flallm-extract-features: cache the frozen visual encoder's sign-wise features
7. stage 2: fairseq-train sign_mbart (frozen visual encoder + LLM-Adapter + mBART)
8. fairseq-generate --beam 5 on the test split for stage 1 alone and for stage 1+2
   (and for stage 2 from a randomly initialised mBART, the paper's Table 10 row)
9. flallm-export: the stage 1+2 model as a self-contained model directory, and
   flallm-translate on one test video with it
and prints BLEU-1..4 / ROUGE-L side by side, a few hypotheses, timings, and writes
``training_curves.png`` and tensorboard logs under ``--out-dir``.
Runs on 2 CPU cores in about 10 minutes; deterministic given ``--seed``.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from tqdm import tqdm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
USER_DIR = os.path.join(REPO, "flallm_plugin")
MARKER = ".flallm-demo"  # in --out-dir: a later run may delete and re-create it


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default="demo_out", help="everything is written here (re-created if an earlier demo wrote it; any other non-empty directory is refused)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--n-train", type=int, default=360)
    p.add_argument("--n-dev", type=int, default=40)
    p.add_argument("--n-test", type=int, default=60)
    p.add_argument("--resize", type=int, default=56, help="frames are resized to this (then cropped)")
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--stage1-epochs", type=int, default=18)
    p.add_argument("--stage2-epochs", type=int, default=40)
    p.add_argument("--mbart-updates", type=int, default=800, help="denoising pre-training updates of the tiny mBART")
    p.add_argument("--text-corpus-size", type=int, default=20000)
    p.add_argument("--workers", type=int, default=1, help="data-loader workers")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test (numbers meaningless)")
    return p


class Steps(object):
    """Runs the pipeline's commands, logs them, shows progress and keeps their timings."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.log_dir = os.path.join(out_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.times = {}

    def run(self, name, cmd, total=None, unit="epoch", pattern=r'\| train \| \{"epoch": (\d+)'):
        """Run ``cmd``; a progress bar follows ``pattern`` (e.g. the epoch) in its output."""
        log_path = os.path.join(self.log_dir, f"{name}.log")
        t0 = time.time()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log_path, "w", encoding="utf-8") as log, tqdm(total=total, desc=name, unit=unit, leave=True) as bar:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            done = 0
            for line in proc.stdout:
                log.write(line)
                log.flush()
                m = re.search(pattern, line) if pattern else None
                if m and total:
                    n = int(m.group(1))
                    if n > done:
                        bar.update(n - done)
                        done = n
            proc.wait()
            if total and done < total:
                bar.update(total - done)
        self.times[name] = time.time() - t0
        if proc.returncode != 0:
            with open(log_path, encoding="utf-8") as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"step {name!r} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
        with open(log_path, encoding="utf-8") as f:
            return f.read()

    def python(self, name, fn):
        t0 = time.time()
        with tqdm(total=1, desc=name, unit="step") as bar:
            result = fn()
            bar.update(1)
        self.times[name] = time.time() - t0
        return result


def json_records(log_text, tag):
    """fairseq --log-format json lines for a progress tag (train, dev, train_inner)."""
    out = []
    for line in log_text.splitlines():
        i = line.find("{")
        if i < 0 or f"| {tag} |" not in line:
            continue
        try:
            out.append(json.loads(line[i:]))
        except json.JSONDecodeError:
            continue
    return out


def parse_generate(text, source):
    """(hypotheses, references) of a fairseq-generate output, ordered by sample id."""
    from flallm_plugin.scoring.generate_output import hypotheses_and_references, parse_generate_lines

    return hypotheses_and_references(parse_generate_lines(text.split("\n"), source), source)


def plot_curves(path, stage1_log, stage2_log):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, text in (("stage 1 (Light-T)", stage1_log), ("stage 2 (mBART)", stage2_log)):
        train = json_records(text, "train")
        dev = json_records(text, "dev")
        axes[0].plot([int(r["epoch"]) for r in train], [float(r["train_loss"]) for r in train], label=f"{label} train")
        axes[0].plot([int(r["epoch"]) for r in dev], [float(r["dev_loss"]) for r in dev], "--", label=f"{label} dev")
        bleu = [(int(r["epoch"]), float(r["dev_bleu"])) for r in dev if "dev_bleu" in r]
        if bleu:
            axes[1].plot(*zip(*bleu), marker="o", label=label)
    train1 = json_records(stage1_log, "train")
    for key in ("backbone", "temporal", "adapter", "translator"):
        vals = [(int(r["epoch"]), float(r[f"train_gnorm_{key}"])) for r in train1 if f"train_gnorm_{key}" in r]
        if vals:
            axes[2].plot(*zip(*vals), label=key)
    axes[0].set(title="loss (label-smoothed CE)", xlabel="epoch")
    axes[1].set(title="dev BLEU-4", xlabel="epoch")
    axes[2].set(title="stage 1 gradient norm per module", xlabel="epoch", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_common(args):
    """fairseq-train options shared by both stages of the demo."""
    return ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--seed", str(args.seed),
            "--num-workers", str(args.workers), "--required-batch-size-multiple", "1", "--valid-subset", "dev",
            "--log-format", "json", "--log-interval", "10", "--no-epoch-checkpoints", "--no-last-checkpoints",
            "--eval-bleu", "--eval-bleu-args", '{"beam": 1, "max_len_b": 30}',
            "--best-checkpoint-metric", "bleu", "--maximize-best-checkpoint-metric"]


def stage1_command(data, save_dir, args, common):
    """The demo's stage-1 recipe. Differences from the paper's, for a CPU budget: ResNet-18 from scratch
    (no ImageNet weights offline), 48 px frames, Adam with a 50-update warm-up (without it the from-scratch
    CNN's gradients collapse and Light-T falls back to a language model), no augmentation (the sign
    locations are the signal at this resolution)."""
    return [
        os.path.join(BIN, "fairseq-train"), data, *common, "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2", "--optimizer", "adam",
        "--lr", "1e-3", "--lr-scheduler", "cosine", "--warmup-updates", "50", "--warmup-init-lr", "1e-6",
        "--max-epoch", str(args.stage1_epochs), "--no-augment",
        "--max-update", str(args.stage1_epochs * ((args.n_train + 15) // 16)), "--batch-size", "16",
        "--save-dir", save_dir]


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.quick:
        args.n_train, args.n_dev, args.n_test = 40, 8, 8
        args.stage1_epochs, args.stage2_epochs, args.mbart_updates, args.text_corpus_size = 2, 2, 20, 500
    out = os.path.abspath(args.out_dir)
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.isfile(os.path.join(out, MARKER)):  # never delete what an earlier demo did not write
            sys.exit(f"run_demo.py: error: --out-dir {out}: not empty and not written by run_demo.py (no {MARKER} "
                     "file in it), so it is not deleted: choose another --out-dir, or remove it yourself")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARKER), "w", encoding="utf-8") as f:
        f.write("written by examples/synthetic/run_demo.py; its next run re-creates this directory\n")
    steps = Steps(out)
    t_start = time.time()
    raw, data, feats = (os.path.join(out, d) for d in ("raw", "data", "features"))
    mbart, trimmed = os.path.join(out, "mbart"), os.path.join(out, "mbart_trimmed")
    ckpt1, ckpt2, tb = os.path.join(out, "ckpt_stage1"), os.path.join(out, "ckpt_stage2"), os.path.join(out, "tensorboard")

    # 1. data in the PHOENIX-2014-T release layout
    from flallm_tools.synthetic import generate

    summary = steps.python("generate", lambda: generate(
        raw, n_train=args.n_train, n_dev=args.n_dev, n_test=args.n_test, seed=args.seed,
        text_corpus_size=args.text_corpus_size))
    corpus = os.path.join(raw, "text_corpus.de.txt")
    train_text = os.path.join(out, "train.de.txt")
    import csv

    with open(os.path.join(raw, "PHOENIX-2014-T", "annotations", "manual", "PHOENIX-2014-T.train.corpus.csv"),
              encoding="utf-8") as f:
        train_sents = [r["translation"] for r in csv.DictReader(f, delimiter="|")]
    with open(train_text, "w", encoding="utf-8") as f:
        f.write("\n".join(train_sents) + "\n")

    # 2-3. the "LLM": a tiny mBART pre-trained on text only, then trimmed
    steps.run("pretrain_mbart", [sys.executable, "preprocess/pretrain_tiny_mbart.py", "--text", corpus, "--out-dir",
                                 mbart, "--langs", "de_DE", "--max-update", str(args.mbart_updates), "--layers", "2",
                                 "--dim", "128", "--ffn", "256", "--heads", "4", "--seed", str(args.seed)],
              total=args.mbart_updates, unit="update", pattern=r"num_updates[\"=: ]+(\d+)")
    steps.run("trim_mbart", [sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", mbart, "--train-text",
                             train_text, "--out-dir", trimmed, "--langs", "de_DE"], pattern=None)

    # 4. the real PHOENIX preprocessor, with mBART's tokenizer and trimmed dictionary
    steps.run("preprocess", [sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", raw, "--out-dir", data,
                             "--resize", str(args.resize), "--crop", str(args.crop),
                             "--spm-model", os.path.join(mbart, "sentence.bpe.model"),
                             "--dict", os.path.join(trimmed, "dict.txt"), "--tgt-lang-tag", "[de_DE]"], pattern=None)

    common = train_common(args)

    # 5. stage 1: visual initialing (see stage1_command for the CPU-budget recipe)
    log1 = steps.run("stage1_train", stage1_command(data, ckpt1, args, common) + [
        "--tensorboard-logdir", os.path.join(tb, "stage1")], total=args.stage1_epochs)

    # 6. cached features of the frozen visual encoder
    steps.run("extract_features", [os.path.join(BIN, "flallm-extract-features"), "--data", data, "--checkpoint",
                                   os.path.join(ckpt1, "checkpoint_best.pt"), "--out-dir", feats, "--cpu",
                                   "--num-workers", str(args.workers)], pattern=None)

    # 7. stage 2: LLM fine-tuning on the cached features (and, as the paper's Table 10 row, the same
    #    stage 2 from a randomly initialised mBART: what the LLM's text pre-training adds)
    n_up2 = args.stage2_epochs * ((args.n_train + 15) // 16)

    def stage2(name, ckpt_dir, pretrained):
        return steps.run(name, [
            os.path.join(BIN, "fairseq-train"), feats, *common, "--arch", "sign_mbart_tiny", "--encoder-layers", "2",
            "--decoder-layers", "2", "--encoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256",
            "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
            "--load-visual-encoder-from", os.path.join(ckpt1, "checkpoint_best.pt"),
            "--pretrained-mbart", pretrained, "--criterion", "label_smoothed_cross_entropy",
            "--label-smoothing", "0.2", "--optimizer", "param_group_adam", "--lr", "1e-3",
            "--group-lr", '{"adapter": 3e-3}', "--lr-scheduler", "cosine", "--max-update", str(n_up2),
            "--max-epoch", str(args.stage2_epochs), "--batch-size", "16", "--save-dir", ckpt_dir,
            "--tensorboard-logdir", os.path.join(tb, name)], total=args.stage2_epochs)

    log2 = stage2("stage2_train", ckpt2, os.path.join(trimmed, "model.pt"))
    ckpt2_rand = os.path.join(out, "ckpt_stage2_random_mbart")
    stage2("stage2_random_mbart_train", ckpt2_rand, "none")

    # 8. beam-5 decoding of the test split, both systems
    gen = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--gen-subset", "test", "--beam", "5",
           "--batch-size", "16", "--required-batch-size-multiple", "1", "--num-workers", str(args.workers),
           "--scoring", "sign_eval"]
    out1 = steps.run("stage1_generate", [os.path.join(BIN, "fairseq-generate"), data, *gen, "--path",
                                         os.path.join(ckpt1, "checkpoint_best.pt")], pattern=None)
    out2 = steps.run("stage2_generate", [os.path.join(BIN, "fairseq-generate"), feats, *gen, "--path",
                                         os.path.join(ckpt2, "checkpoint_best.pt")], pattern=None)
    out3 = steps.run("stage2_random_mbart_generate", [os.path.join(BIN, "fairseq-generate"), feats, *gen, "--path",
                                                      os.path.join(ckpt2_rand, "checkpoint_best.pt")], pattern=None)

    from flallm_plugin.scoring.sign_eval import evaluate

    hyp1, ref1 = parse_generate(out1, "stage1_generate output")
    hyp2, ref2 = parse_generate(out2, "stage2_generate output")
    hyp3, ref3 = parse_generate(out3, "stage2_random_mbart_generate output")
    r1, r2, r3 = evaluate(hyp1, ref1), evaluate(hyp2, ref2), evaluate(hyp3, ref3)
    plot_path = os.path.join(out, "training_curves.png")
    steps.python("plot", lambda: plot_curves(plot_path, log1, log2))

    def per_update(log):
        tr = json_records(log, "train")
        return sum(float(r["train_train_wall"]) for r in tr) / max(int(tr[-1]["train_num_updates"]), 1) if tr else 0.0

    # 9. the stage 1+2 model as a self-contained model directory; one test video translated with it
    model_dir = os.path.join(out, "model")
    steps.run("export", [sys.executable, "-m", "flallm_plugin.cli.export", "--checkpoint",
                         os.path.join(ckpt2, "checkpoint_best.pt"), "--data", feats, "--out", model_dir], pattern=None)
    with open(os.path.join(data, "test.tsv"), encoding="utf-8") as f:
        first = next(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    from flallm_plugin.data.data_cfg import SignDataConfig

    video = os.path.join(SignDataConfig(os.path.join(data, "config.yaml")).video_root, first["video"])
    translated = steps.run("translate", [sys.executable, "-m", "flallm_plugin.cli.translate", model_dir, video,
                                         "--cpu"], pattern=None)
    translation = next(line for line in translated.splitlines() if line.startswith(video + "\t")).split("\t", 1)[1]

    lines = ["", "=" * 72, f"FLa-LLM demo on a synthetic sign language (test split: {len(ref1)} videos of unseen "
             "sign combinations)", "=" * 72,
             f"{'system':<26}{'BLEU-1':>8}{'BLEU-2':>8}{'BLEU-3':>8}{'BLEU-4':>8}{'ROUGE-L':>9}"]
    for name, r in (("stage 1 alone (Light-T)", r1), ("stage 1+2 (FLa-LLM)", r2),
                    ("stage 1+2, random mBART", r3)):
        lines.append(f"{name:<26}" + "".join(f"{r[f'bleu{n}']:>8.2f}" for n in range(1, 5)) + f"{r['rouge_l']:>9.2f}")
    lines += ["", f"sacrebleu signature: {r2['signature']}", "", "examples (reference | stage 1 | stage 1+2):"]
    for i in range(min(5, len(ref1))):
        lines += [f"  REF  {ref1[i]}", f"  S1   {hyp1[i]}", f"  S1+2 {hyp2[i]}", ""]
    lines += [f"flallm-translate {os.path.relpath(model_dir, out)} (exported stage 1+2 model) on one test video:",
              f"  {os.path.relpath(video, out)}", f"  REF  {first['tgt_text']}", f"  HYP  {translation}", ""]
    lines += [f"seconds per update: stage 1 {per_update(log1):.2f}, stage 2 {per_update(log2):.3f} (cached features)",
              "time per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in steps.times.items()),
              f"total {time.time() - t_start:.0f} s; curves: {plot_path}; tensorboard: {tb}; logs: {steps.log_dir}"]
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(out, "results.txt"), "w", encoding="utf-8") as f:
        f.write(report + "\n")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"stage1": r1, "stage1+2": r2, "stage1+2_random_mbart": r3, "times": steps.times, "dataset": summary}, f, indent=1, default=str)
    return r1, r2, r3


if __name__ == "__main__":
    main()
