"""What the model must know about the data travels with its checkpoint (as speech_to_text's
input_feat_per_channel does): frame normalisation and resolution are the model's own once trained."""
import shutil

import pytest
import torch
import yaml

from fairseq import checkpoint_utils
from flallm_plugin.checkpoint_safety import safe_torch_load
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]


def _copy_data(src, dst, **changes):
    shutil.copytree(src, dst)
    with open(f"{dst}/config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    config.update(changes)
    with open(f"{dst}/config.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    return str(dst)


def _decode(data, ckpt):
    proc = run(["fairseq-generate", data, *COMMON, "--gen-subset", "dev", "--path", ckpt, "--beam", "5"])
    return sorted(line for line in proc.stdout.splitlines() if line[:2] in ("D-", "H-", "P-"))


def test_checkpoint_saves_the_data_facts(stage1):
    margs = safe_torch_load(stage1["ckpt"])["cfg"]["model"]
    assert (margs.input_type, margs.input_feature_level) == ("video", None)
    assert (margs.frame_resize, margs.frame_crop) == (32, 28)
    assert margs.pixel_mean == [0.485, 0.456, 0.406] and margs.pixel_std == [0.229, 0.224, 0.225]


def test_decoding_ignores_the_data_configs_normalisation(stage1, tmp_path):
    other = _copy_data(stage1["data"], tmp_path / "other", mean=[0.5, 0.5, 0.5], std=[0.1, 0.2, 0.3])
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([stage1["ckpt"]], arg_overrides={"data": other})
    reference, _, _ = checkpoint_utils.load_model_ensemble_and_task([stage1["ckpt"]],
                                                                     arg_overrides={"data": stage1["data"]})
    assert torch.equal(models[0].encoder.visual.pixel_shift, reference[0].encoder.visual.pixel_shift)
    assert _decode(other, stage1["ckpt"]) == _decode(stage1["data"], stage1["ckpt"])


def test_resolution_mismatch_is_an_error(stage1, tmp_path):
    other = _copy_data(stage1["data"], tmp_path / "other", resize=40, crop=36)
    proc = run(["fairseq-generate", other, *COMMON, "--gen-subset", "dev", "--path", stage1["ckpt"]], check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "config.yaml" in last and "trained on 32 / 28" in last, last
