"""Reading sign videos: frame folders, video files, frame packs and cached feature arrays.

Only the frames that temporal sampling keeps are decoded. Frames come back as
RGB ``uint8`` arrays (H x W x 3); normalisation happens in the model, on its device.
"""
import math
import os
import re
from typing import List, Optional, Sequence

import cv2
import numpy as np

from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.frame_pack import PACK_EXTENSION, pack_frame_count, read_frame_pack

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
FEATURE_EXTENSIONS = (".npy",)

# decoding happens in data-loader workers: one OpenCV thread each avoids oversubscription
cv2.setNumThreads(1)


def natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def video_kind(path: str) -> str:
    """``frames`` (a folder), ``video`` (a video file), ``pack`` (a frame pack, :mod:`.frame_pack`) or
    ``features`` (a .npy array)."""
    if os.path.isdir(path):
        return "frames"
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext == PACK_EXTENSION:
        return "pack"
    if ext in FEATURE_EXTENSIONS:
        return "features"
    if not os.path.exists(path):
        raise SignDataError(f"{path}: no such frame folder or file")
    raise SignDataError(
        f"{path}: unsupported video source (a frame folder, {'/'.join(VIDEO_EXTENSIONS + (PACK_EXTENSION,))} "
        f"or {'/'.join(FEATURE_EXTENSIONS)} expected)"
    )


def list_frame_files(folder: str) -> List[str]:
    """Image files of a frame folder, sorted naturally (img2 before img10)."""
    if not os.path.isdir(folder):
        raise SignDataError(f"{folder}: frame folder not found")
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not names:
        raise SignDataError(f"{folder}: frame folder holds no images ({'/'.join(IMAGE_EXTENSIONS)})")
    names.sort(key=natural_key)
    return [os.path.join(folder, n) for n in names]


def _open_video(path: str):
    if not os.path.isfile(path):
        raise SignDataError(f"{path}: video file not found")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SignDataError(f"{path}: cannot open video (corrupt or unsupported codec)")
    return cap


def _clip_bounds(cap, start: Optional[float], end: Optional[float]):
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    first = int(round(start * fps)) if start is not None else 0
    last = int(round(end * fps)) if end is not None else None  # exclusive
    return first, last


def count_video_frames(path: str, start: Optional[float] = None, end: Optional[float] = None) -> int:
    """Number of decodable frames in ``[start, end)`` seconds (decodes the stream once).

    A stream that ends more than one frame before the frame count its container declares
    (``CAP_PROP_FRAME_COUNT``, where the clip reaches that far) is an error: a truncated or
    damaged file, which OpenCV otherwise decodes short without a word.
    """
    cap = _open_video(path)
    try:
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        first, last = _clip_bounds(cap, start, end)
        n = 0
        i = 0
        while last is None or i < last:
            if not cap.grab():
                break
            if i >= first:
                n += 1
            i += 1
    finally:
        cap.release()
    reach = declared if last is None else min(last, declared)
    if declared > 0 and i < reach - 1:
        raise SignDataError(
            f"{path}: the stream ends after {i} frames but the container declares {declared} "
            "(truncated or damaged file): copy or re-encode it again"
        )
    return n


def count_frames(path: str, start: Optional[float] = None, end: Optional[float] = None) -> int:
    kind = video_kind(path)
    if kind == "frames":
        return len(list_frame_files(path))
    if kind == "video":
        return count_video_frames(path, start, end)
    if kind == "pack":
        return pack_frame_count(path)
    return int(load_features(path).shape[0])


def sample_indices(n_frames: int, stride: int, phase: int = 0) -> np.ndarray:
    """Uniform temporal sampling: frames ``phase, phase + stride, ...`` (phase < stride).

    Every video keeps at least one frame, and the count never exceeds
    :func:`num_sampled` (the size used for batching).
    """
    if n_frames <= 0:
        raise SignDataError("video has no frames")
    phase = phase % stride
    if phase >= n_frames:
        phase = 0
    return np.arange(phase, n_frames, stride)


def num_sampled(n_frames: int, stride: int) -> int:
    """Upper bound of the sampled length for any phase (= the phase-0 length)."""
    return max(1, int(math.ceil(n_frames / stride)))


