"""Other fairseq models on our data: fairseq's own speech-to-text encoders on cached sign features.

The task writes input_feat_per_channel / input_channels (as fairseq's speech_to_text task does),
so --arch s2t_transformer_s and s2t_conformer train and decode through --task sign_translation.
"""
import os
import re

import pytest

from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.scoring.generate_output import parse_generate_lines
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]


@pytest.mark.parametrize("arch", ["s2t_transformer_s", "s2t_conformer"])
def test_speech_to_text_models_train_and_decode_on_sign_features(stage1, tmp_path, arch):
    ckpt = str(tmp_path / "ckpt")
    proc = run(["fairseq-train", stage1["feats"], *COMMON, "--arch", arch, "--encoder-layers", "1",
                "--decoder-layers", "1", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
                "--optimizer", "adam", "--lr", "2e-3", "--max-update", "24", "--batch-size", "6",
                "--save-dir", ckpt, "--no-epoch-checkpoints", "--disable-validation", "--log-format", "simple",
                "--log-interval", "1"], label=f"fairseq-train {arch} on features")
    losses = [float(x) for x in re.findall(r"\| train \| epoch \d+ \| loss ([\d.]+)", proc.stdout + proc.stderr)]
    assert len(losses) >= 10 and losses[-1] < 0.8 * losses[0], losses
    state = safe_torch_load(os.path.join(ckpt, "checkpoint_last.pt"))
    margs = state["cfg"]["model"]
    assert margs.input_feat_per_channel == 512 and margs.input_channels == 1  # saved with the checkpoint
    assert margs.visual_input["input_type"] == "features" and margs.visual_input["feature_level"] == "sign"
    gen = run(["fairseq-generate", stage1["feats"], *COMMON, "--gen-subset", "train", "--path",
               os.path.join(ckpt, "checkpoint_last.pt"), "--beam", "5", "--batch-size", "6", "--scoring", "sign_eval"])
    samples = parse_generate_lines(gen.stdout.splitlines(), "fairseq-generate")
    assert len(samples) == 6 and all(s.hypothesis is not None for s in samples.values())
    assert "BLEU = " in gen.stdout + gen.stderr
