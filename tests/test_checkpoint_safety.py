"""Checkpoints load with weights_only=True: numpy 1.x pickles load, anything that runs code is refused
through every entry point (fairseq-generate --path, fairseq-validate --path, --restore-file, --load-visual-encoder-from,
--pretrained-mbart, flallm-extract-features). A file torch reads but fairseq cannot upgrade is named as
such, not as a broken file."""
import os
import shutil
import zipfile

import numpy as np
import pytest
import torch

from flallm_plugin.checkpoint_safety import (
    UnsafeCheckpointError,
    check_checkpoint_file,
    load_fairseq_checkpoint,
    safe_torch_load,
)
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]
TRAIN = ["--disable-validation", "--optimizer", "adam", "--lr", "1e-4", "--max-update", "1", "--batch-size", "2"]


def as_numpy1_pickle(src: str, dst: str):
    """Rewrite a checkpoint as numpy 1.x writes it: ``numpy.core.multiarray`` instead of ``numpy._core``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info.filename, data)


def test_numpy1_checkpoint_loads_everywhere(stage1, tmp_path):
    state = safe_torch_load(stage1["ckpt"])
    # what a run with --eval-bleu saves: numpy arrays and scalars in the metric meters
    state["extra_state"]["bleu_meters"] = {"_bleu_counts": np.array([5.0, 3.0, 1.0, 0.0]), "n": np.float64(2.0)}
    numpy2, numpy1 = str(tmp_path / "numpy2.pt"), str(tmp_path / "checkpoint_numpy1.pt")
    torch.save(state, numpy2)
    as_numpy1_pickle(numpy2, numpy1)
    assert b"numpy.core.multiarray" in zipfile.ZipFile(numpy1).read(
        [n for n in zipfile.ZipFile(numpy1).namelist() if n.endswith("data.pkl")][0])
    loaded = load_fairseq_checkpoint(numpy1)
    np.testing.assert_array_equal(loaded["extra_state"]["bleu_meters"]["_bleu_counts"], [5.0, 3.0, 1.0, 0.0])
    gen = run(["fairseq-generate", stage1["data"], *COMMON, "--gen-subset", "dev", "--path", numpy1, "--beam", "2"])
    assert "D-0" in gen.stdout


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


@pytest.fixture
def evil(tmp_path, stage1):
    """A real stage-1 checkpoint whose pickle also calls os.system."""
    marker = tmp_path / "pwned.txt"
    state = safe_torch_load(stage1["ckpt"])
    state["extra_state"]["payload"] = _Exploit(marker)
    path = tmp_path / "checkpoint_evil.pt"
    torch.save(state, str(path))
    assert b"system" in path.read_bytes()
    return path, marker


def test_our_loaders_refuse_code_and_name_the_file(evil):
    path, marker = evil
    for load in (safe_torch_load, load_fairseq_checkpoint):
        with pytest.raises(UnsafeCheckpointError) as e:
            load(str(path))
        assert str(path) in str(e.value)
    assert not marker.exists()


ENTRIES = ["generate --path", "validate --path", "train --restore-file", "train resume", "train --continue-once",
           "--load-visual-encoder-from",
           "--pretrained-mbart", "flallm-extract-features", "flallm-translate"]


@pytest.mark.parametrize("force_unsafe", [False, True], ids=["default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_point_refuses_code(evil, stage1, tmp_path, entry, force_unsafe, monkeypatch):
    """Also with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, under which fairseq's own torch.load (no
    weights_only argument) would unpickle anything: every file is read with weights_only=True first."""
    path, marker = evil
    if force_unsafe:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    stage2 = ["fairseq-train", stage1["feats"], *COMMON, *TRAIN, "--arch", "sign_mbart_tiny",
              "--save-dir", str(tmp_path / "s2"), "--criterion", "label_smoothed_cross_entropy"]
    stage1_train = ["fairseq-train", stage1["data"], *COMMON, *TRAIN, "--arch", "light_t_tiny",
                    "--visual-backbone-weights", "none", "--save-dir", str(tmp_path / "s1")]
    if entry == "train resume":  # the save dir's checkpoint_last.pt, loaded without --restore-file
        (tmp_path / "s1").mkdir()
        shutil.copyfile(path, tmp_path / "s1" / "checkpoint_last.pt")
    model_dir = tmp_path / "model_dir"  # a model directory (flallm-export's layout) whose model.pt is the exploit
    model_dir.mkdir()
    shutil.copyfile(path, model_dir / "model.pt")
    shutil.copyfile(os.path.join(stage1["data"], "config.yaml"), model_dir / "config.yaml")
    cmd = {
        "generate --path": ["fairseq-generate", stage1["data"], *COMMON, "--gen-subset", "dev", "--path", str(path)],
        # fairseq-validate loads --path before it sets up any task: checked as the command line is parsed
        "validate --path": ["fairseq-validate", stage1["data"], *COMMON, "--valid-subset", "dev", "--batch-size", "2",
                            "--path", str(path)],
        "train --restore-file": stage1_train + ["--restore-file", str(path)],
        "train resume": stage1_train,
        "train --continue-once": stage1_train + ["--continue-once", str(path)],
        "--load-visual-encoder-from": stage2 + ["--load-visual-encoder-from", str(path), "--pretrained-mbart", "none"],
        "--pretrained-mbart": stage2 + ["--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", str(path)],
        "flallm-extract-features": ["flallm-extract-features", "--data", stage1["data"], "--checkpoint", str(path),
                                    "--out-dir", str(tmp_path / "f"), "--cpu", "--num-workers", "0"],
        "flallm-translate": ["flallm-translate", str(model_dir), stage1["data"], "--cpu"],
    }[entry]
    proc = run(cmd, check=False, timeout=300)
    assert not marker.exists(), f"the pickle's code ran: {proc.stderr[-2000:]}"
    assert proc.returncode != 0
    assert "refused to load" in proc.stderr and "system" in proc.stderr, proc.stderr[-2000:]
    name = str(tmp_path / "s1" / "checkpoint_last.pt") if entry == "train resume" else str(
        model_dir / "model.pt") if entry == "flallm-translate" else str(path)
    assert name in proc.stderr, proc.stderr[-2000:]


@pytest.fixture
def empty_history(tmp_path, stage1):
    """A real stage-1 checkpoint whose optimizer_history is empty: torch reads it, fairseq cannot upgrade it."""
    state = safe_torch_load(stage1["ckpt"])
    assert state["optimizer_history"]
    state["optimizer_history"] = []
    path = tmp_path / "checkpoint_empty_history.pt"
    torch.save(state, str(path))
    return path


def test_an_upgrade_failure_names_the_file_and_the_entry(empty_history, stage1, tmp_path):
    with pytest.raises(ValueError) as e:
        load_fairseq_checkpoint(str(empty_history))
    msg = str(e.value)
    assert msg.startswith(f"{empty_history}: checkpoint has an empty optimizer_history: "
                          "fairseq cannot upgrade it"), msg
    assert "corrupt" not in msg and "list index" not in msg, msg
    # the check the task runs on --path / --finetune-from-model says the same before fairseq loads the file
    with pytest.raises(ValueError, match=r"^--path: .*: checkpoint has an empty optimizer_history"):
        check_checkpoint_file(str(empty_history), "--path")
    # another entry fairseq's upgrade needs
    state = safe_torch_load(stage1["ckpt"])
    del state["extra_state"]
    no_extra = tmp_path / "checkpoint_no_extra_state.pt"
    torch.save(state, str(no_extra))
    with pytest.raises(ValueError, match=r"not a fairseq checkpoint \(fairseq's checkpoint upgrade found no 'extra_"):
        load_fairseq_checkpoint(str(no_extra))
    # a file torch cannot read is still reported as one
    truncated = tmp_path / "checkpoint_truncated.pt"
    truncated.write_bytes(empty_history.read_bytes()[:4096])
    with pytest.raises(RuntimeError, match=r"cannot read checkpoint \(corrupt, truncated or not a torch file\)"):
        load_fairseq_checkpoint(str(truncated))
    # and a program says it in its error
    proc = run(["flallm-extract-features", "--data", stage1["data"], "--checkpoint", str(empty_history),
                "--out-dir", str(tmp_path / "f"), "--cpu", "--num-workers", "0"], check=False, timeout=300)
    assert proc.returncode != 0
    assert f"{empty_history}: checkpoint has an empty optimizer_history" in proc.stderr, proc.stderr[-2000:]
