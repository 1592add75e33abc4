"""flallm-export / flallm-translate / SignTranslator on the tiny stage-1 and stage-2 models.

A video translated from a model directory gives exactly fairseq-generate's ``D-`` line for it
(frame folders against a frame-folder split, mp4 files against an mp4 split: mp4 is lossy, so
fairseq-generate reads the same decoded frames), the directory works after being moved with the
training data and checkpoints deleted, each bad input is one line naming it, and the Python API
gives what the command line prints.
"""
import csv
import json
import math
import os
import shutil
import sys

import numpy as np
import pytest
import torch

import flallm_plugin  # noqa: F401
from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.data.frame_pack import write_frame_pack
from flallm_plugin.data.video_io import count_frames, list_frame_files, read_image
from flallm_plugin.scoring.generate_output import parse_generate_lines
from flallm_tools.synthetic import write_mp4
from helpers import USER_DIR, run

TRANSLATE = [sys.executable, "-m", "flallm_plugin.cli.translate"]
EXPORT = [sys.executable, "-m", "flallm_plugin.cli.export"]
MODEL_DIR_FILES = {"model.pt", "config.yaml", "dict.txt", "spm.model", "README.md"}


def read_rows(tsv):
    with open(tsv, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def generate(data, ckpt):
    """fairseq-generate's ``D-`` line (detokenized hypothesis, score in base 2) of each test sample, by row."""
    out = run(["fairseq-generate", data, "--user-dir", USER_DIR, "--task", "sign_translation", "--cpu",
               "--gen-subset", "test", "--path", ckpt, "--beam", "5", "--batch-size", "1",
               "--required-batch-size-multiple", "1", "--num-workers", "0"])
    samples = parse_generate_lines((out.stdout + out.stderr).split("\n"), "fairseq-generate output")
    return {i: (s.detokenized[0].text, s.detokenized[0].score) for i, s in samples.items()}


def translate_cli(model_dir, inputs, *extra):
    r = run([*TRANSLATE, model_dir, *inputs, "--cpu", *extra])
    lines = [line.split("\t") for line in r.stdout.splitlines()]
    assert [x[0] for x in lines] == list(inputs), r.stdout
    return [x[1] for x in lines]


def translate_json(model_dir, inputs):
    """(translation, score in base 2 as fairseq-generate prints it) of each input, from --json."""
    r = run([*TRANSLATE, model_dir, *inputs, "--cpu", "--json"])
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["input"] for x in recs] == list(inputs), r.stdout
    return [(x["translation"], x["nbest"][0]["score"] / math.log(2)) for x in recs]


def warning(line):
    """Lines of other libraries: torch's FutureWarning (two lines, when fairseq is imported) and
    FFmpeg's own log line for a corrupt file (``[mov,mp4,...] @ 0x...] moov atom not found``)."""
    return "Warning:" in line or line.strip() == "warnings.warn(" or (line.startswith("[") and " @ 0x" in line)


