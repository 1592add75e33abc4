"""flallm-serve: the web page translates an upload as flallm-translate translates the file.

One server (``python -m flallm_plugin.cli.serve``, port 0, small limits) runs from a model directory
exported from copies of the tiny stage-1 run and moved, the copies deleted; requests are real HTTP
(multipart forms as a browser sends them). Bad uploads get a 4xx answer with one line, the server
keeps answering, its temp directories are removed and zip members never land outside them.
"""
import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile

import cv2
import numpy as np
import pytest

from flallm_plugin.data.video_io import list_frame_files, read_image
from flallm_tools.synthetic import write_mp4
from helpers import REPO, run

SERVE = [sys.executable, "-m", "flallm_plugin.cli.serve"]
TRANSLATE = [sys.executable, "-m", "flallm_plugin.cli.translate"]
EXPORT = [sys.executable, "-m", "flallm_plugin.cli.export"]
MAX_UPLOAD_MB, MAX_DURATION_S, MAX_UNZIPPED_MB = 1, 6, 0.5


def translate_json(model_dir, path, *extra):
    r = run([*TRANSLATE, model_dir, path, "--cpu", "--json", "--nbest", "5", "--no-progress", *extra])
    return json.loads(r.stdout)


def form(files, fields=None):
    """(body, content type) of a multipart/form-data form: files = {name: (filename, bytes)}."""
    boundary = "----flallm" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post(url, filename, data, as_json=True, **fields):
    """(status, JSON object or HTML text) of uploading ``data`` as ``filename`` to the page's form."""
    body, ctype = form({"video": (filename, data)}, {k: v for k, v in fields.items() if v is not None})
    req = urllib.request.Request(url + "translate", data=body, method="POST", headers={"Content-Type": ctype})
    if as_json:
        req.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, text = resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode("utf-8")
    return status, (json.loads(text) if as_json else text)


def alive(url):
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200 and b'type="file"' in resp.read()


