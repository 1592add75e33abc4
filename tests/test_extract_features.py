"""flallm-extract-features never destroys or mixes data, and stage 2 refuses features of another stage-1 model."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from flallm_plugin.checkpoint_safety import safe_torch_load
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]
TRAIN = ["--arch", "sign_mbart_tiny", "--criterion", "label_smoothed_cross_entropy", "--disable-validation",
         "--optimizer", "adam", "--lr", "1e-4", "--max-update", "1", "--batch-size", "2", "--pretrained-mbart", "none"]


def extract(data, ckpt, out, *extra, check=True):
    return run(["flallm-extract-features", "--data", data, "--checkpoint", ckpt, "--out-dir", out, "--cpu",
                "--num-workers", "0", *extra], check=check, timeout=300)


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def last_line(proc):
    return proc.stderr.strip().splitlines()[-1]


def test_out_dir_equal_to_data_is_refused(stage1):
    before = snapshot(stage1["data"])
    proc = extract(stage1["data"], stage1["ckpt"], stage1["data"], check=False)
    assert proc.returncode != 0
    assert "--out-dir" in last_line(proc) and "data directory" in last_line(proc), last_line(proc)
    assert snapshot(stage1["data"]) == before


def test_non_empty_out_dir_needs_overwrite_and_is_replaced_whole(stage1, tmp_path):
    out = tmp_path / "feats"
    shutil.copytree(stage1["feats"], out)  # written by flallm-extract-features: its marker file is in it
    assert (out / ".flallm-extract-features").is_file()
    (out / "stale.txt").write_text("from an earlier run")
    proc = extract(stage1["data"], stage1["ckpt"], str(out), check=False)
    assert proc.returncode != 0 and "--overwrite" in last_line(proc), last_line(proc)
    assert (out / "stale.txt").exists()
    extract(stage1["data"], stage1["ckpt"], str(out), "--overwrite")
    assert not (out / "stale.txt").exists()
    assert snapshot(str(out)).keys() == snapshot(stage1["feats"]).keys()
    assert os.listdir(tmp_path) == ["feats"]  # no temporary directory left behind


def tree_hash(folder) -> str:
    """sha256 over every path and file content under ``folder`` (and the folder's own listing)."""
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        h.update(repr((os.path.relpath(root, folder), sorted(dirs), sorted(files))).encode())
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def video_root(data):
    with open(os.path.join(data, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["video_root"]


@pytest.mark.parametrize("target", ["release features", "video root", "checkpoint folder", "data parent",
                                    "foreign folder"])
def test_overwrite_never_deletes_inputs_or_what_it_did_not_write(stage1, phoenix_release, tmp_path, target):
    """--overwrite replaces only a directory flallm-extract-features wrote, and never one holding its inputs."""
    ckpt_dir = os.path.dirname(stage1["ckpt"])
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not features")
    out, guarded, says = {
        # the release's frames (PHOENIX-2014-T/features holds fullFrame-210x260px/, the video root)
        "release features": (os.path.dirname(video_root(stage1["data"])), phoenix_release, "which this run reads"),
        "video root": (video_root(stage1["data"]), phoenix_release, "which this run reads"),
        "checkpoint folder": (ckpt_dir, ckpt_dir, "which this run reads"),
        "data parent": (str(stage1["root"]), str(stage1["root"]), "which this run reads"),
        "foreign folder": (str(foreign), str(foreign), "not written by flallm-extract-features"),
    }[target]
    before = tree_hash(guarded)
    proc = extract(stage1["data"], stage1["ckpt"], out, "--overwrite", check=False)
    assert proc.returncode != 0
    assert "--out-dir" in last_line(proc) and says in last_line(proc), last_line(proc)
    assert tree_hash(guarded) == before
    # the release, data and checkpoint are untouched even when they are not the guarded tree
    assert os.path.isfile(stage1["ckpt"]) and os.path.isfile(os.path.join(stage1["data"], "config.yaml"))
    assert not [n for n in os.listdir(os.path.dirname(os.path.abspath(out))) if n.endswith((".tmp", ".tmp.old"))]


def test_orphan_temporary_directory_of_a_killed_run_is_removed(stage1, tmp_path):
    out = tmp_path / "feats"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID whose process is gone
    orphan = tmp_path / f".feats.{dead.pid}.0123abcd.tmp"
    shutil.copytree(stage1["feats"], orphan)  # as a killed run leaves it: with the tool's marker
    unmarked = tmp_path / f".feats.{dead.pid}.4567cdef.tmp"
    unmarked.mkdir()  # not the tool's: kept
    extract(stage1["data"], stage1["ckpt"], str(out))
    assert sorted(os.listdir(tmp_path)) == sorted(["feats", unmarked.name])


def test_failure_midway_leaves_nothing_and_keeps_the_earlier_out_dir(stage1, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(stage1["data"], data)
    lines = (data / "test.tsv").read_text(encoding="utf-8").splitlines()
    cols = lines[1].split("\t")
    cols[1] = "no/such/video"
    lines[1] = "\t".join(cols)
    (data / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    proc = extract(str(data), stage1["ckpt"], str(tmp_path / "new"), check=False)
    assert proc.returncode != 0 and "no/such/video" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no out-dir, no temporary directory

    earlier = tmp_path / "earlier"
    shutil.copytree(stage1["feats"], earlier)
    before = snapshot(str(earlier))
    proc = extract(str(data), stage1["ckpt"], str(earlier), "--overwrite", check=False)
    assert proc.returncode != 0
    assert snapshot(str(earlier)) == before
    assert sorted(os.listdir(tmp_path)) == ["data", "earlier"]


@pytest.fixture(scope="module")
def other_stage1(stage1, tmp_path_factory):
    """Another stage-1 checkpoint (its visual encoder's weights changed) and its features."""
    root = tmp_path_factory.mktemp("other_stage1")
    state = safe_torch_load(stage1["ckpt"])
    key = next(k for k in state["model"] if k.startswith("encoder.visual.temporal.") and k.endswith("weight"))
    state["model"][key] = state["model"][key] + 0.05
    ckpt = str(root / "other.pt")
    torch.save(state, ckpt)
    feats = str(root / "feats")
    extract(stage1["data"], ckpt, feats)
    return {"ckpt": ckpt, "feats": feats}


def test_features_config_records_the_visual_fingerprint(stage1, other_stage1):
    fps = []
    for feats in (stage1["feats"], other_stage1["feats"]):
        with open(os.path.join(feats, "config.yaml"), encoding="utf-8") as f:
            fps.append(yaml.safe_load(f)["visual_fingerprint"])
    assert all(len(fp) == 64 for fp in fps) and fps[0] != fps[1]


def test_stage2_training_on_features_of_another_stage1_model_is_refused(stage1, other_stage1, tmp_path):
    proc = run(["fairseq-train", other_stage1["feats"], *COMMON, *TRAIN, "--save-dir", tmp_path / "s2",
                "--load-visual-encoder-from", stage1["ckpt"]], check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert os.path.join(other_stage1["feats"], "config.yaml") in msg and stage1["ckpt"] in msg, msg
    assert not os.path.exists(tmp_path / "s2" / "checkpoint_last.pt")


def test_stage2_decoding_features_of_another_stage1_model_is_refused(stage1, other_stage1, tmp_path):
    save = tmp_path / "s2"
    run(["fairseq-train", stage1["feats"], *COMMON, *TRAIN, "--save-dir", save,
         "--load-visual-encoder-from", stage1["ckpt"], "--no-epoch-checkpoints"], timeout=300)
    ckpt = str(save / "checkpoint_last.pt")
    gen = ["fairseq-generate", *COMMON, "--gen-subset", "dev", "--path", ckpt, "--beam", "1"]
    assert "D-0" in run(["fairseq-generate", stage1["feats"], *gen[1:]],
                        timeout=300).stdout
    proc = run(["fairseq-generate", other_stage1["feats"], *gen[1:]], check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert os.path.join(other_stage1["feats"], "config.yaml") in msg and stage1["ckpt"] in msg, msg
