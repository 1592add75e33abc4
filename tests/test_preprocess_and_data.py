"""Preprocessors (PHOENIX-2014-T, How2Sign, CSL-Daily) -> data directory -> sign_translation task.

The release layouts are built by ``flallm_tools.synthetic`` (the ``*_release`` fixtures of
``conftest.py``); every preprocessor is run for real (the happy paths as
``python preprocess/prep_*.py`` subprocesses, the bad-input cases in-process through
``main(argv)``), and the task is set up the way ``fairseq-train`` does it
(``options.parse_args_and_arch`` + ``tasks.setup_task``).
"""
import csv
import logging
import math
import os
import pickle
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from fairseq import options, tasks

import prep_csl_daily
import prep_how2sign
import prep_phoenix14t
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.sign_translation_dataset import SignTranslationDataset
from flallm_plugin.data.visual_input import VisualInputSpec
from flallm_tools.synthetic import DEFAULT_SPLITS, make_csl_daily, make_how2sign, make_phoenix, write_mp4
from flallm_tools.synthetic.releases import (
    csl_daily_frame_dir, csl_daily_label_path, csl_daily_split_path, how2sign_clip_path, how2sign_csv_path,
    phoenix_corpus_path, phoenix_frame_dir,
)
from helpers import REPO, USER_DIR, run

SMALL = ["--resize", "32", "--crop", "28", "--vocab-size", "100", "--workers", "1"]
PER_WORD = 8  # frames per word in the fixtures
SPLITS = ("train", "dev", "test")

# name -> (script, bleu tokenizer); the release is the fixture ``{name}_release``
DATASETS = {
    "phoenix": ("prep_phoenix14t.py", "13a"),
    "how2sign": ("prep_how2sign.py", "13a"),
    "csl_daily": ("prep_csl_daily.py", "char"),
}


# ---------------------------------------------------------------------------- helpers
class Prepared(object):
    def __init__(self, name, release, out, bleu):
        self.name, self.release, self.out, self.bleu = name, release, out, bleu


_PREPARED = {}


def _prepare(name, request, tmp_path_factory):
    """Run the preprocessor of a release as a script (once per module)."""
    if name not in _PREPARED:
        script, bleu = DATASETS[name]
        release = request.getfixturevalue(f"{name}_release")
        root = tmp_path_factory.mktemp(name)
        out = str(root / "data")
        # cwd: not the repository, the script must find its own imports
        proc = run([sys.executable, os.path.join(REPO, "preprocess", script), "--data-root", release, "--out-dir", out]
                   + SMALL, cwd=root, timeout=300)
        assert f"wrote {out}" in proc.stdout
        _PREPARED[name] = Prepared(name, release, out, bleu)
    return _PREPARED[name]


@pytest.fixture(scope="module", params=list(DATASETS))
def prepared(request, tmp_path_factory):
    return _prepare(request.param, request, tmp_path_factory)


@pytest.fixture(scope="module")
def phoenix(request, tmp_path_factory):
    return _prepare("phoenix", request, tmp_path_factory)


def make_task(data_dir, *extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser,
        [
            data_dir, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
            "--visual-backbone-weights", "none", "--cpu", "--seed", "1", "--max-tokens", "64",
        ]
        + list(extra),
    )
    return tasks.setup_task(args)


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def expected_targets(p: Prepared, split):
    sentences = DEFAULT_SPLITS[split]  # the fixtures' How2Sign "val" split holds the "dev" sentences
    if p.name == "phoenix":
        return list(sentences)
    if p.name == "how2sign":
        return [s.capitalize() + "." for s in sentences]
    with open(csl_daily_label_path(p.release), "rb") as f:
        info = pickle.load(f)["info"]  # written by the tests themselves
    with open(csl_daily_split_path(p.release), encoding="utf-8") as f:
        names = [ln.split("|")[0] for ln in f.read().splitlines()[1:] if ln.endswith("|" + split)]
    by_name = {e["name"]: "".join(e["label_word"]) for e in info}
    return [by_name[n] for n in names]


def run_prep(module, release, out, *extra):
    return module.main(["--data-root", str(release), "--out-dir", str(out)] + SMALL + list(extra))


def assert_names(msg, *parts):
    for part in parts:
        assert str(part) in msg, f"{part!r} not in error message: {msg}"


def snapshot(folder):
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def garbage(path, head=b""):
    with open(path, "wb") as f:
        f.write(head + bytes(np.random.RandomState(0).randint(0, 256, 3000, dtype=np.uint8)))