def mp4_split(data, out):
    """``out``: the data directory's test split as mp4 files (manifest built from the decoded mp4s)."""
    os.makedirs(out)
    for name in ("config.yaml", "dict.txt"):
        shutil.copy(os.path.join(data, name), out)
    for name in os.listdir(data):
        if name.endswith(".model"):
            shutil.copy(os.path.join(data, name), out)
    rows = read_rows(os.path.join(data, "test.tsv"))
    root = os.path.join(out, "videos")
    mp4s = []
    for r in rows:
        folder = r["video"] if os.path.isabs(r["video"]) else os.path.join(video_root(data), r["video"])
        mp4 = os.path.join(root, r["id"] + ".mp4")
        write_mp4(mp4, [read_image(f) for f in list_frame_files(folder)])
        mp4s.append(mp4)
        r["video"], r["n_frames"] = mp4, str(count_frames(mp4))
    with open(os.path.join(out, "test.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(rows[0].keys()) + "\n")
        for r in rows:
            f.write("\t".join(r.values()) + "\n")
    return mp4s


def video_root(data):
    from flallm_plugin.data.data_cfg import SignDataConfig

    return SignDataConfig(os.path.join(data, "config.yaml")).video_root


@pytest.fixture(scope="module")
def exported(stage1, tmp_path_factory):
    """Stage-1 and stage-2 model directories exported from copies of the training data and
    checkpoints, fairseq-generate's hypotheses from those checkpoints, then the copies deleted and
    the model directories moved."""
    root = tmp_path_factory.mktemp("translate")
    data, feats = str(root / "data"), str(root / "feats")
    shutil.copytree(stage1["data"], data)
    shutil.copytree(stage1["feats"], feats)
    ckpt1 = str(root / "ckpt1" / "checkpoint.pt")
    os.makedirs(os.path.dirname(ckpt1))
    shutil.copy(stage1["ckpt"], ckpt1)
    ckpt2_dir = str(root / "ckpt2")
    # stage 2 on the cached features, from the stage-1 visual encoder (a few updates: any model will do)
    run(["fairseq-train", feats, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "sign_mbart_tiny",
         "--pretrained-mbart", "none", "--load-visual-encoder-from", ckpt1, "--criterion",
         "label_smoothed_cross_entropy", "--optimizer", "adam", "--lr", "3e-3", "--max-update", "30",
         "--batch-size", "4", "--required-batch-size-multiple", "1", "--cpu", "--num-workers", "0",
         "--save-dir", ckpt2_dir, "--no-epoch-checkpoints", "--disable-validation"])
    ckpt2 = os.path.join(ckpt2_dir, "checkpoint_last.pt")
    mp4_data = str(root / "data_mp4")
    mp4s = mp4_split(data, mp4_data)
    folders = [os.path.join(video_root(data), r["video"]) for r in read_rows(os.path.join(data, "test.tsv"))]
    out = {"folders": folders, "mp4s": mp4s}
    for stage, ckpt, train_data in (("stage1", ckpt1, data), ("stage2", ckpt2, feats)):
        model_dir = str(root / f"model_{stage}")
        exp = run([*EXPORT, "--checkpoint", ckpt, "--data", train_data, "--out", model_dir])
        out[stage] = {
            "export_stdout": exp.stdout,
            "gen_folders": generate(data, ckpt),  # the original checkpoint on the frame-folder split
            "gen_mp4": generate(mp4_data, ckpt),  # ... and on the same clips as mp4
            "json": translate_json(model_dir, folders + mp4s),
            "before_move": translate_cli(model_dir, folders + mp4s),
        }
    for d in (data, feats, os.path.dirname(ckpt1), ckpt2_dir):
        shutil.rmtree(d)
    moved = root / "elsewhere" / "models"
    os.makedirs(moved.parent)
    for stage in ("stage1", "stage2"):
        os.makedirs(moved / stage)
        dst = str(moved / stage / "model")
        shutil.move(str(root / f"model_{stage}"), dst)
        out[stage]["dir"] = dst
    return out


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_translate_equals_fairseq_generate(exported, stage):
    x = exported[stage]
    n = len(exported["folders"])
    assert sorted(x["gen_folders"]) == list(range(n)) and sorted(x["gen_mp4"]) == list(range(n))
    # frame folders = generate on the frame-folder split; mp4 = generate on the mp4 split: the same
    # text, and the same score (the model saw the same frames)
    gen = [x["gen_folders"][i] for i in range(n)] + [x["gen_mp4"][i] for i in range(n)]
    assert x["before_move"] == [text for text, _ in gen]
    for (text, score), (gen_text, gen_score) in zip(x["json"], gen):
        assert text == gen_text and score == pytest.approx(gen_score, abs=1e-5), (x["json"], gen)
    # after the move, training data and checkpoints deleted: the same output
    assert translate_cli(x["dir"], exported["folders"] + exported["mp4s"]) == x["before_move"]


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_model_directory_holds_what_decoding_needs(exported, stage):
    d = exported[stage]["dir"]
    assert set(os.listdir(d)) == MODEL_DIR_FILES
    state = safe_torch_load(os.path.join(d, "model.pt"))  # weights_only=True
    assert "last_optimizer_state" not in state
    assert any(k.startswith("encoder.visual.backbone.") for k in state["model"])  # stage 2 carries it
    import yaml

    with open(os.path.join(d, "config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    # a video config, also for the stage-2 model trained on cached features
    assert config["input_type"] == "video" and (config["resize"], config["crop"]) == (32, 28)
    assert config["sampling_rate"] == 0.25 and config["video_root"] == "."
    card = open(os.path.join(d, "README.md"), encoding="utf-8").read()
    assert ("sign_mbart_tiny" if stage == "stage2" else "light_t_tiny") in card and "parameters:" in card
    # an existing directory is never overwritten
    from argparse import Namespace

    from flallm_plugin.cli.export import export

    with pytest.raises(FileExistsError, match="already exists"):
        export(Namespace(checkpoint="unused.pt", data="unused", out=d, scores=None))


def test_bad_inputs_one_line_each(exported, tmp_path):
    model = exported["stage2"]["dir"]
    good = exported["folders"][0]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(2000))
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((5, 7), np.float32))
    no_rows = tmp_path / "no_rows.npy"
    from flallm_plugin.hub import SignTranslator

    width = SignTranslator.from_pretrained(model, cpu=True).feature_dim
    np.save(no_rows, np.zeros((0, width), np.float32))
    cases = {
        str(tmp_path / "missing.mp4"): "not found",
        str(corrupt): "cannot open video",
        str(empty): "holds no images",
        str(narrow): f"width 7, but this model reads sign-level features of width {width}",
        str(no_rows): "no frames",
        str(tmp_path / "notes.txt"): "no such frame folder or file",
    }
    for bad, why in cases.items():
        r = run([*TRANSLATE, model, good, bad, "--cpu"], check=False)
        err = [line for line in r.stderr.splitlines() if line.strip() and not warning(line)]
        assert r.returncode == 1 and r.stdout == "", r.stderr  # nothing translated
        assert len(err) == 1 and err[0].startswith(f"flallm-translate: error: {bad}: ") and why in err[0], r.stderr
    # --skip-bad: reported, the rest translated (inputs also from a --list file)
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{good}\n{corrupt}\n", encoding="utf-8")
    r = run([*TRANSLATE, model, str(narrow), "--list", str(listing), "--cpu", "--skip-bad", "--no-progress"])
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [good]
    skipped = [line for line in r.stderr.splitlines() if "skipped:" in line]
    assert len(skipped) == 2 and str(narrow) in skipped[0] and str(corrupt) in skipped[1]
    # a clip with no frames
    r = run([*TRANSLATE, model, exported["mp4s"][0], "--cpu", "--start", "1000"], check=False)
    assert r.returncode == 1 and "no frames could be decoded between 1000.0 s" in r.stderr


@pytest.mark.parametrize("bounds,why", [
    (["--start", "-5"], "--start -5.0: expected a number of seconds >= 0"),
    (["--start", "inf"], "--start inf: expected a number of seconds >= 0"),
    (["--end", "nan"], "--end nan: expected a number of seconds >= 0"),
    (["--start", "2", "--end", "1"], "--end 1.0 is not after --start 2.0: the clip would be empty"),
])
def test_bad_clip_bounds_are_one_line(exported, bounds, why):
    r = run([*TRANSLATE, exported["stage1"]["dir"], exported["mp4s"][0], "--cpu", *bounds], check=False)
    err = [line for line in r.stderr.splitlines() if line.strip() and not warning(line)]
    assert r.returncode == 1 and r.stdout == "" and err == [f"flallm-translate: error: {why}"], r.stderr


def test_single_frame_is_refused_not_translated_empty(exported, tmp_path):
    one = tmp_path / "one_frame"
    one.mkdir()
    shutil.copy(list_frame_files(exported["folders"][0])[0], one)
    r = run([*TRANSLATE, exported["stage1"]["dir"], str(one), "--cpu"], check=False)
    err = [line for line in r.stderr.splitlines() if line.strip() and not warning(line)]
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert err == [f"flallm-translate: error: {one}: only 1 frame after temporal sampling (1 read, stride 4): too "
                   "short to translate (a still image is not a signed sentence); give the whole video"], r.stderr


def test_list_streams_each_result_as_it_is_done(exported, tmp_path):
    """``--list`` with --batch-size 1: each result is printed and flushed before the next input is read
    (the progress line ``[k/N] INPUT`` goes to stderr after its result; stdout and stderr share one pipe
    here, so their order is the order of the writes); a bad input later in the list stops with one line,
    after the results before it."""
    import subprocess

    from helpers import BIN, REPO

    model = exported["stage1"]["dir"]
    good = exported["folders"][:2]
    missing = str(tmp_path / "missing.mp4")
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(good + [missing]) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([*TRANSLATE, model, "--list", str(listing), "--batch-size", "1", "--cpu"], env=env,
                          cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.strip() and not warning(line)]
    assert proc.returncode == 1, proc.stdout
    assert [line.split("\t")[0] for line in lines] == [
        good[0], "[1/3] " + good[0], good[1], "[2/3] " + good[1],
        f"flallm-translate: error: {missing}: video file not found"], proc.stdout
    assert [line.split("\t")[1] for line in lines[0:3:2]] == exported["stage1"]["before_move"][:2]

@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_python_api_matches_cli(exported, stage, tmp_path):
    from flallm_plugin import SignTranslator

    x = exported[stage]
    t = SignTranslator.from_pretrained(x["dir"], cpu=True)
    inputs = exported["folders"] + exported["mp4s"]
    assert t.translate(inputs) == x["before_move"]
    assert t.translate(inputs[0]) == x["before_move"][0]
    # an array of the folder's frames (RGB) is read like the folder
    frames = np.stack([read_image(f) for f in list_frame_files(inputs[0])])
    assert t.translate(frames) == x["before_move"][0]
    # ... and so is a frame pack of them (flallm-pack-frames' format)
    pack = str(tmp_path / "clip.flpack")
    write_frame_pack(pack, list(frames))
    assert t.translate(pack) == x["before_move"][0]
    # encode() gives the sign-wise features; as a .npy input they give the same translation
    feats = t.encode(inputs[0])
    assert feats.dim() == 2 and feats.size(1) == t.feature_dim
    npy = str(tmp_path / "feats.npy")
    np.save(npy, feats.numpy())
    assert translate_cli(x["dir"], [npy]) == [x["before_move"][0]]
    assert torch.equal(t.encode([frames])[0], feats)
    # --json: n-best with scores, frames read; the best is the plain translation
    r = run([*TRANSLATE, x["dir"], inputs[0], inputs[-1], "--cpu", "--json", "--nbest", "3", "--no-progress"])
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    full = t.translate_full([inputs[0], inputs[-1]], nbest=3)
    for rec, f, text in zip(recs, full, [x["before_move"][0], x["before_move"][-1]]):
        assert rec["translation"] == f.translation == text and len(rec["nbest"]) == 3
        assert [h["translation"] for h in rec["nbest"]] == [h for h, _ in f.nbest]
        assert rec["nbest"][0]["score"] >= rec["nbest"][1]["score"] and rec["frames"] == f.frames > 0


def test_verbose_logs_fairseq_hub_lines(exported, caplog):
    """``verbose=True`` logs fairseq's hub lines per input: ``S`` (the input), then ``H`` (score, text)
    and ``P`` (positional scores) for each hypothesis of the beam; nothing without it."""
    import logging

    from flallm_plugin.hub import SignTranslator

    t = SignTranslator.from_pretrained(exported["stage1"]["dir"], cpu=True)
    inputs = exported["folders"][:2]
    with caplog.at_level(logging.INFO, logger="flallm_plugin.hub"):
        quiet = t.translate_full(inputs, beam=3, nbest=3)
        assert not [r for r in caplog.records if r.name == "flallm_plugin.hub"]
        t.translate(inputs, beam=3, verbose=True)
    lines = [r.getMessage().split("\t") for r in caplog.records if r.name == "flallm_plugin.hub"]
    assert [x[0] for x in lines] == ["S", "H", "P", "H", "P", "H", "P"] * 2, lines
    for k, r in enumerate(quiet):
        block = lines[7 * k : 7 * (k + 1)]
        assert block[0] == ["S", r.input]
        assert [(h[2], float(h[1])) for h in block[1::2]] == [(text, pytest.approx(s)) for text, s in r.nbest]
        for h, p in zip(r.hypos, block[2::2]):
            assert len(p[1].split(" ")) == len(h["tokens"])


def test_unreadable_frame_is_one_line_or_skipped(exported, tmp_path):
    """A frame that fails only when read (the folder's frame count checks out) stops the call with the
    reader's line, or with ``skip_bad`` is that input's error while the others are translated."""
    from flallm_plugin.hub import SignTranslator
    from flallm_plugin.data.errors import SignDataError

    bad = tmp_path / "bad_frame"
    shutil.copytree(exported["folders"][0], bad)
    first = list_frame_files(str(bad))[0]
    with open(first, "wb") as f:
        f.write(b"not a png")
    t = SignTranslator.from_pretrained(exported["stage1"]["dir"], cpu=True)
    good = exported["folders"][1]
    with pytest.raises(SignDataError) as e:
        t.translate([good, str(bad)])
    assert str(e.value) == f"{first}: cannot read image (missing, corrupt or not an image)"
    full = t.translate_full([str(bad), good], skip_bad=True)
    assert full[0].error == str(e.value) and full[0].translation is None
    assert full[1].error is None and full[1].translation == t.translate(good)


def test_hub_overrides_no_private_fairseq_method():
    """fairseq's hub interface is extended through its public methods only (generate, translate, ...)."""
    from fairseq.hub_utils import GeneratorHubInterface

    from flallm_plugin.hub import SignTranslator

    private = [n for n in vars(SignTranslator) if n.startswith("_") and not n.startswith("__")]
    assert not [n for n in private if hasattr(GeneratorHubInterface, n)], private
