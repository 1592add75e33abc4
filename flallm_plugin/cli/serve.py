#!/usr/bin/env python
"""flallm-serve: translate a sign video in a browser, with a model directory (flallm-export).

    flallm-serve MODEL_DIR                      # then open http://127.0.0.1:8000/
    flallm-serve MODEL_DIR --port 0 --cpu       # any free port (printed)

A local web page: upload a video (mp4/avi/mkv/mov/webm) or a zip of frame images (png/jpg/bmp, one
folder), optionally a start and end time (seconds, videos), and see the translation, the n-best
with scores, a strip of the frames the model read (sampled, resized and centre-cropped by the
dataset's own reader) and the time taken. Translation is :class:`~flallm_plugin.hub.SignTranslator`'s
``translate_full`` with flallm-translate's defaults (beam 5), so the page gives flallm-translate's
output for the same file and options. Uploads are translated one at a time, in arrival order; a
second upload waits for the first.

Only the standard library: :class:`http.server.ThreadingHTTPServer` (a thread per connection), one
translation thread fed by a :class:`queue.Queue`, multipart forms parsed by :mod:`email.parser`.
Safety: binds to 127.0.0.1 unless ``--host``; requests over ``--max-upload-mb`` are refused (413);
a file must have a video or zip extension *and* content (OpenCV decodes a frame; zip members are
images); each upload lives in its own ``tempfile.mkdtemp`` directory (mode 0700), removed after
the request; zips are extracted member by member into that directory, refusing absolute paths,
``..``, symlinks, encrypted members, more images than ``--max-duration-s`` allows and more than
``--max-unzipped-mb`` uncompressed. A bad upload is answered with a 4xx page holding one line that
says what is wrong; the server keeps serving. ``Accept: application/json`` gives the result (or
``{"error": ...}``) as JSON. See docs/serve.md.
"""
import argparse
import base64
import email.parser
import email.policy
import html
import json
import logging
import os
import queue
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import cv2
import numpy as np

from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.video_io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

logger = logging.getLogger("flallm.serve")

ZIP_EXTENSIONS = (".zip",)
FRAME_ZIP_FPS = 25.0  # a zip of frames counts at this rate against --max-duration-s
FORM_OVERHEAD = 64 * 1024  # bytes of a multipart form besides the file
MAX_FIELD_BYTES = 1024  # start / end fields
DRAIN_FACTOR = 4  # an oversized body up to this many times the limit is read (and dropped) before the 413