def make_zip(members):
    """A zip of {name: bytes}, or (name, bytes, unix mode) tuples for links."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            name, data, mode = m if isinstance(m, tuple) else (m, members[m], None)
            if mode is None:
                zf.writestr(name, data)
            else:
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(stage1, tmp_path_factory):
    """The server on a model directory exported from copies (then deleted) and moved; flallm-translate's
    output for the same files, taken from the directory before the move."""
    root = tmp_path_factory.mktemp("serve")
    data, ckpt = str(root / "data"), str(root / "ckpt" / "checkpoint.pt")
    shutil.copytree(stage1["data"], data)
    os.makedirs(os.path.dirname(ckpt))
    shutil.copy(stage1["ckpt"], ckpt)
    model_dir = str(root / "model")
    run([*EXPORT, "--checkpoint", ckpt, "--data", data, "--out", model_dir])
    # a test clip as a frame folder, an mp4 of it and a zip of it
    with open(os.path.join(data, "test.tsv"), encoding="utf-8") as f:
        video = next(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))["video"]
    from flallm_plugin.data.data_cfg import SignDataConfig

    files = list_frame_files(os.path.join(SignDataConfig(os.path.join(data, "config.yaml")).video_root, video))
    frames = [read_image(p) for p in files]
    clips = root / "clips"
    folder = clips / "frames"
    folder.mkdir(parents=True)
    for p in files:
        shutil.copy(p, folder)
    mp4 = str(clips / "clip.mp4")
    write_mp4(mp4, frames)
    # twice the limit (25 fps): refused whole, fine as a clip of it
    long_mp4 = str(clips / "long.mp4")
    write_mp4(long_mp4, (frames * (int(2 * MAX_DURATION_S * 25 / len(frames)) + 1))[: int(2 * MAX_DURATION_S * 25)])
    out = {
        "frames": frames, "folder": str(folder), "mp4": mp4, "long_mp4": long_mp4,
        "cli_mp4": translate_json(model_dir, mp4),
        "cli_folder": translate_json(model_dir, str(folder)),
        "cli_clip": translate_json(model_dir, long_mp4, "--start", "1", "--end", "3.5"),
    }
    shutil.rmtree(data)
    shutil.rmtree(os.path.dirname(ckpt))
    moved = str(root / "elsewhere" / "model")  # a copy; the original is deleted too
    os.makedirs(os.path.dirname(moved))
    shutil.copytree(model_dir, moved)
    shutil.rmtree(model_dir)
    # the server, its temp files in a folder of its own (checked empty), output to files
    tmp = root / "server_tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TMPDIR=str(tmp))
    log_out, log_err = open(root / "server.out", "w+"), open(root / "server.err", "w+")
    proc = subprocess.Popen([*SERVE, moved, "--port", "0", "--cpu", "--max-upload-mb", str(MAX_UPLOAD_MB),
                             "--max-duration-s", str(MAX_DURATION_S), "--max-unzipped-mb", str(MAX_UNZIPPED_MB)],
                            cwd=str(root), env=env, stdout=log_out, stderr=log_err)
    try:
        deadline = time.time() + 180
        url = None
        while url is None:
            log_out.seek(0)
            m = re.search(r"at (http://127\.0\.0\.1:\d+/) ", log_out.read())
            if m:
                url = m.group(1)
            elif proc.poll() is not None or time.time() > deadline:
                log_err.seek(0)
                pytest.fail(f"flallm-serve did not start (exit {proc.poll()}):\n{log_err.read()[-3000:]}")
            else:
                time.sleep(0.2)
        out.update(url=url, tmp=tmp, root=root, proc=proc, log_err=log_err)
        yield out
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_out.close()
        log_err.close()


def assert_same(page, cli):
    assert page["translation"] == cli["translation"]
    assert [h["translation"] for h in page["nbest"]] == [h["translation"] for h in cli["nbest"]]
    assert [h["score"] for h in page["nbest"]] == pytest.approx([h["score"] for h in cli["nbest"]], abs=1e-5)
    assert page["frames"] == cli["frames"] > 0


def test_page_translation_equals_flallm_translate(served):
    url = served["url"]
    alive(url)
    with open(served["mp4"], "rb") as f:
        mp4 = f.read()
    status, r = post(url, "my clip.mp4", mp4)
    assert status == 200, r
    assert_same(r, served["cli_mp4"])
    assert r["input"] == "my clip.mp4" and len(r["nbest"]) == 5 and r["thumbnails"] == min(48, r["frames"])
    # a clip (start/end) of a video longer than the limit
    with open(served["long_mp4"], "rb") as f:
        status, r = post(url, "long.MOV.mp4", f.read(), start="1", end="3.5")
    assert status == 200, r
    assert_same(r, served["cli_clip"])
    # a zip of the frame folder (inside a folder, with macOS metadata) = the folder
    members = {f"clip/{name}": open(os.path.join(served["folder"], name), "rb").read()
               for name in os.listdir(served["folder"])}
    members["__MACOSX/clip/._x.png"] = b"\x00\x05\x16\x07"
    status, r = post(url, "frames.zip", make_zip(members))
    assert status == 200, r
    assert_same(r, served["cli_folder"])
    # the HTML page: the translation, the n-best, one thumbnail per frame read (as the model read them)
    name = "Gebärde <1>.mp4"  # UTF-8 and markup in the file name: shown as text
    status, page = post(url, name, mp4, as_json=False)
    assert status == 200
    from html import escape

    assert f"<h2>{escape(name)}</h2>" in page

    assert f'<p class="translation" id="translation">{escape(served["cli_mp4"]["translation"])}</p>' in page
    assert page.count("<tr><td>") == 5 and "reading and translating:" in page
    thumbs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(thumbs) == served["cli_mp4"]["frames"]
    import base64

    first = cv2.imdecode(np.frombuffer(base64.b64decode(thumbs[0]), np.uint8), cv2.IMREAD_COLOR_RGB)
    assert first.shape == (28, 28, 3)  # resized to 32, centre crop 28: the model's input
    assert not list(served["tmp"].iterdir()), "the server left temp files"


BAD = [
    # (file name, data, status, words of the one-line message)
    ("garbage.mp4", os.urandom(5000), 415, "garbage.mp4: not a readable video"),
    ("notes.txt", b"hello", 415, "notes.txt: not a video or a zip of frames"),
    ("empty.mp4", b"", 400, "empty.mp4: empty file"),
    ("big.mp4", os.urandom(int(1.5 * MAX_UPLOAD_MB * 2**20)), 413, "larger than the limit of 1 MB"),
    ("evil.zip", make_zip({"../evil.png": b"\x89PNG\r\n\x1a\n"}), 400, "member '../evil.png' points outside the zip"),
    ("abs.zip", make_zip({"/tmp/evil.png": b"\x89PNG\r\n\x1a\n"}), 400, "points outside the zip"),
    ("link.zip", make_zip([("frames/a.png", b"/etc/passwd", stat.S_IFLNK | 0o777)]), 400, "is a symbolic link"),
    ("text.zip", make_zip({"a.png": b"x" * 100, "b.txt": b"x"}), 415, "member 'b.txt' is not an image"),
    ("fake.zip", make_zip({"a.png": b"not a png at all"}), 415, "member 'a.png' is not an image file"),
    ("bomb.zip", make_zip({"a.png": b"\x89PNG\r\n\x1a\n" + bytes(2**20)}), 413, "uncompressed, the limit is 0.5 MB"),
    ("many.zip", make_zip({f"{i}.png": b"x" for i in range(MAX_DURATION_S * 25 + 1)}), 413, "151 images, the limit is 150"),
    ("notzip.zip", os.urandom(3000), 415, "notzip.zip: not a zip file"),
]


def test_bad_uploads_one_line_and_the_server_keeps_serving(served):
    url = served["url"]
    for name, data, status, words in BAD:
        got, r = post(url, name, data)
        assert got == status and words in r["error"] and "\n" not in r["error"], (name, got, r)
        alive(url)
    # the HTML answer: the message on the page, with the form
    got, page = post(url, "garbage.mp4", b"\x00" * 100, as_json=False)
    assert got == 415 and '<p class="error" id="error">garbage.mp4: not a readable video' in page and 'type="file"' in page
    # a clip longer than the limit; a clip with no frames (the reader's message, naming the upload)
    with open(served["long_mp4"], "rb") as f:
        long_mp4 = f.read()
    got, r = post(url, "long.mp4", long_mp4)
    assert got == 413 and "long.mp4: the clip is 12.0 s long, the limit is 6 s" in r["error"], r
    got, r = post(url, "long.mp4", long_mp4, start="1000")
    assert got == 400 and r["error"].startswith("long.mp4: no frames could be decoded between 1000.0 s"), r
    got, r = post(url, "long.mp4", long_mp4, start="abc")
    assert got == 400 and "start time 'abc' is not a number" in r["error"], r
    got, r = post(url, "clip.mp4", long_mp4, start="3", end="2")
    assert got == 400 and "must be after the start time" in r["error"], r
    assert not (served["root"] / "evil.png").exists() and not (served["tmp"].parent / "evil.png").exists()
    assert not list(served["tmp"].iterdir()), "the server left temp files"
    served["log_err"].seek(0)
    log = served["log_err"].read()
    assert "bad upload: evil.zip: refused: member '../evil.png'" in log and "Traceback" not in log, log[-3000:]


def test_concurrent_uploads_wait_in_the_queue(served):
    url = served["url"]
    with open(served["mp4"], "rb") as f:
        mp4 = f.read()
    results = [None] * 3

    def upload(i):
        results[i] = post(url, f"clip{i}.mp4", mp4)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for i, (status, r) in enumerate(results):
        assert status == 200 and r["input"] == f"clip{i}.mp4", r
        assert_same(r, served["cli_mp4"])
    # one at a time: the translations' time spans do not overlap
    spans = sorted((r["started"], r["finished"]) for _, r in results)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    alive(url)


def test_cli_errors_are_one_line(tmp_path):
    r = run([*SERVE, str(tmp_path / "nothing"), "--cpu"], check=False)
    lines = [x for x in r.stderr.splitlines() if x.startswith("flallm-serve")]
    assert r.returncode == 1 and lines == [
        f"flallm-serve: error: {tmp_path / 'nothing'}: not a model directory (no model.pt); write one with "
        "flallm-export --checkpoint CKPT --data DATA --out MODEL_DIR"], r.stderr
    r = run([*SERVE, str(tmp_path), "--max-upload-mb", "0"], check=False)
    assert r.returncode == 1 and "flallm-serve: error: --max-upload-mb must be > 0, got 0.0" in r.stderr