def all_batches(task, ds, max_tokens, ignore_invalid=True, num_workers=0):
    itr = task.get_batch_iterator(
        ds,
        max_tokens=max_tokens,
        max_positions=task.max_positions(),
        required_batch_size_multiple=1,
        ignore_invalid_inputs=ignore_invalid,
        seed=1,
        epoch=1,
        num_workers=num_workers,
        disable_iterator_cache=True,
    )
    return itr


# ------------------------------------------------------------- data directory written
def test_data_directory(prepared):
    out = prepared.out
    for name in ("train.tsv", "dev.tsv", "test.tsv", "config.yaml", "spm.model", "dict.txt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "val.tsv"))
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        text = f.read()
    assert f"bleu_tokenizer: {prepared.bleu}\n" in text
    cfg = yaml.safe_load(text)
    assert os.path.isabs(cfg["video_root"]) and os.path.isdir(cfg["video_root"])
    assert (cfg["resize"], cfg["crop"]) == (32, 28)
    for split in SPLITS:
        rows = read_tsv(os.path.join(out, f"{split}.tsv"))
        assert list(rows[0])[:5] == ["id", "video", "n_frames", "tgt_text", "speaker"]
        assert [r["tgt_text"] for r in rows] == expected_targets(prepared, split)
        sentences = DEFAULT_SPLITS[split]
        assert [int(r["n_frames"]) for r in rows] == [PER_WORD * len(s.split()) for s in sentences]
        assert len({r["id"] for r in rows}) == len(rows)
        for r in rows:
            assert os.path.exists(os.path.join(cfg["video_root"], r["video"]))
            if prepared.name == "how2sign":
                release_split = "val" if split == "dev" else split
                assert r["video"].startswith(f"{release_split}_rgb_front_clips"), r["video"]
                assert r["video"].endswith(r["id"] + ".mp4")


# --------------------------------------------------------------------------- the task
def test_items_train_and_eval(prepared):
    task = make_task(prepared.out)
    assert task.bleu_tokenizer == prepared.bleu
    eos = task.target_dictionary.eos()
    for split in ("train", "dev"):
        task.load_dataset(split)
        ds = task.dataset(split)
        rows = read_tsv(os.path.join(prepared.out, f"{split}.tsv"))
        assert len(ds) == len(rows)
        for i, r in enumerate(rows):
            item = ds[i]
            n = int(r["n_frames"])
            full = math.ceil(n / 4)
            assert item.source.dtype == torch.uint8
            assert tuple(item.source.shape[1:]) == (28, 28, 3)
            if split == "train":
                assert full - 1 <= item.source.shape[0] <= full
            else:
                assert item.source.shape[0] == full
            assert ds.num_tokens(i) == full
            assert item.target[-1].item() == eos
            assert task.decode_tokens(item.target) == r["tgt_text"]
            assert item.source.float().mean() > 10  # real frames, not zeros


def test_collater(prepared):
    task = make_task(prepared.out)
    task.load_dataset("train")
    ds = task.dataset("train")
    items = [ds[i] for i in (0, 1, 2)]
    batch = ds.collater(items)
    net = batch["net_input"]
    assert set(net) == {"src_tokens", "src_lengths", "prev_output_tokens"}
    lengths = [x.source.shape[0] for x in items]
    assert net["src_lengths"].tolist() == lengths
    assert tuple(net["src_tokens"].shape) == (3, max(lengths), 28, 28, 3)
    assert net["src_tokens"].dtype == torch.uint8
    for k, x in enumerate(items):
        assert torch.equal(net["src_tokens"][k, : lengths[k]], x.source)
        assert not net["src_tokens"][k, lengths[k]:].any()  # zero padding
    d = task.target_dictionary
    tlen = [len(x.target) for x in items]
    for k, x in enumerate(items):
        assert batch["target"][k, tlen[k] - 1].item() == d.eos()
        assert torch.equal(batch["target"][k, : tlen[k]], x.target)
        assert (batch["target"][k, tlen[k]:] == d.pad()).all()
        assert net["prev_output_tokens"][k, 0].item() == d.eos()
        assert torch.equal(net["prev_output_tokens"][k, 1: tlen[k]], x.target[:-1])
    assert batch["ntokens"] == sum(tlen)
    assert batch["nsentences"] == 3
    assert batch["id"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("max_tokens", [6, 13, 1000])
def test_batches_cover_all_and_respect_frame_budget(prepared, max_tokens):
    task = make_task(prepared.out)
    for split in ("train", "test"):
        task.load_dataset(split)
        ds = task.dataset(split)
        seen = []
        n_batches = 0
        for batch in all_batches(task, ds, max_tokens).next_epoch_itr(shuffle=split == "train"):
            ids = batch["id"].tolist()
            seen += ids
            n_batches += 1
            bsz = len(ids)
            assert max(ds.num_tokens(i) for i in ids) * bsz <= max_tokens
            assert int(batch["net_input"]["src_lengths"].max()) * bsz <= max_tokens
            assert batch["net_input"]["src_tokens"].shape[0] == bsz
        assert sorted(seen) == list(range(len(ds)))
        if max_tokens == 6:
            assert n_batches == len(ds)  # one 4..6-frame sample per batch
        if max_tokens == 1000:
            assert n_batches == 1


def test_long_samples_are_skipped_with_a_warning(prepared, caplog):
    task = make_task(prepared.out, "--max-source-frames", "4")
    assert task.max_positions()[0] == 4
    task.load_dataset("train")
    ds = task.dataset("train")
    keep = [i for i in range(len(ds)) if ds.num_tokens(i) <= 4]
    assert 0 < len(keep) < len(ds)
    with caplog.at_level(logging.WARNING):
        seen = []
        for batch in all_batches(task, ds, 64).next_epoch_itr(shuffle=True):
            seen += batch["id"].tolist()
    assert sorted(seen) == keep
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    skipped = f"{len(ds) - len(keep)} samples have invalid sizes and will be skipped"
    assert any(skipped in m for m in warnings), warnings
    # without --skip-invalid-size-inputs-valid-test (valid/test iterators), fairseq refuses
    with pytest.raises(Exception, match="is invalid"):
        all_batches(task, ds, 64, ignore_invalid=False)


def test_sampling_rate_option(prepared):
    lengths = {}
    for rate in ("1", "0.5", "0.25"):
        task = make_task(prepared.out, "--sampling-rate", rate)
        task.load_dataset("dev")
        ds = task.dataset("dev")
        lengths[rate] = sum(ds[i].source.shape[0] for i in range(len(ds)))
    n = sum(int(r["n_frames"]) for r in read_tsv(os.path.join(prepared.out, "dev.tsv")))
    assert lengths["1"] == n
    assert lengths["1"] == 2 * lengths["0.5"] == 4 * lengths["0.25"]


# ------------------------------------------------------------------ temporal sampling
N_UNIFORM = 16


@pytest.fixture(scope="module")
def uniform_video(tmp_path_factory):
    """A 16-frame folder whose frame i is uniformly 10 * i: the phase is readable from pixels."""
    root = tmp_path_factory.mktemp("uniform")
    folder = root / "video"
    folder.mkdir()
    for i in range(N_UNIFORM):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((8, 8, 3), 10 * i, np.uint8))
    with open(root / "config.yaml", "w") as f:
        yaml.safe_dump({"video_root": str(root), "resize": 8, "crop": 8, "augmentation": {"enabled": False}}, f)
    return str(folder), SignDataConfig(str(root / "config.yaml"))


def _uniform_ds(uniform_video, train, rate=0.25, seed=1, n=24):
    folder, cfg = uniform_video
    return SignTranslationDataset(
        "train" if train else "dev", train, cfg, [folder] * n, [N_UNIFORM] * n,
        visual_input=VisualInputSpec.from_data_cfg(cfg, rate), augment=True, seed=seed,
    )


def _phase(ds, index, epoch):
    ds.set_epoch(epoch)
    values = ds[index].source[:, 0, 0, 0].numpy().astype(int)
    assert (ds[index].source == ds[index].source[:, :1, :1, :1]).all()  # whole frames, untouched
    stride = ds.stride
    phase = values[0] // 10
    assert 0 <= phase < stride
    assert values.tolist() == [10 * f for f in range(phase, N_UNIFORM, stride)]
    return phase


def test_sampling_rates_give_frame_counts(uniform_video):
    for rate, expected in ((1.0, 16), (0.5, 8), (0.25, 4), (0.125, 2)):
        for train in (False, True):
            ds = _uniform_ds(uniform_video, train, rate=rate, n=2)
            assert ds.num_tokens(0) == expected
            assert ds[0].source.shape[0] == expected
    assert _uniform_ds(uniform_video, False, 1.0, n=1)[0].source.shape[0] == 4 * _uniform_ds(
        uniform_video, False, 0.25, n=1
    )[0].source.shape[0]
    with pytest.raises(ValueError, match="sampling rate"):
        _uniform_ds(uniform_video, False, rate=0.3)


def test_training_phase_random_but_deterministic(uniform_video):
    a, b = _uniform_ds(uniform_video, True), _uniform_ds(uniform_video, True)
    grid = {(e, i): _phase(a, i, e) for e in (1, 2, 3) for i in range(len(a))}
    # deterministic: another dataset with the same seed, visited in another order
    for (e, i) in sorted(grid, reverse=True):
        assert _phase(b, i, e) == grid[(e, i)]
    assert len(set(grid.values())) >= 3  # random phases (4 possible)
    assert len({_phase(a, 0, e) for e in range(1, 13)}) > 1  # the phase changes with the epoch
    c = _uniform_ds(uniform_video, True, seed=2)
    assert any(_phase(c, i, e) != p for (e, i), p in grid.items())  # ... and with the seed


def test_eval_phase_is_zero(uniform_video):
    ds = _uniform_ds(uniform_video, False)
    assert {_phase(ds, i, e) for e in (1, 2, 5) for i in range(len(ds))} == {0}


def test_epoch_reaches_data_loader_workers(phoenix):
    task = make_task(phoenix.out)
    task.load_dataset("train")
    ds = task.dataset("train")
    itr = all_batches(task, ds, 64, num_workers=1)
    for epoch in (1, 2):
        got = {}
        for batch in itr.next_epoch_itr(shuffle=True):
            for k, i in enumerate(batch["id"].tolist()):
                got[i] = batch["net_input"]["src_tokens"][k, : batch["net_input"]["src_lengths"][k]]
        assert itr.epoch == epoch
        ds.set_epoch(epoch)
        for i, src in got.items():
            assert torch.equal(src, ds[i].source), f"epoch {epoch}, sample {i}: worker used another epoch"


# ---------------------------------------------------------------------- command line
TASK_OPTIONS = ("--max-source-frames", "--sampling-rate", "--eval-bleu", "--no-augment", "--tgt-lang-tag",
                "--config-yaml")


def _fairseq_train(*args):
    return run(["fairseq-train", *args], check=False, timeout=120)


def test_task_options_in_help_after_parsing(phoenix):
    """The parser fairseq-train builds for --task sign_translation documents the task options."""
    parser = options.get_training_parser()
    options.parse_args_and_arch(
        parser, [phoenix.out, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny"]
    )
    text = parser.format_help()
    for opt in TASK_OPTIONS:
        assert opt in text, opt
    assert "temporal sampling rate" in text and "frames after temporal sampling" in text


def test_fairseq_train_usage_lists_task_options(phoenix):
    proc = _fairseq_train(phoenix.out, "--user-dir", "flallm_plugin", "--task", "sign_translation",
                          "--arch", "light_t_tiny", "--no-such-option")
    assert proc.returncode == 2
    assert "unrecognized arguments: --no-such-option" in proc.stderr
    usage = proc.stderr[proc.stderr.index("usage: fairseq-train"):]
    for opt in TASK_OPTIONS:
        assert opt in usage, opt


def test_flallm_help_lists_task_and_model_options():
    """fairseq parses --help before adding task/model options; flallm-help prints the full parser."""
    proc = run(["flallm-help", "train", "--task", "sign_translation", "--arch", "light_t",
                "--criterion", "sign_contrastive_ce"])
    assert "usage: fairseq-train" in proc.stdout
    assert "rouge_l" in proc.stdout  # the plugin's scorers are registered
    for opt in list(TASK_OPTIONS) + ["--temporal-spec", "--vl-adapter-hidden-dim", "--no-scale-visual-input",
                                     "--checkpoint-backbone-activations", "--label-smoothing",
                                     "--contrastive-weight", "--contrastive-init-temperature", "--contrastive-visual"]:
        assert opt in proc.stdout, opt


def test_plugin_import_leaves_fairseq_functions_unchanged():
    from fairseq import options

    assert options.parse_args_and_arch.__module__ == "fairseq.options"


# ------------------------------------------------------------------- PHOENIX bad input
def _phoenix_release(tmp_path):
    return make_phoenix(str(tmp_path / "release"))


def _ph_frames(release, split, j):
    return phoenix_frame_dir(release, split, f"{split}_video_{j:03d}")


def _edit_lines(path, fn):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    fn(lines)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def test_phoenix_missing_frame_folder(tmp_path):
    release = _phoenix_release(tmp_path)
    shutil.rmtree(_ph_frames(release, "dev", 1))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), phoenix_corpus_path(release, "dev") + ": line 3", _ph_frames(release, "dev", 1))
    assert not os.path.exists(tmp_path / "out")


