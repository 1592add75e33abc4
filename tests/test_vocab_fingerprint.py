"""A dict.txt other than the training one (same size, other order; or another size) is refused when a model
is decoded or exported, naming both files; a checkpoint from before the fingerprints loads with a warning."""
import os
import shutil
import sys
from argparse import Namespace

import pytest
import torch

from flallm_plugin.checkpoint_safety import safe_torch_load
from helpers import USER_DIR, run

EXPORT = [sys.executable, "-m", "flallm_plugin.cli.export"]


def generate(data, ckpt, check=False):
    return run(["fairseq-generate", data, "--user-dir", USER_DIR, "--task", "sign_translation", "--cpu",
                "--num-workers", "0", "--required-batch-size-multiple", "1", "--gen-subset", "dev", "--path", ckpt,
                "--beam", "1"], check=check, timeout=300)


def data_with_dict(stage1, tmp_path, edit):
    """A copy of the stage-1 data directory whose dict.txt lines went through ``edit``."""
    data = tmp_path / "data"
    shutil.copytree(stage1["data"], data)
    lines = (data / "dict.txt").read_text(encoding="utf-8").splitlines()
    (data / "dict.txt").write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return str(data)


def swapped(lines):
    """Two entries exchanged: the same size, other ids."""
    lines = list(lines)
    lines[10], lines[11] = lines[11], lines[10]
    return lines


def grown(lines):
    return lines + ["zzzextra 1"]


def last_line(proc):
    return proc.stderr.strip().splitlines()[-1]


def test_checkpoint_records_the_dictionary(stage1):
    import hashlib

    args = safe_torch_load(stage1["ckpt"])["cfg"]["model"]
    args = vars(args) if isinstance(args, Namespace) else args
    dict_txt = os.path.join(stage1["data"], "dict.txt")
    assert args["target_dict_sha256"] == hashlib.sha256(open(dict_txt, "rb").read()).hexdigest()
    assert args["target_dict_path"] == os.path.abspath(dict_txt)
    assert args["target_spm_sha256"] is not None


@pytest.mark.parametrize("tool", ["fairseq-generate", "flallm-export"])
def test_same_size_other_dictionary_is_refused(stage1, tmp_path, tool):
    data = data_with_dict(stage1, tmp_path, swapped)
    if tool == "fairseq-generate":
        proc = generate(data, stage1["ckpt"])
    else:
        proc = run([*EXPORT, "--checkpoint", stage1["ckpt"], "--data", data, "--out", str(tmp_path / "m")],
                   check=False)
        assert not (tmp_path / "m").exists()
    assert proc.returncode != 0
    line = last_line(proc)
    assert os.path.join(data, "dict.txt") in line and os.path.join(stage1["data"], "dict.txt") in line, line
    assert "not the dictionary the model was trained with" in line, line


def test_dictionary_of_another_size_is_named(stage1, tmp_path):
    data = data_with_dict(stage1, tmp_path, grown)
    proc = generate(data, stage1["ckpt"])
    assert proc.returncode != 0
    line = last_line(proc)
    assert os.path.join(data, "dict.txt") in line and "entries, but the model was trained with" in line, line


def test_checkpoint_without_fingerprint_loads_with_a_warning(stage1, tmp_path):
    state = safe_torch_load(stage1["ckpt"])
    model = state["cfg"]["model"]
    for k in ("target_dict_sha256", "target_dict_path", "target_dict_size", "target_spm_sha256", "target_spm_path"):
        delattr(model, k) if isinstance(model, Namespace) else model.pop(k)
    old = str(tmp_path / "old.pt")
    torch.save(state, old)
    proc = generate(stage1["data"], old, check=True)
    assert "D-0" in proc.stdout
    assert "records no dictionary fingerprint" in proc.stdout + proc.stderr


def test_pretrained_mbart_dictionary_must_lead_the_data_dictionary(tmp_path):
    from flallm_plugin.data.vocab_fingerprint import check_sibling_dict

    mbart = tmp_path / "mbart"
    mbart.mkdir()
    (mbart / "model.pt").write_bytes(b"")  # only its folder matters here
    (mbart / "dict.txt").write_text("der 5\ndie 4\ndas 3\n", encoding="utf-8")
    ok = tmp_path / "ok.txt"  # the release's entries, then the language tag and <mask> appended
    ok.write_text("der 1\ndie 1\ndas 1\n[de_DE] 1\n<mask> 1\n", encoding="utf-8")
    check_sibling_dict(str(mbart / "model.pt"), str(ok))
    bad = tmp_path / "bad.txt"  # same size, two entries exchanged: every "die" would be read as "das"
    bad.write_text("der 5\ndas 3\ndie 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{bad}: not the dictionary of the pretrained mBART .*from entry 2 on"):
        check_sibling_dict(str(mbart / "model.pt"), str(bad))


def test_resuming_with_another_dictionary_is_refused(stage1, tmp_path):
    data = data_with_dict(stage1, tmp_path, swapped)
    save = tmp_path / "save"
    save.mkdir()
    shutil.copyfile(stage1["ckpt"], save / "checkpoint_last.pt")
    proc = run(["fairseq-train", data, "--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers",
                "0", "--required-batch-size-multiple", "1", "--arch", "light_t_tiny", "--visual-backbone-weights",
                "none", "--criterion", "label_smoothed_cross_entropy", "--optimizer", "adam", "--lr", "1e-4",
                "--max-epoch", "3", "--batch-size", "2", "--disable-validation", "--save-dir", str(save)],
               check=False, timeout=300)
    assert proc.returncode != 0
    line = last_line(proc)
    assert os.path.join(data, "dict.txt") in line and os.path.join(stage1["data"], "dict.txt") in line, line
    assert "num_updates" not in proc.stdout
