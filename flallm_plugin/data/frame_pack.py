"""Packed frame store: one file per video of losslessly compressed frames (``.flpack``).

A data-loader worker reading PNG frame folders spends most of its time in PNG decoding (zlib inflate
and unfiltering, ~1 ms a 210 x 260 frame). A pack holds the same RGB pixels compressed with
Zstandard, one independent frame per blob, so that only the sampled frames are read and each
decompresses at memory speed; one file per video also replaces a folder of files (one open instead
of one per frame), as the LMDB stores of GFSLT-VLP and Uni-Sign do for a whole split.
``flallm-pack-frames`` writes them from any video data directory; the ``sign_translation`` task
reads them as it reads frame folders (a manifest row's ``video`` ending in ``.flpack``).

Layout (all integers little-endian)::

    bytes 0-7     b"FLPACK1\\n"
    4 x uint32    n_frames, height, width, channels (3: RGB)
    uint64 x (n_frames + 1)   byte offsets of the frames' blobs from the start of the file; the last
                              one is the file's size
    n_frames blobs            each a Zstandard frame (with its content checksum) of height x width x
                              channels uint8 pixels (RGB, row-major), the pixels a frame folder's image
                              decodes to

This is the project's own format (not a standard container).
"""
import os
import struct
from typing import Iterable, List, Sequence

import numpy as np
import zstandard

from flallm_plugin.data.atomic_file import atomic_path
from flallm_plugin.data.errors import SignDataError

PACK_EXTENSION = ".flpack"
MAGIC = b"FLPACK1\n"
HEADER = struct.Struct("<8s4I")
DEFAULT_LEVEL = 3  # zstd's default; decompression speed hardly depends on it
REWRITE = "rewrite it with flallm-pack-frames"


def write_frame_pack(path: str, frames: Iterable[np.ndarray], level: int = DEFAULT_LEVEL) -> int:
    """Write ``frames`` (H x W x 3 uint8 RGB arrays, all one size) to ``path`` through a temporary file
    renamed at the end; returns the number of frames."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)  # a damaged blob fails, never decodes
    blobs, shape = [], None
    for i, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{path}: frame {i} is {frame.dtype} {tuple(frame.shape)}, not H x W x 3 uint8 RGB")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ValueError(f"{path}: frame {i} is {frame.shape[1]} x {frame.shape[0]} px but frame 0 is "
                             f"{shape[1]} x {shape[0]}: a pack holds frames of one size")
        blobs.append(compressor.compress(np.ascontiguousarray(frame).tobytes()))
    if not blobs:
        raise ValueError(f"{path}: no frames to pack")
    start = HEADER.size + 8 * (len(blobs) + 1)
    offsets = np.cumsum([start] + [len(b) for b in blobs], dtype=np.uint64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(HEADER.pack(MAGIC, len(blobs), *shape))
        f.write(offsets.astype("<u8").tobytes())
        for b in blobs:
            f.write(b)
    return len(blobs)


def _read_index(f, path: str):
    """(n_frames, (height, width, channels), offsets) of an open pack, checked against its size."""
    head = f.read(HEADER.size)
    if len(head) < HEADER.size or head[:8] != MAGIC:
        raise SignDataError(f"{path}: not a frame pack (no {MAGIC[:-1].decode()} header): {REWRITE}")
    _, n, h, w, c = HEADER.unpack(head)
    table = f.read(8 * (n + 1))
    if n == 0 or len(table) < 8 * (n + 1) or c != 3:
        raise SignDataError(f"{path}: damaged frame pack header ({n} frames, {c} channels): {REWRITE}")
    offsets = np.frombuffer(table, dtype="<u8").astype(np.int64)
    size = os.fstat(f.fileno()).st_size
    if offsets[0] != HEADER.size + len(table) or offsets[-1] != size or np.any(np.diff(offsets) <= 0):
        raise SignDataError(f"{path}: truncated or damaged frame pack ({size} bytes, the index says "
                            f"{int(offsets[-1])}): {REWRITE}")
    return n, (h, w, c), offsets


def pack_frame_count(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return _read_index(f, path)[0]
    except FileNotFoundError:
        raise SignDataError(f"{path}: frame pack not found") from None


def read_frame_pack(path: str, indices: Sequence[int], n_frames: int = None) -> List[np.ndarray]:
    """Decode only ``indices`` (sorted) as H x W x 3 uint8 RGB arrays. ``n_frames``: the count the manifest
    declares; a pack holding another number is an error (a stale count would cut the video short)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise SignDataError(f"{path}: frame pack not found") from None
    with f:
        n, shape, offsets = _read_index(f, path)
        if n_frames is not None and n != n_frames:
            raise SignDataError(f"{path}: the pack holds {n} frames but the manifest says n_frames={n_frames} "
                                "(manifest out of date: rerun flallm-pack-frames, or fix n_frames)")
        if len(indices) and (indices[-1] >= n or indices[0] < 0):
            raise SignDataError(f"{path}: frame {indices[-1]} requested but the pack holds {n} frames "
                                "(manifest n_frames out of date?)")
        nbytes = shape[0] * shape[1] * shape[2]
        decompressor = zstandard.ZstdDecompressor()
        out = np.empty((len(indices),) + shape, dtype=np.uint8)
        for k, i in enumerate(indices):
            f.seek(int(offsets[i]))
            try:
                raw = decompressor.decompress(f.read(int(offsets[i + 1] - offsets[i])), max_output_size=nbytes)
            except zstandard.ZstdError as e:
                raise SignDataError(f"{path}: frame {i} does not decompress ({e}): {REWRITE}") from None
            if len(raw) != nbytes:
                raise SignDataError(f"{path}: frame {i} holds {len(raw)} bytes, not {nbytes}: {REWRITE}")
            out[k] = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
        return list(out)