def test_phoenix_empty_frame_folder(tmp_path):
    release = _phoenix_release(tmp_path)
    folder = _ph_frames(release, "train", 2)
    for n in os.listdir(folder):
        os.unlink(os.path.join(folder, n))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), phoenix_corpus_path(release, "train") + ": line 4", folder, "no images")


@pytest.mark.parametrize("which,head", [("images0005.png", b""), ("images0001.png", b"\x89PNG\r\n\x1a\n")])
def test_phoenix_corrupt_image(tmp_path, which, head):
    """A middle frame fails the signature check, a first frame with a PNG signature fails decoding."""
    release = _phoenix_release(tmp_path)
    bad = os.path.join(_ph_frames(release, "test", 1), which)
    garbage(bad, head)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), phoenix_corpus_path(release, "test") + ": line 3", bad)


def test_phoenix_wrong_header(tmp_path):
    release = _phoenix_release(tmp_path)
    path = phoenix_corpus_path(release, "train")
    _edit_lines(path, lambda ls: ls.__setitem__(0, ls[0].replace("translation", "text")))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), path + ": line 1", "translation")


def test_phoenix_wrong_column_count(tmp_path):
    release = _phoenix_release(tmp_path)
    path = phoenix_corpus_path(release, "test")
    _edit_lines(path, lambda ls: ls.__setitem__(2, ls[2].rsplit("|", 1)[0]))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), path + ": line 3", "6 columns, expected 7")


