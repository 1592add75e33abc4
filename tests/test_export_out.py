"""flallm-export never deletes or replaces anything: an existing --out (a data directory, a checkpoint's
folder) is refused with the tree byte-identical, and only its own orphan temporary directories go."""
import os
import shutil
import subprocess
import sys

import pytest

from helpers import run
from test_extract_features import tree_hash

EXPORT = [sys.executable, "-m", "flallm_plugin.cli.export"]


@pytest.mark.parametrize("target", ["data", "checkpoint folder"])
def test_existing_out_is_refused_and_untouched(stage1, target):
    out = stage1["data"] if target == "data" else os.path.dirname(stage1["ckpt"])
    before = tree_hash(str(stage1["root"]))
    proc = run([*EXPORT, "--checkpoint", stage1["ckpt"], "--data", stage1["data"], "--out", out], check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        f"flallm-export: error: {os.path.abspath(out)}: already exists; remove it or choose another --out")
    assert tree_hash(str(stage1["root"])) == before


def test_orphan_temporary_directory_is_removed_and_others_kept(stage1, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID whose process is gone
    orphan = tmp_path / f".model.{dead.pid}.0123abcd.tmp"
    orphan.mkdir()
    (orphan / ".flallm-export").write_text("an interrupted export")
    (orphan / "model.pt").write_bytes(b"half written")
    foreign = tmp_path / f".model.{dead.pid}.4567cdef.tmp"  # same name pattern, no marker: not ours
    foreign.mkdir()
    run([*EXPORT, "--checkpoint", stage1["ckpt"], "--data", stage1["data"], "--out", str(tmp_path / "model")])
    assert sorted(os.listdir(tmp_path)) == sorted(["model", foreign.name])
    assert ".flallm-export" not in os.listdir(tmp_path / "model")  # only an unfinished directory has it
    shutil.rmtree(foreign)