class UploadError(Exception):
    """A request that cannot be translated: an HTTP status and one line for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Limits(object):
    max_upload_bytes: int
    max_duration_s: float
    max_unzipped_bytes: int

    @property
    def max_zip_images(self) -> int:
        return max(1, int(self.max_duration_s * FRAME_ZIP_FPS))


@dataclass
class Upload(object):
    """A saved, checked upload: ``path`` (a video file or a frame folder) inside ``tmp_dir``."""

    name: str  # the client's file name (display only)
    path: str
    kind: str  # video | frames
    fps: Optional[float] = None  # videos


def mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


# ----------------------------------------------------------------------- forms
def parse_form(content_type: str, body: bytes) -> Dict[str, Tuple[Optional[str], bytes]]:
    """A ``multipart/form-data`` body -> {field name: (file name or None, bytes)} (email.parser)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the form as multipart/form-data (the page's form does)")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart() or not msg.get_boundary():
        raise UploadError(HTTPStatus.BAD_REQUEST, "malformed form: no multipart boundary")
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def parse_seconds(fields, name: str) -> Optional[float]:
    raw = fields.get(name, (None, b""))[1]
    if len(raw) > MAX_FIELD_BYTES:
        raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: too long")
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UploadError(HTTPStatus.BAD_REQUEST, f"{name} time {text!r} is not a number of seconds") from None
    if not np.isfinite(value) or value < 0:
        raise UploadError(HTTPStatus.BAD_REQUEST, f"{name} time must be a number of seconds >= 0, got {text}")
    return value


# --------------------------------------------------------------------- uploads
def client_name(filename: Optional[str]) -> str:
    """The base name of the client's file name (some browsers send a whole Windows path)."""
    return os.path.basename((filename or "").replace("\\", "/")).strip()


def save_upload(filename: str, data: bytes, tmp_dir: str, limits: Limits, start=None, end=None) -> Upload:
    """Write and check one upload inside ``tmp_dir`` (extension and content); raises UploadError."""
    if not filename:
        raise UploadError(HTTPStatus.BAD_REQUEST, "no file: choose a video or a zip of frame images")
    ext = os.path.splitext(filename)[1].lower()
    if ext not in VIDEO_EXTENSIONS + ZIP_EXTENSIONS:
        raise UploadError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"{filename}: not a video or a zip of frames (give {'/'.join(VIDEO_EXTENSIONS + ZIP_EXTENSIONS)})",
        )
    if not data:
        raise UploadError(HTTPStatus.BAD_REQUEST, f"{filename}: empty file")
    if ext in ZIP_EXTENSIONS:
        if start is not None or end is not None:
            raise UploadError(HTTPStatus.BAD_REQUEST, f"{filename}: start/end apply to videos, not to a zip of frames")
        path = os.path.join(tmp_dir, "upload.zip")
        with open(path, "wb") as f:
            f.write(data)
        frames = extract_frames(path, filename, os.path.join(tmp_dir, "frames"), limits)
        os.remove(path)
        return Upload(filename, frames, "frames")
    path = os.path.join(tmp_dir, "upload" + ext)  # never the client's name
    with open(path, "wb") as f:
        f.write(data)
    fps = check_video(path, filename, limits, start, end)
    return Upload(filename, path, "video", fps)


def check_video(path: str, name: str, limits: Limits, start=None, end=None) -> float:
    """OpenCV opens the file and decodes a frame; the clip is at most ``max_duration_s`` long. -> fps"""
    if end is not None and end <= (start or 0):
        raise UploadError(HTTPStatus.BAD_REQUEST,
                          f"end time ({end:g} s) must be after the start time ({start or 0:g} s)")
    cap = cv2.VideoCapture(path)
    try:
        ok = cap.isOpened() and cap.read()[0]
        if not ok:
            raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                              f"{name}: not a readable video (OpenCV cannot decode a frame of it)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if declared > 0:
            length = declared / fps
        else:  # no frame count in the container: count, but no further than the limit allows
            n, cap_n = 1, int((start or 0) * fps + limits.max_duration_s * fps) + 2
            while n <= cap_n and cap.grab():
                n += 1
            length = n / fps
    finally:
        cap.release()
    clip = min(length, end if end is not None else length) - (start or 0)
    if clip > limits.max_duration_s:
        raise UploadError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{name}: the clip is {clip:.1f} s long, the limit is {limits.max_duration_s:g} s "
            "(give a start and end time, or restart the server with a larger --max-duration-s)",
        )
    return fps