def test_phoenix_empty_target(tmp_path):
    release = _phoenix_release(tmp_path)
    path = phoenix_corpus_path(release, "dev")
    _edit_lines(path, lambda ls: ls.__setitem__(1, ls[1].rsplit("|", 1)[0] + "|  "))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), path + ": line 2", "empty target")


def test_phoenix_non_utf8_csv(tmp_path):
    release = _phoenix_release(tmp_path)
    path = phoenix_corpus_path(release, "train")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    lines[3] = lines[3].replace(b"morgen", "m\u00fcnchen".encode("latin-1"))
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, tmp_path / "out")
    assert_names(str(e.value), path + ": line 4", "UTF-8")


def test_failed_run_leaves_previous_output_intact(tmp_path):
    release = _phoenix_release(tmp_path)
    out = str(tmp_path / "out")
    run_prep(prep_phoenix14t, release, out)
    before = snapshot(out)
    assert set(before) == {"train.tsv", "dev.tsv", "test.tsv", "config.yaml", "spm.model", "dict.txt"}
    # late failure: after the sentencepiece model is trained
    with pytest.raises(SignDataError, match="not in the dictionary"):
        run_prep(prep_phoenix14t, release, out, "--vocab-size", "60", "--tgt-lang-tag", "[xx_XX]")
    assert snapshot(out) == before
    # validation failure, with another vocabulary size (the files would differ)
    shutil.rmtree(_ph_frames(release, "test", 0))
    with pytest.raises(SignDataError):
        run_prep(prep_phoenix14t, release, out, "--vocab-size", "60")
    assert snapshot(out) == before



