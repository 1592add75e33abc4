"""What the model must know about the data travels with its checkpoint (as speech_to_text's
input_feat_per_channel does): frame normalisation and resolution are the model's own once trained."""
import shutil
from argparse import Namespace

import pytest
import torch
import yaml

from fairseq import checkpoint_utils
from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.data.visual_input import VisualInputSpec
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
    facts = margs.visual_input  # one record, a plain dict (VisualInputSpec)
    assert (facts["input_type"], facts["feature_level"], facts["feature_dim"]) == ("video", None, None)
    assert (facts["resize"], facts["crop"]) == (32, 28)
    assert facts["mean"] == [0.485, 0.456, 0.406] and facts["std"] == [0.229, 0.224, 0.225]
    assert (facts["sampling_rate"], facts["tgt_lang_tag"], facts["bleu_tokenizer"]) == (0.25, None, "13a")
    # the separate fields of before the record are not written any more
    for old in ("input_type", "input_feature_level", "pixel_mean", "pixel_std", "frame_resize", "frame_crop",
                "input_visual_fingerprint", "input_extracted_from", "input_features_config"):
        assert not hasattr(margs, old), old
    assert VisualInputSpec.from_args(margs) == VisualInputSpec(**facts)


OLD_NAMES = {"input_type": "input_type", "feature_level": "input_feature_level", "feature_dim": "input_feat_per_channel",
             "resize": "frame_resize", "crop": "frame_crop", "mean": "pixel_mean", "std": "pixel_std",
             "visual_fingerprint": "input_visual_fingerprint", "extracted_from": "input_extracted_from",
             "data_config": "input_features_config"}


def _as_old_checkpoint(ckpt, out):
    """The checkpoint as the task wrote it before the record: the facts in separate model args."""
    state = safe_torch_load(ckpt)
    margs = state["cfg"]["model"]
    facts = margs.visual_input
    del margs.visual_input
    for new, old in OLD_NAMES.items():
        setattr(margs, old, facts[new])
    torch.save(state, out)
    return str(out)


def test_old_separate_args_are_read(stage1, tmp_path):
    data_spec = VisualInputSpec(sampling_rate=0.5, tgt_lang_tag="[de_DE]", bleu_tokenizer="char", resize=64, crop=56,
                                mean=[0.5] * 3)
    old = Namespace(input_type="video", input_feature_level=None, input_feat_per_channel=None,
                    pixel_mean=[0.1, 0.2, 0.3], pixel_std=[0.4, 0.5, 0.6], frame_resize=32, frame_crop=28)
    spec = VisualInputSpec.from_args(old, data_spec)
    # the model's own facts from the old names; what old args never held from the data
    assert (spec.resize, spec.crop, spec.mean, spec.std) == (32, 28, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert (spec.sampling_rate, spec.tgt_lang_tag, spec.bleu_tokenizer) == (0.5, "[de_DE]", "char")
    features = Namespace(input_type="features", input_feature_level="frame", input_feat_per_channel=512,
                         input_visual_fingerprint="abc", input_extracted_from="s1.pt", input_features_config="c.yaml")
    spec = VisualInputSpec.from_args(features)
    assert (spec.input_level, spec.feature_dim, spec.visual_fingerprint, spec.extracted_from, spec.data_config) == (
        "frame", 512, "abc", "s1.pt", "c.yaml")
    # args older than the data facts: no resolution of the model's own (the data's is used, export refuses)
    assert VisualInputSpec.from_args(Namespace(), data_spec).crop is None
    with pytest.raises(ValueError, match="visual_input has unknown fields"):
        VisualInputSpec.from_args(Namespace(visual_input={"input_type": "video", "colour": "red"}))


def test_a_checkpoint_with_the_old_separate_args_loads_and_decodes_the_same(stage1, tmp_path):
    old = _as_old_checkpoint(stage1["ckpt"], tmp_path / "old.pt")
    assert not hasattr(safe_torch_load(old)["cfg"]["model"], "visual_input")
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([old], arg_overrides={"data": stage1["data"]})
    new, _, _ = checkpoint_utils.load_model_ensemble_and_task([stage1["ckpt"]], arg_overrides={"data": stage1["data"]})
    assert models[0].args.visual_input == new[0].args.visual_input  # rewritten as the record on loading
    assert not hasattr(models[0].args, "pixel_mean")
    assert _decode(stage1["data"], old) == _decode(stage1["data"], stage1["ckpt"])


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
