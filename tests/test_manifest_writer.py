"""The shared writer of manifests and data configs (flallm_plugin/data/manifest.py)."""
import os

import pytest
import yaml

from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.manifest import write_data_config, write_manifest
from flallm_plugin.data.text_io import read_table

COLUMNS = ["id", "video", "n_frames", "tgt_text", "speaker", "start", "end"]


def test_manifest_round_trip(tmp_path):
    path = str(tmp_path / "train.tsv")
    rows = [
        ["a", "train/a", 12, 'er sagte "ja"', "s1", 0.5, 2.25],
        ["b", "train/b", 7, "über 1,5 grad", "s2", None, None],
    ]
    write_manifest(path, rows, COLUMNS)
    with open(path, "rb") as f:
        raw = f.read()
    assert raw == (
        "id\tvideo\tn_frames\ttgt_text\tspeaker\tstart\tend\n"
        'a\ttrain/a\t12\ter sagte "ja"\ts1\t0.5\t2.25\n'
        "b\ttrain/b\t7\tüber 1,5 grad\ts2\t\t\n"
    ).encode("utf-8")
    header, back = read_table(path, "\t", COLUMNS)
    assert header == COLUMNS
    assert [r["tgt_text"] for r in back] == ['er sagte "ja"', "über 1,5 grad"]
    assert [r["start"] for r in back] == ["0.5", ""]
    assert not [n for n in os.listdir(tmp_path) if n != "train.tsv"]  # no temporary file left


@pytest.mark.parametrize("bad", ["a\tb", "a\nb", "a\rb"])
def test_manifest_refuses_tab_or_line_break_and_keeps_old_file(tmp_path, bad):
    path = tmp_path / "dev.tsv"
    path.write_text("old\n", encoding="utf-8")
    rows = [["a", "v", 1, "fine", "s"], ["b", "v", 1, bad, "s"]]
    with pytest.raises(SignDataError) as e:
        write_manifest(str(path), rows, COLUMNS[:5])
    assert str(path) in str(e.value) and "row 2" in str(e.value) and "tgt_text" in str(e.value)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["dev.tsv"]


def test_manifest_refuses_wrong_row_length(tmp_path):
    with pytest.raises(SignDataError, match="row 1: 4 values for 5 columns"):
        write_manifest(str(tmp_path / "x.tsv"), [["a", "v", 1, "t"]], COLUMNS[:5])


def test_data_config_round_trip(tmp_path):
    path = tmp_path / "config.yaml"
    config = {"vocab_filename": "dict.txt", "input_type": "features", "sampling_rate": 0.5,
              "tgt_lang_tag": "[de_DE]", "augmentation": {"enabled": False}}
    write_data_config(str(path), config)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "vocab_filename: dict.txt"  # key order kept
    assert yaml.safe_load(text) == config
    cfg = SignDataConfig(str(path))
    assert cfg.input_type == "features" and cfg.sampling_rate == 0.5 and cfg.tgt_lang_tag == "[de_DE]"
    assert os.listdir(tmp_path) == ["config.yaml"]