def test_run_failing_while_writing_leaves_previous_output_byte_identical(tmp_path):
    """A bad row after good ones that only the manifest writer catches (a tab in the speaker: the
    manifests are tab-separated) fails after the vocabulary and the first manifests are written: they go
    to a temporary directory next to --out-dir, moved into place only at the end; an earlier output stays
    byte-identical, and the temporary directory is gone. One a killed run left is removed by the next."""
    release = _phoenix_release(tmp_path)
    out = tmp_path / "out"
    run_prep(prep_phoenix14t, release, out)
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")  # not written by the preprocessor: kept
    before = snapshot(out)
    train, test = phoenix_corpus_path(release, "train"), phoenix_corpus_path(release, "test")
    _edit_lines(train, lambda ls: ls.__setitem__(1, ls[1].rsplit("|", 1)[0] + "|eine ganz andere satz"))
    _edit_lines(test, lambda ls: ls.__setitem__(2, ls[2].replace("|Signer", "|Sig\tner")))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_phoenix14t, release, out, "--vocab-size", "60")
    assert str(e.value).startswith(f"{out / 'test.tsv'}: row 2: speaker 'Sig\\tner"), str(e.value)
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out", "release"]  # no temporary directory left
    # the same edit without the bad row succeeds and replaces only the preprocessor's files
    _edit_lines(test, lambda ls: ls.__setitem__(2, ls[2].replace("|Sig\tner", "|Signer")))
    orphan = tmp_path / ".out.999999999.0123abcd.tmp"  # as a killed run leaves it (no such process)
    orphan.mkdir()
    (orphan / ".flallm-prepare").write_text("written by flallm-prepare\n", encoding="utf-8")
    run_prep(prep_phoenix14t, release, out, "--vocab-size", "60")
    after = snapshot(out)
    assert set(after) == set(before) and after["notes.txt"] == before["notes.txt"]
    assert after["train.tsv"] != before["train.tsv"] and "eine ganz andere satz" in after["train.tsv"].decode()
    assert sorted(os.listdir(tmp_path)) == ["out", "release"]