def read_image(path: str) -> np.ndarray:
    """An image file as RGB uint8 (decoded straight to RGB: the pixels of BGR + cvtColor, one pass less)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR_RGB)
    if img is None:
        raise SignDataError(f"{path}: cannot read image (missing, corrupt or not an image)")
    return img


def _check_n_frames(path: str, n_frames: int, declared: int, first: int, last: Optional[int],
                    start: Optional[float], end: Optional[float]):
    """The manifest's ``n_frames`` against what the file holds, from the container's frame count and the
    clip's bounds, without decoding. A file that decodes one frame fewer than it declares is normal (see
    :func:`count_video_frames`), so a count smaller by more than one is stale: it would cut the video short.
    A clip's bounds give its count exactly: a larger one would read past its end into the next sentence."""
    stale = "(manifest out of date: rerun the preprocessing script, or fix n_frames)"
    if start is None and end is None:
        if declared > 0 and n_frames < declared - 1:
            raise SignDataError(
                f"{path}: the video declares {declared} frames but the manifest says n_frames={n_frames} {stale}")
        return
    by_bounds = None if last is None else last - first
    by_container = declared - first if declared > 0 else None
    known = [c for c in (by_bounds, by_container) if c is not None]
    if not known:
        return
    holds = max(0, min(known))
    if (by_bounds is not None and n_frames > by_bounds) or (by_container is not None and n_frames < holds - 1):
        bounds = f"{start or 0:g} s to " + (f"{end:g} s" if end is not None else "the end")
        raise SignDataError(
            f"{path}: the clip from {bounds} holds {holds} frames but the manifest says n_frames={n_frames} {stale}")


def read_frames(
    path: str,
    indices: Sequence[int],
    start: Optional[float] = None,
    end: Optional[float] = None,
    n_frames: Optional[int] = None,
) -> List[np.ndarray]:
    """Decode only ``indices`` (sorted, relative to the clip start) as RGB uint8 arrays. ``n_frames``:
    the frame count the manifest declares; a frame folder holding another number of images, a whole
    video file whose container declares more frames, or a clip (start/end) whose bounds hold another
    number of frames, is an error (a stale count would silently cut the
    video short, or sample it with the wrong stride)."""
    kind = video_kind(path)
    if kind == "frames":
        files = list_frame_files(path)
        if n_frames is not None and len(files) != n_frames:
            raise SignDataError(
                f"{path}: the folder holds {len(files)} images but the manifest says n_frames={n_frames} "
                "(manifest out of date: rerun the preprocessing script, or fix n_frames)"
            )
        if len(indices) and indices[-1] >= len(files):
            raise SignDataError(
                f"{path}: frame {indices[-1]} requested but the folder holds {len(files)} images "
                "(manifest n_frames out of date?)"
            )
        return [read_image(files[i]) for i in indices]
    if kind == "pack":
        if start is not None or end is not None:
            raise SignDataError(f"{path}: start/end apply to video files; a frame pack holds only its clip's frames "
                                "(leave start and end empty for it)")
        return read_frame_pack(path, indices, n_frames)
    if kind != "video":
        raise SignDataError(f"{path}: cached features are not frames")
    cap = _open_video(path)
    frames: List[np.ndarray] = []
    try:
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        first, last = _clip_bounds(cap, start, end)
        if n_frames is not None:
            _check_n_frames(path, n_frames, declared, first, last, start, end)
        wanted = iter(indices)
        nxt = next(wanted, None)
        i = -first
        while nxt is not None:
            if not cap.grab():
                raise SignDataError(
                    f"{path}: stream ended at frame {max(i, 0)} but frame {nxt} was requested "
                    "(corrupt video, or manifest n_frames out of date)"
                )
            if i == nxt:
                ok, img = cap.retrieve()
                if not ok or img is None:
                    raise SignDataError(f"{path}: cannot decode frame {i}")
                frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                nxt = next(wanted, None)
            i += 1
    finally:
        cap.release()
    return frames


def load_features(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise SignDataError(f"{path}: feature file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise SignDataError(f"{path}: cannot load features: {e}") from e
    if arr.ndim != 2:
        raise SignDataError(f"{path}: features must be a 2-D (frames x dim) array, got shape {arr.shape}")
    return arr
