"""The procedural synthetic dataset (flallm_tools/synthetic/weather.py) is valid PHOENIX-2014-T."""
import csv
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from flallm_tools.synthetic import weather as G
from helpers import run

SPLITS = ("train", "dev", "test")
HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
W, H = 28, 36
SMALL = dict(n_train=30, n_dev=6, n_test=10, n_signers=3, frame_w=W, frame_h=H, seed=3, text_corpus_size=300)


def _csv_path(root, split):
    return Path(root) / "PHOENIX-2014-T" / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"


def _rows(root, split):
    with open(_csv_path(root, split), encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE))


def _frame_dir(root, split, name):
    return Path(root) / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px" / split / name


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_a")
    summary = G.generate(str(root), **SMALL)
    return root, summary


@pytest.fixture(scope="module")
def rows(dataset):
    root, _ = dataset
    return {s: _rows(root, s)[1:] for s in SPLITS}


def test_csv_header_and_columns(dataset, rows):
    root, summary = dataset
    for split in SPLITS:
        lines = _csv_path(root, split).read_text(encoding="utf-8").splitlines()
        assert lines[0] == "|".join(HEADER)
        assert len(rows[split]) == SMALL[f"n_{split}"] == summary["splits"][split]["videos"]
        for r in rows[split]:
            assert len(r) == 7, r
            name, video, start, end, speaker, orth, translation = r
            assert video == f"{split}/{name}/1/*.png"
            assert (start, end) == ("-1", "-1")
            assert re.fullmatch(r"Signer\d\d", speaker)
            assert orth == orth.upper() and 2 <= len(orth.split()) <= 4
            assert all(g in G.GLOSSES for g in orth.split())
            assert translation == translation.lower() and translation.strip() == translation
    names = [r[0] for s in SPLITS for r in rows[s]]
    assert len(names) == len(set(names))