def test_frame_corrupted_after_preprocessing(tmp_path):
    release = _phoenix_release(tmp_path)
    out = str(tmp_path / "out")
    run_prep(prep_phoenix14t, release, out)
    bad = os.path.join(_ph_frames(release, "dev", 1), "images0001.png")
    garbage(bad)
    task = make_task(out)
    task.load_dataset("dev")
    ds = task.dataset("dev")
    ds[0]  # still fine
    with pytest.raises(SignDataError) as e:
        ds[1]
    assert_names(str(e.value), os.path.join(out, "dev.tsv") + ": line 3", "dev_video_001", bad)
    # a frame folder removed after preprocessing: refused when the split is loaded
    shutil.rmtree(_ph_frames(release, "test", 0))
    with pytest.raises(SignDataError) as e:
        task.load_dataset("test")
    assert_names(str(e.value), os.path.join(out, "test.tsv") + ": line 2", _ph_frames(release, "test", 0))


@pytest.mark.parametrize("case", ["missing_column", "column_count", "non_utf8", "empty_target"])
def test_bad_manifest(phoenix, tmp_path, case):
    out = str(tmp_path / "data")
    shutil.copytree(phoenix.out, out)
    path = os.path.join(out, "train.tsv")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if case == "missing_column":
        lines[0] = lines[0].replace(b"tgt_text", b"text")
        expect = ["line 1", "tgt_text"]
    elif case == "column_count":
        lines[3] = lines[3].rsplit(b"\t", 1)[0]
        expect = ["line 4", "4 columns, expected 5"]
    elif case == "non_utf8":
        lines[4] = lines[4] + "\xe4".encode("latin-1")
        expect = ["line 5", "UTF-8"]
    else:
        fields = lines[2].split(b"\t")
        fields[3] = b" "
        lines[2] = b"\t".join(fields)
        expect = ["line 3", "empty target"]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    task = make_task(out)
    task.load_dataset("dev")  # the other splits are fine
    with pytest.raises(SignDataError) as e:
        task.load_dataset("train")
    assert_names(str(e.value), path, *expect)


# ------------------------------------------------------------------ How2Sign specifics
def _h2s_clip(release, split, j):
    return how2sign_clip_path(release, split, f"vid{split}{j:02d}_{j}-1-rgb_front")


def test_how2sign_missing_video(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    clip = _h2s_clip(release, "val", 1)
    os.unlink(clip)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out")
    assert_names(str(e.value), how2sign_csv_path(release, "val") + ": line 3", clip, "not found")


@pytest.mark.parametrize("case", ["garbage", "no_frames"])
def test_how2sign_corrupt_or_empty_video(tmp_path, case):
    release = make_how2sign(str(tmp_path / "release"))
    clip = _h2s_clip(release, "train", 4)
    if case == "garbage":
        garbage(clip)
    else:  # a valid container with zero frames written
        writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (32, 32))
        writer.release()
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out")
    assert_names(str(e.value), how2sign_csv_path(release, "train") + ": line 6", clip)


