"""The whole factorized pipeline through the command-line tools, on a tiny generated dataset.

prep (mBART's spm + trimmed dict) -> stage 1 fairseq-train -> flallm-extract-features ->
fairseq-made tiny mBART (multilingual_denoising) -> trim_mbart -> stage 2 fairseq-train ->
fairseq-generate --beam 5.
"""
import os
import re
import sys

import pytest
import torch

import flallm_plugin  # noqa: F401
from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_tools.synthetic import DEFAULT_SPLITS, write_lm_corpus
from flallm_plugin.scoring.generate_output import parse_generate_lines
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]


def output(proc):
    return proc.stdout + proc.stderr


def parse_generate(out):
    samples = parse_generate_lines(out.split("\n"), "fairseq-generate output")
    refs = {i: s.reference for i, s in samples.items() if s.reference is not None}
    hyps = {i: s.hypothesis for i, s in samples.items() if s.hypothesis is not None}
    return refs, hyps


@pytest.fixture(scope="module")
def pipeline(phoenix_release, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    # the "LLM" knows the language from more text than the sign corpus holds
    text, train_text = write_lm_corpus(str(root))
    mbart = str(root / "mbart")
    run([sys.executable, "preprocess/pretrain_tiny_mbart.py", "--text", str(text), "--out-dir", mbart,
         "--langs", "de_DE", "--max-update", "100"])
    trimmed = str(root / "mbart_trimmed")
    trim_out = output(run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", mbart, "--train-text",
                           str(train_text), "--out-dir", trimmed, "--langs", "de_DE"]))
    data = str(root / "data")
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", phoenix_release, "--out-dir", data,
         "--resize", "32", "--crop", "28", "--spm-model", os.path.join(mbart, "sentence.bpe.model"),
         "--dict", os.path.join(trimmed, "dict.txt"), "--tgt-lang-tag", "[de_DE]"])
    ckpt1 = str(root / "ckpt1")
    run(["fairseq-train", data, *COMMON, "--arch", "light_t_tiny", "--visual-backbone-weights",
         "none", "--criterion", "label_smoothed_cross_entropy",
         "--label-smoothing", "0.2", "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "10", "--batch-size", "3",
         "--no-augment",
         "--save-dir", ckpt1, "--no-epoch-checkpoints", "--disable-validation"])
    feats = str(root / "feats")
    run(["flallm-extract-features", "--data", data, "--checkpoint",
         os.path.join(ckpt1, "checkpoint_last.pt"), "--out-dir", feats, "--cpu", "--num-workers", "0"])
    ckpt2 = str(root / "ckpt2")
    train_log = output(run(["fairseq-train", feats, *COMMON, "--arch", "sign_mbart_tiny",
                            "--load-visual-encoder-from", os.path.join(ckpt1, "checkpoint_last.pt"),
                            "--pretrained-mbart", os.path.join(trimmed, "model.pt"),
                            "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2",
                            "--optimizer", "param_group_adam", "--lr", "5e-3", "--group-lr", '{"adapter": 3e-2}',
                            "--lr-scheduler", "cosine", "--max-update", "600", "--batch-size", "6", "--dropout", "0.0",
                            "--save-dir", ckpt2, "--no-epoch-checkpoints", "--disable-validation",
                            "--log-format", "simple", "--log-interval", "10"], label="pipeline stage 2 (600 updates)"))
    gen = output(run(["fairseq-generate", feats, *COMMON, "--gen-subset", "train", "--path",
                      os.path.join(ckpt2, "checkpoint_last.pt"), "--beam", "5", "--batch-size", "4"]))
    return {"root": root, "trim_out": trim_out, "ckpt1": os.path.join(ckpt1, "checkpoint_last.pt"),
            "ckpt2": os.path.join(ckpt2, "checkpoint_last.pt"), "gen": gen, "train_log": train_log,
            "trimmed": trimmed, "mbart": mbart}


def test_stage2_overfits_its_training_split(pipeline):
    refs, hyps = parse_generate(pipeline["gen"])
    assert len(refs) == len(DEFAULT_SPLITS["train"]) and set(hyps) == set(refs)
    exact = sum(hyps[i] == refs[i] for i in refs) / len(refs)
    assert exact >= 0.9, pipeline["gen"][-3000:]
    # the language tag starts decoding but never shows in the output
    assert "[de_DE]" not in pipeline["gen"].split("Generate train")[0].replace("--tgt-lang-tag", "")
    assert all("de_DE" not in h for h in hyps.values())


def test_visual_encoder_bit_identical_after_stage2(pipeline):
    s1 = safe_torch_load(pipeline["ckpt1"])["model"]
    s2 = safe_torch_load(pipeline["ckpt2"])["model"]
    keys = [k for k in s1 if k.startswith("encoder.visual.")]
    assert keys and all(k in s2 for k in keys)
    for k in keys:
        assert torch.equal(s1[k], s2[k]), k  # weights and BatchNorm statistics


def test_stage2_started_from_the_trimmed_mbart(pipeline):
    assert "loaded pretrained mBART" in pipeline["train_log"]
    assert "loaded the stage-1 visual encoder" in pipeline["train_log"]
    assert re.search(r"vocabulary.*\d+.*->.*\d+|old.*new", pipeline["trim_out"], re.I | re.S)
    with open(os.path.join(pipeline["trimmed"], "dict.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[-2:] == ["[de_DE] 1", "<mask> 1"]