def test_frames_exist_with_natural_numbering_and_size(dataset, rows):
    root, summary = dataset
    total = 0
    for split in SPLITS:
        for r in rows[split]:
            folder = _frame_dir(root, split, r[0])
            assert folder.is_dir(), folder
            files = sorted(os.listdir(folder))
            n = len(files)
            assert n >= 1
            assert files == [f"images{k:04d}.png" for k in range(1, n + 1)]
            # each sign is held >= 8 raw frames (the model keeps 1 frame in 4)
            assert n >= 8 * len(r[5].split())
            for k in (0, n // 2, n - 1):
                img = cv2.imread(str(folder / files[k]), cv2.IMREAD_UNCHANGED)
                assert img is not None and img.shape == (H, W, 3) and img.dtype == np.uint8
            total += n
        assert summary["splits"][split]["frames"] == sum(
            len(os.listdir(_frame_dir(root, split, r[0]))) for r in rows[split])
    assert total > 0


def test_frames_are_colour_and_move(dataset, rows):
    root, _ = dataset
    name = rows["train"][0][0]
    files = sorted(os.listdir(_frame_dir(root, "train", name)))
    imgs = [cv2.imread(str(_frame_dir(root, "train", name) / f)) for f in files]
    first = imgs[0].astype(int)
    assert np.abs(first[..., 0] - first[..., 2]).max() > 20  # not grey
    # the hands move: some frame differs clearly from the first one
    assert max(np.abs(im.astype(int) - first).sum() for im in imgs) > 255 * 10


def test_several_signers(rows):
    speakers = {r[4] for s in SPLITS for r in rows[s]}
    assert len(speakers) >= 2
    assert {r[4] for r in rows["test"]} <= {r[4] for r in rows["train"]}  # same signers, as PHOENIX


def test_dev_test_combinations_unseen_in_train(rows):
    train = {r[5] for r in rows["train"]}
    for split in ("dev", "test"):
        combos = {r[5] for r in rows[split]}
        assert combos and not combos & train, combos & train
    assert not {r[5] for r in rows["dev"]} & {r[5] for r in rows["test"]}


def test_every_test_word_and_gloss_occurs_in_training(rows):
    train_words = {w for r in rows["train"] for w in r[6].split()}
    train_glosses = {g for r in rows["train"] for g in r[5].split()}
    for split in ("dev", "test"):
        for r in rows[split]:
            assert set(r[6].split()) <= train_words, r
            assert set(r[5].split()) <= train_glosses, r


def test_targets_reorder_and_extend_the_glosses(rows):
    all_rows = [r for s in SPLITS for r in rows[s]]
    same_words = sum(r[6].split() == r[5].lower().split() for r in all_rows)
    same_length = sum(len(r[6].split()) == len(r[5].split()) for r in all_rows)
    assert same_words == 0
    assert same_length < 0.5 * len(all_rows)
    for r in all_rows:
        assert r[6] == G.translate(r[5].split())


def test_grammar_examples():
    assert G.translate("MORGEN NORD REGEN".split()) == "morgen regnet es im norden"
    assert G.translate("HEUTE SUED SONNE STARK".split()) == "heute scheint im süden kräftig die sonne"
    with pytest.raises(ValueError):
        G.translate("REGEN MORGEN".split())
    G.check_signs_distinct()
    assert set(G.SIGNS) == set(G.GLOSSES) and 12 <= len(G.GLOSSES) <= 20


def test_text_corpus_larger_and_covers_unseen_combinations(dataset, rows):
    root, summary = dataset
    lines = (Path(root) / "text_corpus.de.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == SMALL["text_corpus_size"] > len(rows["train"])
    assert all(line and line == line.lower() for line in lines)
    train_targets = {r[6] for r in rows["train"]}
    assert set(lines) - train_targets  # sentences no training video pairs with


def test_deterministic(dataset, tmp_path):
    root, _ = dataset
    G.generate(str(tmp_path), **SMALL)
    for split in SPLITS:
        assert _csv_path(tmp_path, split).read_bytes() == _csv_path(root, split).read_bytes()
    name = _rows(root, "test")[1][0]
    first = _frame_dir(root, "test", name) / "images0001.png"
    assert (_frame_dir(tmp_path, "test", name) / "images0001.png").read_bytes() == first.read_bytes()
    assert (tmp_path / "text_corpus.de.txt").read_bytes() == (Path(root) / "text_corpus.de.txt").read_bytes()

    # a rerun into the same folder replaces the earlier synthetic data
    G.generate(str(tmp_path), **dict(SMALL, n_train=20, seed=4))
    assert len(_rows(tmp_path, "train")) == 21
    assert _csv_path(tmp_path, "train").read_bytes() != _csv_path(root, "train").read_bytes()


def test_refuses_to_replace_foreign_data(tmp_path):
    manual = tmp_path / "PHOENIX-2014-T" / "annotations" / "manual"
    manual.mkdir(parents=True)
    (manual / "PHOENIX-2014-T.train.corpus.csv").write_text(
        "name|video|start|end|speaker|orth|translation\n"
        "01April_2010_Thursday_heute-6694|train/x/1/*.png|-1|-1|Signer04|REGEN|es regnet\n", encoding="utf-8")
    (tmp_path / "PHOENIX-2014-T" / "features").mkdir()
    (tmp_path / "PHOENIX-2014-T" / "features" / "frame.png").write_bytes(b"real frames")
    before = sorted((str(p), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(FileExistsError):
        G.generate(str(tmp_path), **dict(SMALL, text_corpus_size=10))
    # --overwrite never deletes real data (its corpus names videos the generator did not write)
    with pytest.raises(FileExistsError, match="PHOENIX-2014-T.train.corpus.csv names videos this generator did not "
                                              "write .*never replaced, --overwrite included"):
        G.generate(str(tmp_path), **dict(SMALL, text_corpus_size=10), overwrite=True)
    assert sorted((str(p), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before


def test_cli(tmp_path):
    out = run([sys.executable, "examples/synthetic/generate_dataset.py", "--out-root", tmp_path, "--n-train", "20",
               "--n-dev", "2", "--n-test", "2", "--n-signers", "2", "--frame-size", "20x26",
               "--text-corpus-size", "50"]).stdout
    assert '"videos": 20' in out
    img = cv2.imread(str(_frame_dir(tmp_path, "dev", _rows(tmp_path, "dev")[1][0]) / "images0001.png"))
    assert img.shape == (26, 20, 3)