def test_how2sign_clips_dir_pattern(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    for split in ("train", "val", "test"):
        os.makedirs(os.path.join(release, "clips"), exist_ok=True)
        os.rename(os.path.join(release, f"{split}_rgb_front_clips", "raw_videos"),
                  os.path.join(release, "clips", split))
    out = str(tmp_path / "out")
    with pytest.raises(SignDataError, match="line 2"):  # the default pattern no longer matches
        run_prep(prep_how2sign, release, out)
    summary = run_prep(prep_how2sign, release, out, "--clips-dir-pattern", "clips/{split}")
    assert {k: v["rows"] for k, v in summary["splits"].items()} == {"train": 6, "dev": 2, "test": 2}
    rows = read_tsv(os.path.join(out, "dev.tsv"))
    assert [r["video"] for r in rows] == [f"clips/val/vidval{j:02d}_{j}-1-rgb_front.mp4" for j in range(2)]
    assert [r["speaker"] for r in rows] == ["vidval00", "vidval01"]


def _decode(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _make_full_videos(release, pad=8):
    """Full videos <VIDEO_NAME>.mp4 = `pad` black frames + the sentence; realigned times set to match."""
    for split in ("train", "val", "test"):
        path = how2sign_csv_path(release, split)
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for k in range(1, len(lines)):
            f = lines[k].split("\t")
            clip = how2sign_clip_path(release, split, f[3])
            frames = _decode(clip)
            black = [np.zeros_like(frames[0])] * pad
            write_mp4(os.path.join(release, f"{split}_raw_videos", "raw_videos", f[1] + ".mp4"), black + frames)
            f[4], f[5] = f"{pad / 25:.2f}", f"{(pad + len(frames)) / 25:.2f}"
            lines[k] = "\t".join(f)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def test_how2sign_from_full_videos(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    _make_full_videos(release)
    out = str(tmp_path / "out")
    run_prep(prep_how2sign, release, out, "--from-full-videos")
    rows = read_tsv(os.path.join(out, "dev.tsv"))
    assert list(rows[0]) == ["id", "video", "n_frames", "tgt_text", "speaker", "start", "end"]
    assert [float(r["start"]) for r in rows] == [0.32, 0.32]
    assert [int(r["n_frames"]) for r in rows] == [PER_WORD * len(s.split()) for s in DEFAULT_SPLITS["dev"]]
    assert rows[0]["video"] == "val_raw_videos/raw_videos/vidval00-1-rgb_front.mp4"
    task = make_task(out, "--sampling-rate", "1")
    task.load_dataset("dev")
    ds = task.dataset("dev")
    for i, r in enumerate(rows):
        src = ds[i].source
        assert src.shape[0] == int(r["n_frames"])
        assert src.float().mean(dim=(1, 2, 3)).min() > 20  # the black lead-in was skipped



@pytest.mark.parametrize("delta", [-3, 2])
def test_stale_n_frames_of_a_clip_row_is_named_with_the_manifest_row(tmp_path, delta):
    """Rows cut from full videos (start/end columns): a stale n_frames used to be read as given (too
    small: the clip cut short; too large: frames past its end, from the next sentence)."""
    release = make_how2sign(str(tmp_path / "release"))
    _make_full_videos(release)
    out = tmp_path / "out"
    run_prep(prep_how2sign, release, str(out), "--from-full-videos")
    lines = (out / "dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[-2:] == ["start", "end"]
    cols = lines[2].split("\t")
    true_count = int(cols[2])
    cols[2] = str(true_count + delta)
    lines[2] = "\t".join(cols)
    (out / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = make_task(str(out), "--sampling-rate", "1")
    task.load_dataset("dev")
    ds = task.dataset("dev")
    ds[0]  # an untouched clip reads
    with pytest.raises(SignDataError) as e:
        ds[1]
    msg = str(e.value)
    assert msg.startswith(f"{out / 'dev.tsv'}: line 3 (id {cols[0]}): ") and "\n" not in msg, msg
    assert f"holds {true_count} frames but the manifest says n_frames={true_count + delta} (manifest out of date" in msg, msg

def _set_times(path, line, start, end):
    def edit(lines):
        f = lines[line - 1].split("\t")
        f[4], f[5] = start, end
        lines[line - 1] = "\t".join(f)

    _edit_lines(path, edit)


def test_how2sign_clip_outside_full_video(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    _make_full_videos(release)
    path = how2sign_csv_path(release, "test")
    _set_times(path, 3, "100.0", "101.0")
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out", "--from-full-videos")
    assert_names(str(e.value), path + ": line 3", "vidtest01-1-rgb_front.mp4", "no frames")
    _set_times(path, 3, "1.0", "0.5")
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out", "--from-full-videos")
    assert_names(str(e.value), path + ": line 3", "END_REALIGNED")
    _set_times(path, 3, "x", "0.5")
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out", "--from-full-videos")
    assert_names(str(e.value), path + ": line 3", "START_REALIGNED 'x'")


def test_how2sign_target_with_quotes(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    path = how2sign_csv_path(release, "train")
    _edit_lines(path, lambda ls: ls.__setitem__(1, ls[1].rsplit("\t", 1)[0] + '\tHe said "regen" nord.'))
    out = str(tmp_path / "out")
    run_prep(prep_how2sign, release, out)
    assert read_tsv(os.path.join(out, "train.tsv"))[0]["tgt_text"] == 'He said "regen" nord.'


# ----------------------------------------------------------------- CSL-Daily specifics
def _csl_paths(release):
    return csl_daily_label_path(release), csl_daily_split_path(release)


def _csl_info(release):
    with open(_csl_paths(release)[0], "rb") as f:
        return pickle.load(f)


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


class _RunsCode(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_csl_pickle_that_runs_code_is_refused(tmp_path, protocol):
    release = make_csl_daily(str(tmp_path / "release"))
    pkl, _ = _csl_paths(release)
    marker = str(tmp_path / "pwned")
    data = _csl_info(release)
    data["info"][0]["label_word"] = _RunsCode(marker)
    with open(pkl, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), pkl, "refused")
    assert not os.path.exists(marker)


@pytest.mark.parametrize("obj", [["a", "b"], {"gloss_map": []}, {"info": "x"}])
def test_csl_pickle_without_info_list(tmp_path, obj):
    release = make_csl_daily(str(tmp_path / "release"))
    pkl, _ = _csl_paths(release)
    _write_pickle(pkl, obj)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), pkl, "'info' list")


def test_csl_truncated_pickle(tmp_path):
    release = make_csl_daily(str(tmp_path / "release"))
    pkl, _ = _csl_paths(release)
    with open(pkl, "rb") as f:
        data = f.read()
    with open(pkl, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), pkl)


def test_csl_split_file_errors(tmp_path):
    release = make_csl_daily(str(tmp_path / "release"))
    _, split_path = _csl_paths(release)
    _edit_lines(split_path, lambda ls: ls.__setitem__(8, "S999999_P0000_T00|dev"))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), split_path + ": line 9", "S999999_P0000_T00")
    _edit_lines(split_path, lambda ls: ls.__setitem__(8, "S000209_P0000_T00|valid"))
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), split_path + ": line 9", "valid")