def extract_frames(zip_path: str, name: str, out_dir: str, limits: Limits) -> str:
    """Extract the images of a zip (one folder of png/jpg/bmp) into ``out_dir``; every member is
    checked before anything is written, and only image files are written, by base name."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"{name}: not a zip file ({e})") from None
    with zf:
        images, folders, total = [], set(), 0
        for info in zf.infolist():
            member = info.filename
            parts = member.replace("\\", "/").split("/")
            if member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":") or ".." in parts:
                raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: refused: member {member!r} points outside the zip")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: refused: member {member!r} is a symbolic link")
            if info.flag_bits & 0x1:
                raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: member {member!r} is encrypted")
            if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
                continue  # folders, and the metadata macOS adds to zips
            if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
                raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                  f"{name}: member {member!r} is not an image ({'/'.join(IMAGE_EXTENSIONS)})")
            images.append(info)
            folders.add("/".join(parts[:-1]))
            total += info.file_size
        if not images:
            raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: the zip holds no images ({'/'.join(IMAGE_EXTENSIONS)})")
        if len(folders) > 1:
            raise UploadError(HTTPStatus.BAD_REQUEST,
                              f"{name}: images in {len(folders)} folders; zip one folder of frames")
        if len(images) > limits.max_zip_images:
            raise UploadError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{name}: {len(images)} images, the limit is {limits.max_zip_images} "
                f"({limits.max_duration_s:g} s at {FRAME_ZIP_FPS:g} frames per second; --max-duration-s)",
            )
        if total > limits.max_unzipped_bytes:
            raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"{name}: {mb(total)} uncompressed, the limit is {mb(limits.max_unzipped_bytes)} "
                              "(--max-unzipped-mb)")
        os.mkdir(out_dir, 0o700)
        written = 0
        for info in images:
            base = info.filename.replace("\\", "/").split("/")[-1]
            target = os.path.join(out_dir, base)
            # O_EXCL: a zip may hold one name twice; O_NOFOLLOW: never through a link
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as dst:
                try:
                    with zf.open(info) as src:
                        while True:
                            chunk = src.read(1 << 20)
                            if not chunk:
                                break
                            written += len(chunk)
                            if written > limits.max_unzipped_bytes:  # whatever the headers declared
                                raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                                  f"{name}: more than {mb(limits.max_unzipped_bytes)} uncompressed")
                            dst.write(chunk)
                except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError) as e:
                    raise UploadError(HTTPStatus.BAD_REQUEST, f"{name}: cannot extract {info.filename!r}: {e}") from None
            if not cv2.haveImageReader(target):  # the file's signature, not its name
                raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                  f"{name}: member {info.filename!r} is not an image file")
    return out_dir


# ------------------------------------------------------------------ the queue
class _Job(object):
    def __init__(self, fn: Callable):
        self.fn = fn
        self.done = threading.Event()
        self.result = None
        self.error: Optional[BaseException] = None
        self.queued = time.perf_counter()
        self.started: Optional[float] = None


class TranslationQueue(object):
    """One thread runs the jobs, in arrival order; ``run`` waits for its job's turn and result."""

    def __init__(self):
        self._jobs: "queue.Queue[_Job]" = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="flallm-serve-translate", daemon=True)
        self._thread.start()

    def _work(self):
        while True:
            job = self._jobs.get()
            job.started = time.perf_counter()
            try:
                job.result = job.fn()
            except BaseException as e:  # handed to the waiting request, which reports it
                job.error = e
            finally:
                job.done.set()

    def waiting(self) -> int:
        return self._jobs.qsize()

    def run(self, fn: Callable):
        """-> (fn's result, seconds waited in the queue); re-raises fn's exception."""
        job = _Job(fn)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result, job.started - job.queued


