"""The hard synthetic preset (flallm_tools/synthetic/hard.py): signs, grammar, splits, determinism,
and both release layouts through the real preprocessors."""
import csv
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import prep_how2sign
import prep_phoenix14t
from flallm_tools.synthetic import generate_hard
from flallm_tools.synthetic import hard as H
from flallm_tools.synthetic import hard_language as L
from flallm_tools.synthetic.releases import how2sign_csv_path, phoenix_corpus_path
from helpers import run

SPLITS = ("train", "dev", "test")
TINY = dict(n_train=12, n_dev=3, n_test=3, seed=5, frame_w=20, frame_h=26, text_corpus_size=40)
PREP = ["--resize", "32", "--crop", "28", "--vocab-size", "100", "--workers", "1"]


def _phoenix_rows(root, split):
    with open(phoenix_corpus_path(root, split), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="|", quoting=csv.QUOTE_NONE))


def _tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _digest(root):
    """sha256 of every file under ``root`` (relative path and bytes)."""
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            h.update(os.path.relpath(path, root).encode() + b"\0" + open(path, "rb").read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard_phoenix")
    return root, generate_hard(str(root), **TINY)


# ------------------------------------------------------------------ signs
def test_at_least_300_signs_pairwise_distinct():
    assert len(H.SIGNS) >= 300 and set(H.SIGNS) == set(L.SIGN_VOCABULARY)
    H.check_signs_distinct()
    forms = {s.attributes() for s in H.SIGNS.values()}
    assert len(forms) == len(H.SIGNS)
    # the check catches two signs that differ in one attribute only
    a, b = sorted(H.SIGNS)[:2]
    near = dict(H.SIGNS, **{b: H.HardSign(H.SIGNS[a].form, H.SIGNS[a].location, H.SIGNS[a].motion,
                                          H.SIGNS[a].hands, "shake" if H.SIGNS[a].head != "shake" else "nod")})
    with pytest.raises(AssertionError, match="differ in only 1"):
        H.check_signs_distinct(near)


# ------------------------------------------------------------------ language
def test_grammar_is_a_translation():
    cases = {
        "GESTERN MANN ALT IX FRAU APFEL GEBEN": "gestern hat der alte mann einer frau einen apfel gegeben",
        "HEUTE ICH FREUND IX ANRUFEN": "heute rufe ich den freund an",
        "MORGEN ER APFEL ESSEN NICHT": "morgen isst er keinen apfel",
        "HUND IX WURST ZWEI ESSEN WOLLEN": "der hund will zwei würste fressen",
        "NAECHSTE-WOCHE WIR STADT FAHREN": "nächste woche werden wir in die stadt fahren",
        "GESTERN DU SCHULE BUCH IX VERLIEREN FRAGE": "hast du gestern das schulbuch verloren",
        "GESTERN BAHNHOF STUDENT DREI IX SCHLAFEN NICHT": "gestern haben die drei studenten nicht am bahnhof geschlafen",
        # a noun with a compound form before a noun is read as its modifier (the sampler never draws
        # a place-subject sequence that reads otherwise)
        "GESTERN PARK STUDENT DREI IX SCHLAFEN NICHT": "gestern haben die drei parkstudenten nicht geschlafen",
    }
    for signs, german in cases.items():
        assert L.translate(signs.split()) == german
    with pytest.raises(ValueError, match="no subject"):
        L.translate("GESTERN APFEL ESSEN".split())


def test_sentence_lengths_and_round_trip():
    rng = np.random.default_rng(0)
    sents = [L.sample_sentence(rng) for _ in range(400)]
    lengths = [len(s) for s in sents]
    assert min(lengths) == L.MIN_SIGNS == 5 and max(lengths) == L.MAX_SIGNS == 12
    reordered = 0
    for s in sents:
        german = L.translate(s).split()
        assert L.parse(s).signs() == list(s)
        assert len(german) != len(s) or german != [g.lower() for g in s]
        reordered += L.translate(s) != " ".join(g.lower() for g in s)
    assert reordered == len(sents)
    assert np.mean([len(L.translate(s).split()) > len(s) for s in sents]) > 0.5  # articles, auxiliaries ...


def test_text_vocabulary_has_thousands_of_word_types():
    rng = np.random.default_rng(1)
    words = {w for _ in range(3000) for w in L.translate(L.sample_sentence(rng)).split()}
    assert len(words) >= 2000, len(words)


# ------------------------------------------------------------------ dataset (PHOENIX layout)
def test_splits_held_out_and_covered(phoenix):
    root, summary = phoenix
    rows = {s: _phoenix_rows(root, s) for s in SPLITS}
    for split in SPLITS:
        assert len(rows[split]) == TINY[f"n_{split}"] == summary["splits"][split]["videos"]
        for r in rows[split]:
            assert 5 <= len(r["orth"].split()) <= 12
            assert r["translation"] == L.translate(r["orth"].split())
            frames = os.listdir(Path(root) / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px" / split / r["name"])
            assert len(frames) >= 5 * len(r["orth"].split())
    train = {r["orth"] for r in rows["train"]}
    train_signs = {g for o in train for g in o.split()}
    dev, test = {r["orth"] for r in rows["dev"]}, {r["orth"] for r in rows["test"]}
    assert not dev & train and not test & train and not dev & test
    assert not {r["translation"] for r in rows["dev"] + rows["test"]} & {r["translation"] for r in rows["train"]}
    for o in dev | test:
        assert set(o.split()) <= train_signs, o
    assert len({r["speaker"] for r in rows["train"]}) == 9 == len(summary["signers"])
    corpus = (Path(root) / "text_corpus.de.txt").read_text(encoding="utf-8").splitlines()
    assert len(corpus) == TINY["text_corpus_size"] == summary["text_corpus"]["sentences"]
    assert summary["train_word_types"] == len({w for r in rows["train"] for w in r["translation"].split()})
    assert not [n for n in os.listdir(root) if n.startswith(".")]  # no temporary folder left


def test_train_covers_every_sign():
    videos, _ = H._plan(400, 20, 20, seed=2)
    train_signs = {g for _, _, gs in videos["train"] for g in gs}
    assert train_signs == set(L.SIGN_VOCABULARY)


def test_deterministic(phoenix, tmp_path):
    root, _ = phoenix
    generate_hard(str(tmp_path / "a"), **TINY)
    assert _digest(tmp_path / "a") == _digest(root)
    generate_hard(str(tmp_path / "b"), **dict(TINY, seed=6))
    assert _digest(tmp_path / "b") != _digest(root)


def test_phoenix_layout_through_prep_phoenix14t(phoenix, tmp_path):
    root, summary = phoenix
    prep_phoenix14t.main(["--data-root", str(root), "--out-dir", str(tmp_path / "data")] + PREP)
    for split in SPLITS:
        rows = _tsv(tmp_path / "data" / f"{split}.tsv")
        assert [r["tgt_text"] for r in rows] == [r["translation"] for r in _phoenix_rows(root, split)]
        assert sum(int(r["n_frames"]) for r in rows) == summary["splits"][split]["frames"]


# ------------------------------------------------------------------ How2Sign layout
def test_how2sign_layout_through_prep_how2sign(tmp_path):
    root = tmp_path / "h2s"
    out = run([sys.executable, "examples/synthetic/generate_dataset.py", "--preset", "hard", "--layout", "how2sign",
               "--out-root", root, "--n-train", "6", "--n-dev", "2", "--n-test", "2", "--frame-size", "20x26",
               "--text-corpus-size", "20", "--seed", "3"]).stdout
    assert '"layout": "how2sign"' in out
    assert not (root / "PHOENIX-2014-T").exists()
    prep_how2sign.main(["--data-root", str(root), "--out-dir", str(tmp_path / "data")] + PREP)
    for split, release in (("train", "train"), ("dev", "val"), ("test", "test")):
        rows = _tsv(tmp_path / "data" / f"{split}.tsv")
        with open(how2sign_csv_path(str(root), release), encoding="utf-8", newline="") as f:
            release_rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        assert [r["tgt_text"] for r in rows] == [r["SENTENCE"] for r in release_rows]
        assert len(rows) == {"train": 6, "dev": 2, "test": 2}[split]
        for r, rr in zip(rows, release_rows):
            assert int(r["n_frames"]) == round(float(rr["END_REALIGNED"]) * H.HOW2SIGN_FPS)
            assert r["speaker"].startswith("Signer")


def test_refusals(tmp_path):
    (tmp_path / "how2sign_realigned_train.csv").write_text(
        "\t".join(prep_how2sign.HEADER) + "\n"
        "a\ta-1-rgb_front\ta_0\ta_0-1-rgb_front\t0.0\t1.0\tHello.\n", encoding="utf-8")
    before = (tmp_path / "how2sign_realigned_train.csv").read_bytes()
    for overwrite in (False, True):  # real data is never replaced, --overwrite included
        with pytest.raises(FileExistsError, match="how2sign_realigned_train.csv"):
            generate_hard(str(tmp_path), **dict(TINY, layout="how2sign"), overwrite=overwrite)
    assert (tmp_path / "how2sign_realigned_train.csv").read_bytes() == before
    with pytest.raises(ValueError, match="layout"):
        generate_hard(str(tmp_path), **dict(TINY, layout="csl"))
    proc = run([sys.executable, "examples/synthetic/generate_dataset.py", "--out-root", tmp_path / "w",
                "--layout", "how2sign"], check=False)
    assert proc.returncode == 2 and "--layout applies to --preset hard only" in proc.stderr