def test_csl_missing_frame_folder_and_empty_target(tmp_path):
    release = make_csl_daily(str(tmp_path / "release"))
    pkl, split_path = _csl_paths(release)
    folder = csl_daily_frame_dir(release, "S000207_P0000_T00")  # dev, 1st: line 8
    shutil.rmtree(folder)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), split_path + ": line 8", folder)
    data = _csl_info(release)
    data["info"][1]["label_word"] = []
    data["info"][1]["label_char"] = []
    _write_pickle(pkl, data)
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out")
    assert_names(str(e.value), split_path + ": line 3", "info[1]")


# ------------------------------------------------------------------ --target-column (recognition control)
@pytest.mark.parametrize("name,column,expect", [
    ("phoenix", "orth", lambda text: text.upper()),
    ("csl_daily", "label_gloss", lambda text: text.upper()),
])
def test_target_column_takes_the_gloss_sequences(name, column, expect, request, tmp_path):
    release = request.getfixturevalue(f"{name}_release")
    module = {"phoenix": prep_phoenix14t, "csl_daily": prep_csl_daily}[name]
    out = tmp_path / "out"
    run_prep(module, release, out, "--target-column", column)
    assert [r["tgt_text"] for r in read_tsv(out / "train.tsv")] == [expect(t) for t in DEFAULT_SPLITS["train"]]
    assert SignDataConfig(str(out / "config.yaml")).bleu_tokenizer == "13a"  # glosses are space-separated tokens


@pytest.mark.parametrize("name,path_of", [
    ("phoenix", lambda release: phoenix_corpus_path(release, "train")),
    ("csl_daily", lambda release: os.path.join(release, "sentence_label", "csl2020ct_v2.pkl")),
])
def test_unknown_target_column_names_the_file(name, path_of, request, tmp_path):
    release = request.getfixturevalue(f"{name}_release")
    module = {"phoenix": prep_phoenix14t, "csl_daily": prep_csl_daily}[name]
    with pytest.raises(SignDataError) as e:
        run_prep(module, release, tmp_path / "out", "--target-column", "gloss")
    assert_names(str(e.value), path_of(release), "'gloss'", "--target-column takes")
    assert not os.path.exists(tmp_path / "out")


def test_how2sign_has_no_gloss_column(how2sign_release, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_prep(prep_how2sign, how2sign_release, tmp_path / "out", "--target-column", "orth")
    assert "no gloss annotation" in capsys.readouterr().err