# ------------------------------------------------------------------------ html
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flallm: translate a sign video</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; }} .model {{ color: #666; font-size: .9rem; }}
form {{ border: 1px solid #ccc; border-radius: 6px; padding: 1rem; margin: 1rem 0; }}
label {{ margin-right: 1rem; }} input[type=number] {{ width: 6rem; }}
.error {{ background: #fde8e8; border: 1px solid #e0a0a0; padding: .6rem; border-radius: 4px; }}
.translation {{ font-size: 1.3rem; background: #eef6ee; padding: .6rem; border-radius: 4px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: .2rem .6rem; text-align: left; }}
.strip {{ display: flex; flex-wrap: wrap; gap: 2px; }} .strip img {{ image-rendering: pixelated; height: 64px; }}
.small {{ color: #666; font-size: .85rem; }}
</style></head><body>
<h1>Translate a sign-language video</h1>
<p class="model">model: {model}</p>
<form method="post" action="/translate" enctype="multipart/form-data" id="form">
<p><input type="file" name="video" id="video" required accept="{accept}"></p>
<p><label>start (s) <input type="number" name="start" min="0" step="any"></label>
<label>end (s) <input type="number" name="end" min="0" step="any"></label>
<input type="submit" value="Translate"> <span id="status"></span></p>
<p class="small">A video ({videos}) or a zip of one folder of frames ({images}); at most {max_upload} and
{max_duration:g} s. Uploads are translated one at a time: if one is running, yours waits.</p>
</form>
<script>
document.getElementById("form").addEventListener("submit", function (e) {{
  var f = document.getElementById("video").files[0];
  if (f && f.size > {max_upload_bytes}) {{
    e.preventDefault();
    document.getElementById("status").textContent = f.name + " is larger than {max_upload}";
  }} else {{
    document.getElementById("status").textContent = "uploading and translating\\u2026";
  }}
}});
</script>
{body}
</body></html>
"""


def render_result(r: dict, thumbs: List[Tuple[str, str]]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{i + 1}</td><td>{h['score']:.4f}</td><td>{e(h['translation'])}</td></tr>"
                   for i, h in enumerate(r["nbest"]))
    imgs = "".join(f'<img src="{src}" title="{e(title)}" alt="{e(title)}">' for src, title in thumbs)
    clip = ""
    if r.get("start") is not None or r.get("end") is not None:
        clip = f", clip {r['start'] or 0:g} s to {'the end' if r.get('end') is None else format(r['end'], 'g') + ' s'}"
    return f"""<h2>{e(r['input'])}{e(clip)}</h2>
<p class="translation" id="translation">{e(r['translation'])}</p>
<h3>n-best</h3>
<table id="nbest"><tr><th>#</th><th>score</th><th>translation</th></tr>{rows}</table>
<p class="small">score: fairseq's length-normalised log-probability (natural log); beam {r['beam']}.</p>
<h3>The frames the model read</h3>
<p class="small">{len(thumbs)} of {r['frames']} frames ({r['stride_note']}, resized and centre-cropped to
{r['crop']}&times;{r['crop']} px as the model reads them)</p>
<div class="strip">{imgs}</div>
<p class="small" id="time">reading and translating: {r['seconds']:.2f} s; waited for other uploads:
{r['wait_seconds']:.2f} s; whole request: {r['total_seconds']:.2f} s</p>"""


def thumbnails(clip: np.ndarray, limit: int, stride: int, fps: Optional[float], start: Optional[float]):
    """Up to ``limit`` evenly spaced frames of the clip the model read, as (PNG data URI, title)."""
    if clip is None or len(clip) == 0 or limit <= 0:
        return []
    picks = np.unique(np.linspace(0, len(clip) - 1, num=min(limit, len(clip))).round().astype(int))
    out = []
    for k in picks:
        ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(clip[k]), cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("OpenCV cannot encode a PNG thumbnail")
        frame = int(k) * stride
        title = f"frame {frame}" + (f" ({(start or 0) + frame / fps:.2f} s)" if fps else "")
        out.append(("data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii"), title))
    return out


# ---------------------------------------------------------------------- server
class App(object):
    """What the request handlers share: the translator, the queue, the limits and options."""

    def __init__(self, translator, model_dir: str, limits: Limits, beam: int = 5, nbest: int = 5,
                 max_thumbnails: int = 48):
        if nbest < 1 or nbest > beam:
            raise ValueError(f"--nbest must be between 1 and --beam ({beam}), got {nbest}")
        self.translator, self.model_dir, self.limits = translator, model_dir, limits
        self.beam, self.nbest, self.max_thumbnails = beam, nbest, max_thumbnails
        self.queue = TranslationQueue()

    def page(self, body: str = "") -> bytes:
        return PAGE.format(
            model=html.escape(os.path.abspath(self.model_dir)), accept=",".join(VIDEO_EXTENSIONS + ZIP_EXTENSIONS),
            videos="/".join(e.lstrip(".") for e in VIDEO_EXTENSIONS),
            images="/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS), max_upload=mb(self.limits.max_upload_bytes),
            max_upload_bytes=self.limits.max_upload_bytes, max_duration=self.limits.max_duration_s, body=body,
        ).encode("utf-8")

    def translate(self, upload: Upload, start, end) -> dict:
        """In the queue's thread: flallm-translate's decoding of one upload (and the frames read)."""
        t, started = self.translator, time.time()
        try:
            res = t.translate_full(upload.path, beam=self.beam, nbest=self.nbest, start=start, end=end,
                                   batch_size=1, lenpen=1.0, max_len_a=0, max_len_b=200, keep_clips=True)[0]
        except SignDataError as e:  # the reader's message names our temp path: name the client's file
            raise UploadError(HTTPStatus.BAD_REQUEST, str(e).replace(upload.path, upload.name).splitlines()[0]) from e
        stride = t.task.stride
        data_cfg = t.data_cfg
        return {
            "input": upload.name, "start": start, "end": end, "translation": res.translation,
            "nbest": [{"translation": x, "score": round(s, 6)} for x, s in res.nbest], "frames": res.frames,
            "seconds": round(res.seconds, 4), "beam": self.beam, "crop": data_cfg.crop,
            "stride_note": "every frame" if stride == 1 else f"every {stride}th frame of the clip",
            "thumbnails": thumbnails(res.clip, self.max_thumbnails, stride, upload.fps, start),
            "started": started, "finished": time.time(),  # Unix times: translations never overlap
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "flallm-serve"
    protocol_version = "HTTP/1.1"
    timeout = 300  # seconds a connection may stall (reading the request) before it is closed
    app: App  # set on the subclass made by make_server

    def log_message(self, fmt, *args):
        logger.info("%s %s", self.address_string(), fmt % args)

    def _wants_json(self) -> bool:
        return "application/json" in self.headers.get("Accept", "")

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                         "script-src 'unsafe-inline'; form-action 'self'")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, status: int, message: str, close: bool = False):
        if self._wants_json():
            self._send(status, json.dumps({"error": message}).encode("utf-8"), "application/json", close)
        else:
            body = f'<p class="error" id="error">{html.escape(message)}</p>'
            self._send(status, self.app.page(body), "text/html; charset=utf-8", close)

    def do_GET(self):
        if urlsplit(self.path).path != "/":
            self._send_error(HTTPStatus.NOT_FOUND, f"{urlsplit(self.path).path}: no such page (the page is /)")
            return
        self._send(HTTPStatus.OK, self.app.page(), "text/html; charset=utf-8")

    do_HEAD = do_GET

    def do_POST(self):
        t0 = time.perf_counter()
        if urlsplit(self.path).path != "/translate":
            self._send_error(HTTPStatus.NOT_FOUND, f"{urlsplit(self.path).path}: no such page (post to /translate)",
                             close=True)
            return
        # the upload's temp directory is removed before anything is answered
        error, tmp_dir = None, None
        try:
            body = self._read_body()
            tmp_dir = tempfile.mkdtemp(prefix="flallm-serve-")  # mode 0700
            r = self._translate(body, tmp_dir)
        except UploadError as e:
            logger.warning("bad upload: %s", e)
            error = (e.status, str(e))
        except Exception as e:  # a bug, not a bad upload: the traceback to the log, one line to the page
            logger.error("translating an upload failed:\n%s", traceback.format_exc())
            line = str(e).splitlines()[0] if str(e) else ""
            error = (HTTPStatus.INTERNAL_SERVER_ERROR,
                     f"internal error: {type(e).__name__}: {line} (the traceback is in the server's log)")
        finally:
            if tmp_dir is not None:
                shutil.rmtree(tmp_dir)
        if error is not None:
            self._send_error(*error, close=error[0] == HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        r["total_seconds"] = round(time.perf_counter() - t0, 4)
        logger.info("translated %s (%d frames) in %.2f s: %s", r["input"], r["frames"], r["total_seconds"],
                    r["translation"])
        thumbs = r.pop("thumbnails")
        if self._wants_json():
            r["thumbnails"] = len(thumbs)
            self._send(HTTPStatus.OK, json.dumps(r, ensure_ascii=False).encode("utf-8"), "application/json")
        else:
            self._send(HTTPStatus.OK, self.app.page(render_result(r, thumbs)), "text/html; charset=utf-8")

    def _read_body(self) -> bytes:
        limit = self.app.limits.max_upload_bytes + FORM_OVERHEAD
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise UploadError(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length (send the page's form)")
        length = int(length)
        if length > limit:
            if length <= DRAIN_FACTOR * limit:  # read it, so that the client sees the answer, not a reset
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"upload of {mb(length)} is larger than the limit of {mb(self.app.limits.max_upload_bytes)}"
                              " (--max-upload-mb)")
        body = self.rfile.read(length)
        if len(body) < length:
            raise UploadError(HTTPStatus.BAD_REQUEST, "the upload was cut off; try again")
        return body

    def _translate(self, body: bytes, tmp_dir: str) -> dict:
        fields = parse_form(self.headers.get("Content-Type", ""), body)
        del body
        if "video" not in fields:
            raise UploadError(HTTPStatus.BAD_REQUEST, "no file: choose a video or a zip of frame images")
        filename, data = fields["video"]
        start, end = parse_seconds(fields, "start"), parse_seconds(fields, "end")
        upload = save_upload(client_name(filename), data, tmp_dir, self.app.limits, start, end)
        del data, fields
        r, waited = self.app.queue.run(lambda: self.app.translate(upload, start, end))
        r["wait_seconds"] = round(waited, 4)
        return r


def make_server(app: App, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A threading HTTP server for ``app`` (port 0: any free port; ``server.server_address[1]``)."""
    handler = type("FlallmHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


# ------------------------------------------------------------------------- cli
def get_parser():
    p = argparse.ArgumentParser(prog="flallm-serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="MODEL_DIR", help="model directory written by flallm-export")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 = every network)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port; the address is printed)")
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="largest upload accepted, MB (default 100)")
    p.add_argument("--max-duration-s", type=float, default=120.0,
                   help=f"longest clip accepted, seconds (default 120; a zip of frames counts at {FRAME_ZIP_FPS:g} fps)")
    p.add_argument("--max-unzipped-mb", type=float, default=1024.0,
                   help="most bytes a zip of frames may expand to, MB (default 1024)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default 5, as flallm-translate)")
    p.add_argument("--nbest", type=int, default=5, help="hypotheses shown (default 5, at most --beam)")
    p.add_argument("--thumbnails", type=int, default=48, help="most frames shown in the strip (default 48)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--fp16", action="store_true", help="half precision (GPU)")
    return p


def serve(args) -> int:
    for name in ("max_upload_mb", "max_duration_s", "max_unzipped_mb"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    limits = Limits(int(args.max_upload_mb * 2**20), float(args.max_duration_s), int(args.max_unzipped_mb * 2**20))
    from flallm_plugin.hub import SignTranslator

    translator = SignTranslator.from_pretrained(args.model_dir, cpu=args.cpu, fp16=args.fp16)
    app = App(translator, args.model_dir, limits, beam=args.beam, nbest=args.nbest, max_thumbnails=args.thumbnails)
    server = make_server(app, args.host, args.port)
    host, port = server.server_address[:2]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: anyone who can reach this machine can upload videos", args.host)
    print(f"flallm-serve: serving {os.path.abspath(args.model_dir)} at http://{host}:{port}/ (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("flallm-serve: stopped", flush=True)
    finally:
        server.server_close()
    return 0


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO,
                        stream=sys.stderr, force=True)
    logging.getLogger("fairseq").setLevel(logging.WARNING)
    logging.getLogger("flallm_plugin").setLevel(logging.WARNING)
    args = get_parser().parse_args(argv)
    from flallm_plugin.checkpoint_safety import UnsafeCheckpointError

    try:
        sys.exit(serve(args))
    except (SignDataError, FileNotFoundError, ValueError, UnsafeCheckpointError, OSError) as e:
        for line in str(e).splitlines():
            print(f"flallm-serve: error: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli_main()
