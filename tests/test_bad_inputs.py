"""Bad inputs that used to pass silently: each is a one-line error naming the file (and row, key or
option) and saying what to do, before any training starts; outputs honour the umask."""
import os
import stat
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import prep_csl_daily
import prep_how2sign
import prep_phoenix14t
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_tools.synthetic import make_csl_daily, make_how2sign
from flallm_tools.synthetic.releases import (
    csl_daily_frame_dir, csl_daily_split_path, how2sign_clip_path, how2sign_csv_path,
)
from helpers import USER_DIR, run

SMALL = ["--resize", "32", "--crop", "28", "--vocab-size", "100", "--workers", "1"]
COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0"]
TRAIN = ["--arch", "light_t_tiny", "--visual-backbone-weights", "none", "--optimizer", "adam", "--lr", "1e-4",
         "--max-update", "1", "--criterion", "label_smoothed_cross_entropy"]


def run_prep(module, release, out, *extra):
    return module.main(["--data-root", str(release), "--out-dir", str(out)] + SMALL + list(extra))


def last_line(proc):
    return proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def data_dir(phoenix_release, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_inputs") / "data"
    run_prep(prep_phoenix14t, phoenix_release, out)
    return str(out)


# ------------------------------------------------------------------ (a) truncated images
@pytest.mark.parametrize("verify", [False, True])
def test_half_truncated_jpeg_is_refused(tmp_path, verify):
    release = make_csl_daily(str(tmp_path / "release"))
    with open(csl_daily_split_path(release), encoding="utf-8") as f:
        name, split = f.read().splitlines()[1].split("|")
    folder = csl_daily_frame_dir(release, name)
    bad = os.path.join(folder, sorted(os.listdir(folder))[1])  # a middle frame: only its signature is read
    data = open(bad, "rb").read()
    scan = data.index(b"\xff\xda")  # start of scan: keep the headers and half of the image data
    with open(bad, "wb") as f:
        f.write(data[: scan + (len(data) - scan) // 2])
    assert cv2.imread(bad) is not None  # OpenCV decodes it (grey fill): decoding alone does not notice
    with pytest.raises(SignDataError) as e:
        run_prep(prep_csl_daily, release, tmp_path / "out", *(["--verify-frames"] if verify else []))
    msg = str(e.value)
    assert bad in msg and "truncated" in msg and csl_daily_split_path(release) in msg, msg
    assert not os.path.exists(tmp_path / "out")


# ------------------------------------------------------------------- (b) truncated video
def test_truncated_video_is_refused(tmp_path):
    release = make_how2sign(str(tmp_path / "release"))
    clip = how2sign_clip_path(release, "train", "vidtrain04_4-1-rgb_front")
    frames = [np.full((32, 32, 3), 5 * i, np.uint8) for i in range(41)]
    avi = str(tmp_path / "clip.avi")  # an AVI under the clip's .mp4 name: FFmpeg reads it by content
    writer = cv2.VideoWriter(avi, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 32))
    for frame in frames:
        writer.write(frame)
    writer.release()
    data = open(avi, "rb").read()
    with open(clip, "wb") as f:
        f.write(data[: len(data) * 4 // 10])
    cap = cv2.VideoCapture(clip)
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 41
    cap.release()
    with pytest.raises(SignDataError) as e:
        run_prep(prep_how2sign, release, tmp_path / "out")
    msg = str(e.value)
    assert clip in msg and "declares 41" in msg and how2sign_csv_path(release, "train") + ": line 6" in msg, msg


# ------------------------------------------------------------- (c, d) data config keys
@pytest.mark.parametrize("config,expected", [
    ({"sampling_rat": 0.5}, "unknown key 'sampling_rat'; did you mean 'sampling_rate'?"),
    ({"augmentation": {"rotat": 10}}, "unknown augmentation key 'rotat'; did you mean 'rotate'?"),
    ({"resize": 56.9}, "resize: 56.9 is not valid; expected a positive integer"),
    ({"resize": "abc"}, "resize: 'abc' is not valid; expected a positive integer"),
    ({"mean": [0.5, 0.5]}, "mean: [0.5, 0.5] is not valid; expected a list of 3 numbers"),
    ({"std": [0.2, 0.0, 0.2]}, "std: [0.2, 0.0, 0.2] is not valid; expected a list of 3 positive numbers"),
    ({"input_type": "frames"}, "input_type: 'frames' is not valid; expected one of video, features"),
    ({"augmentation": {"enabled": "yes please"}}, "augmentation.enabled: 'yes please' is not valid"),
])
def test_data_config_keys_and_types_are_checked(tmp_path, config, expected):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(dict({"vocab_filename": "dict.txt"}, **config)), encoding="utf-8")
    with pytest.raises(ValueError) as e:
        SignDataConfig(str(path))
    assert str(e.value).startswith(f"{path}: ") and expected in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_misspelt_key_stops_fairseq_train_before_training(data_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in os.listdir(data_dir):
        os.symlink(os.path.join(data_dir, name), data / name)
    config = yaml.safe_load(open(os.path.join(data_dir, "config.yaml"), encoding="utf-8"))
    (data / "config.yaml").unlink()
    config["bleu_tokenizer"] = "nosuch"  # (e): refused at setup, not at the first validation
    (data / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = run(["fairseq-train", data, *COMMON, *TRAIN, "--batch-size", "2", "--required-batch-size-multiple", "1",
                "--save-dir", tmp_path / "ckpt"], check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert str(data / "config.yaml") in msg and "bleu_tokenizer" in msg and "nosuch" in msg, msg
    assert "| epoch 001" not in proc.stdout and not os.path.exists(tmp_path / "ckpt" / "checkpoint_last.pt")


# ------------------------------------------------- (f) checkpoints fairseq itself loads
def _truncated_checkpoint(tmp_path):
    path = tmp_path / "checkpoint_truncated.pt"
    torch.save({"model": {"w": torch.zeros(1000)}, "cfg": None}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_truncated_checkpoint_given_to_generate_is_named(data_dir, tmp_path):
    path = _truncated_checkpoint(tmp_path)
    proc = run(["fairseq-generate", data_dir, *COMMON, "--gen-subset", "dev", "--path", path], check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert f"--path: {path}: cannot read checkpoint (corrupt, truncated" in msg, msg
    assert "weights_only" not in msg


def test_unsafe_finetune_from_model_is_refused_and_named(data_dir, tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "checkpoint_evil.pt"
    torch.save({"model": {}, "payload": _Exploit(marker)}, str(path))
    proc = run(["fairseq-train", data_dir, *COMMON, *TRAIN, "--batch-size", "2", "--required-batch-size-multiple", "1",
                "--save-dir", tmp_path / "ckpt", "--finetune-from-model", path], check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert f"--finetune-from-model: {path}: refused to load" in msg, msg
    assert not marker.exists()


# ------------------------------------------------------------------- (g) file modes
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_preprocessor_outputs_honour_the_umask(phoenix_release, tmp_path, umask):
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        run_prep(prep_phoenix14t, phoenix_release, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask
    for name in os.listdir(out):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o666 & ~umask, name


# ------------------------------------------------------------ (h) batch size multiple
def test_batch_size_below_required_multiple_is_refused_before_training(data_dir, tmp_path):
    proc = run(["fairseq-train", data_dir, *COMMON, *TRAIN, "--batch-size", "4", "--save-dir", tmp_path / "ckpt"],
               check=False, timeout=300)
    assert proc.returncode != 0
    msg = last_line(proc)
    assert "--batch-size 4 is below --required-batch-size-multiple 8" in msg and \
        "--required-batch-size-multiple 1" in msg, msg


# --------------------------------------------------------- stale manifest n_frames
@pytest.mark.parametrize("delta", [-3, 2])
def test_stale_n_frames_is_named_with_the_manifest_row(data_dir, tmp_path, delta):
    """A manifest n_frames other than the images in the folder (smaller used to cut the video short
    silently) is an error naming the manifest, its line and the folder, when the video is read."""
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator

    data = tmp_path / "data"
    data.mkdir()
    for name in os.listdir(data_dir):
        os.symlink(os.path.join(data_dir, name), data / name)
    (data / "dev.tsv").unlink()
    lines = open(os.path.join(data_dir, "dev.tsv"), encoding="utf-8").read().splitlines()
    cols = lines[2].split("\t")
    cols[2] = str(int(cols[2]) + delta)
    lines[2] = "\t".join(cols)
    (data / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = SignDataConfig(str(data / "config.yaml"))
    ds = SignTranslationDatasetCreator.from_tsv(str(data), cfg, "dev", None, None, is_train_split=False,
                                                visual_input=None, augment=False, seed=1)
    ds[0]  # an untouched row reads
    with pytest.raises(SignDataError) as e:
        ds[1]
    msg = str(e.value)
    assert msg.startswith(f"{data / 'dev.tsv'}: line 3 (id {cols[0]}): ") and "\n" not in msg, msg
    assert f"holds {int(cols[2]) - delta} images but the manifest says n_frames={cols[2]}" in msg, msg


# ----------------------------------------------------------------- byte-order marks
def test_utf8_bom_in_manifest_and_phoenix_csv_is_dropped_and_utf16_named(data_dir, phoenix_release, tmp_path):
    import codecs

    from flallm_plugin.data.prepare import read_delimited
    from flallm_plugin.data.sign_translation_dataset import read_manifest

    manifest = tmp_path / "dev.tsv"
    plain = open(os.path.join(data_dir, "dev.tsv"), "rb").read()
    manifest.write_bytes(codecs.BOM_UTF8 + plain)
    assert [r["id"] for r in read_manifest(str(manifest))] == [
        r["id"] for r in read_manifest(os.path.join(data_dir, "dev.tsv"))]
    csv_path = os.path.join(phoenix_release, "PHOENIX-2014-T", "annotations", "manual", "PHOENIX-2014-T.dev.corpus.csv")
    bom_csv = tmp_path / "dev.corpus.csv"
    bom_csv.write_bytes(codecs.BOM_UTF8 + open(csv_path, "rb").read())
    rows = read_delimited(str(bom_csv), "|", prep_phoenix14t.HEADER)
    assert [r["name"] for r in rows] == [r["name"] for r in read_delimited(csv_path, "|", prep_phoenix14t.HEADER)]
    manifest.write_bytes(plain.decode("utf-8").encode("utf-16"))  # with its BOM
    with pytest.raises(SignDataError, match=f"^{manifest}: UTF-16 text .*BOM.*save the manifest as UTF-8$"):
        read_manifest(str(manifest))


# ----------------------------------------------------------------- sampling rate and crop
def test_crop_larger_than_resize_in_config_names_the_file(tmp_path):
    for config, resize in (({"resize": 32, "crop": 40}, 32), ({"crop": 300}, 256)):  # 256: the default resize
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(dict({"vocab_filename": "dict.txt"}, **config)), encoding="utf-8")
        with pytest.raises(ValueError) as e:
            SignDataConfig(str(path))
        assert str(e.value) == (f"{path}: crop {config['crop']} exceeds resize {resize} (frames are resized to "
                                "resize x resize, then cropped): set crop <= resize, e.g. resize 256, crop 224")


@pytest.mark.parametrize("option,value,expected", [
    ("--sampling-rate", "nan", "--sampling-rate nan: sampling rate must be in (0, 1], got nan: use one of "
     "(1.0, 0.5, 0.25, 0.125) (the share of frames kept; the paper's is 0.25)"),
    ("--sampling-rate", "-1", "--sampling-rate -1.0: sampling rate must be in (0, 1], got -1.0: use one of"),
    ("--crop", "40", "--crop 40 exceeds --resize 32 (frames are resized, then cropped): pass --crop <= --resize, "
     "e.g. --resize 256 --crop 224"),
])
def test_bad_sampling_rate_or_crop_of_the_preprocessor_is_one_line(phoenix_release, tmp_path, option, value,
                                                                   expected):
    with pytest.raises(ValueError) as e:
        run_prep(prep_phoenix14t, phoenix_release, tmp_path / "out", option, value)
    assert str(e.value).startswith(expected) and "\n" not in str(e.value), str(e.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["nan", "0"])
def test_bad_sampling_rate_of_the_task_is_one_line(data_dir, tmp_path, value):
    proc = run(["fairseq-train", data_dir, *COMMON, *TRAIN, "--batch-size", "2", "--sampling-rate", value,
                "--save-dir", str(tmp_path / "ckpt")], check=False, timeout=300)
    assert proc.returncode != 0
    assert last_line(proc).endswith(f"--sampling-rate {float(value)}: sampling rate must be in (0, 1], got "
                                    f"{float(value)}: use one of (1.0, 0.5, 0.25, 0.125) (the share of frames "
                                    "kept; the paper's is 0.25)"), proc.stderr[-2000:]

# ----------------------------------------------------------------- paths outside the data directory
SECRET = "TOPSECRET first line of a file outside the data directory"


@pytest.mark.parametrize("key,value", [
    ("vocab_filename", "ABS"), ("vocab_filename", "../outside.txt"),
    ("bpe_tokenizer.sentencepiece_model", "ABS"),
])
def test_config_file_outside_the_data_directory_is_refused_unread(data_dir, tmp_path, key, value):
    """``vocab_filename: /etc/passwd`` used to be read as a dictionary, and fairseq's parse error quoted
    its first line; now it is refused before it is opened, naming config.yaml and the key."""
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET + "\n", encoding="utf-8")
    value = str(outside) if value == "ABS" else value
    data = tmp_path / "data"
    data.mkdir()
    for name in os.listdir(data_dir):
        if name != "config.yaml":
            os.symlink(os.path.join(data_dir, name), data / name)  # symlinks inside the directory are fine
    config = yaml.safe_load(open(os.path.join(data_dir, "config.yaml"), encoding="utf-8"))
    if key == "vocab_filename":
        config["vocab_filename"] = value
    else:
        config["bpe_tokenizer"]["sentencepiece_model"] = value
    (data / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    expected = (f"{data / 'config.yaml'}: {key}: {value!r} is outside the data directory {data}; copy the file "
                "into it and give its name there")
    with pytest.raises(ValueError) as e:
        SignDataConfig(str(data / "config.yaml"))
    assert str(e.value) == expected
    proc = run(["fairseq-train", str(data), *COMMON, *TRAIN, "--batch-size", "2", "--save-dir", str(tmp_path / "ckpt")],
               check=False, timeout=300)
    assert proc.returncode != 0 and last_line(proc).endswith(expected), proc.stderr[-2000:]
    assert "TOPSECRET" not in proc.stdout + proc.stderr


def test_manifest_video_path_leaving_the_video_root_is_refused(data_dir, tmp_path):
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator

    data = tmp_path / "data"
    data.mkdir()
    for name in os.listdir(data_dir):
        if name != "dev.tsv":
            os.symlink(os.path.join(data_dir, name), data / name)
    lines = open(os.path.join(data_dir, "dev.tsv"), encoding="utf-8").read().splitlines()
    cols = lines[2].split("\t")
    cols[1] = "../../x"
    lines[2] = "\t".join(cols)
    (data / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = SignDataConfig(str(data / "config.yaml"))
    with pytest.raises(SignDataError) as e:
        SignTranslationDatasetCreator.from_tsv(str(data), cfg, "dev", None, None, is_train_split=False,
                                               visual_input=None, augment=False, seed=1)
    assert str(e.value) == (f"{data / 'dev.tsv'}: line 3: video '../../x' leads out of the video root "
                            f"{cfg.video_root} (video_root of {data / 'config.yaml'}): give a path under it, "
                            "or an absolute path"), str(e.value)

@pytest.mark.parametrize("text,expected", [
    ("vocab_filename: dict.txt\nsampling_rate: 0.25\nresize: 32\nsampling_rate: 0.5\n",
     "duplicate key 'sampling_rate' (first on line 2, again on line 4): keep one"),
    ("vocab_filename: dict.txt\naugmentation:\n  rotate: 10\n  rotate: 20\n",
     "duplicate key 'rotate' (first on line 3, again on line 4): keep one"),
])
def test_data_config_duplicate_key_is_refused(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert yaml.safe_load(text)  # PyYAML alone keeps the last value without a word
    with pytest.raises(ValueError) as e:
        SignDataConfig(str(path))
    assert str(e.value) == f"{path}: {expected}", str(e.value)


def test_stale_n_frames_of_a_video_file_is_named(tmp_path):
    from flallm_plugin.data.video_io import count_video_frames, read_frames
    from flallm_tools.synthetic import write_mp4

    mp4 = str(tmp_path / "clip.mp4")
    write_mp4(mp4, [np.full((32, 32, 3), 7 * i, np.uint8) for i in range(20)])
    n = count_video_frames(mp4)
    assert len(read_frames(mp4, [0, n - 1], n_frames=n)) == 2  # the true count reads
    with pytest.raises(SignDataError, match=f"^{mp4}: the video declares 20 frames but the manifest says n_frames=12 "):
        read_frames(mp4, [0, 4, 8], n_frames=12)
    assert len(read_frames(mp4, [0, 4], start=0.0, end=0.4, n_frames=10)) == 2  # a clip of its true count
    # a clip (start/end): its bounds give its frame count (25 fps: 0.2 s to 0.6 s = frames 5 to 14)
    assert len(read_frames(mp4, [0, 9], start=0.2, end=0.6, n_frames=10)) == 2
    for stale in (4, 16):  # too few cuts the clip short, too many reads past its end
        with pytest.raises(SignDataError, match=f"^{mp4}: the clip from 0.2 s to 0.6 s holds 10 frames but the "
                                                f"manifest says n_frames={stale} "):
            read_frames(mp4, [0, 3], start=0.2, end=0.6, n_frames=stale)
    with pytest.raises(SignDataError, match=f"^{mp4}: the clip from 0.4 s to the end holds 10 frames but the "
                                            "manifest says n_frames=5 "):
        read_frames(mp4, [0, 4], start=0.4, n_frames=5)

