"""Write under a temporary name, then rename: a failed run never leaves a half-written output.

The one implementation of write-to-temp-then-rename: :func:`atomic_path` (a file or a directory
under a temporary name next to its target, renamed onto it when the block succeeds, removed when
it fails) and :func:`staged_output_dir` (files staged in a temporary directory, moved into an
output directory together at the end). ``out_dir.py`` builds the tools' output directories (a
marker, replacing only their own) on :func:`atomic_path`.
"""
import contextlib
import os
import shutil
import tempfile
from typing import Callable, Iterator, TextIO


def _temp_name(path: str) -> str:
    """A temporary name next to ``path`` (same file system, so the rename is atomic)."""
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.{os.getpid()}.tmp")


def _remove(path: str):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: str, tmp: str = None) -> Iterator[str]:
    """Yield a temporary name next to ``path`` (or ``tmp``, made by the caller); when the block succeeds
    it is renamed onto ``path`` (a file replaces a file; a directory goes onto a missing or empty one,
    never a full one), and when it fails it is removed and the error re-raised."""
    tmp = _temp_name(path) if tmp is None else tmp
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path: str, write_fn: Callable[[TextIO], None]):
    """Call ``write_fn(f)`` on a UTF-8 text file (``\\n`` line endings) that becomes ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write_fn(f)


def atomic_copy(src: str, dst: str):
    """Copy ``src`` to ``dst`` through a temporary name (nothing to do if they are the same file)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


@contextlib.contextmanager
def staged_output_dir(out_dir: str) -> Iterator[str]:
    """Yield an empty temporary directory next to ``out_dir``; when the block succeeds, its entries are
    moved into ``out_dir`` (created if needed; an entry of the same name there is replaced). A failed
    run leaves ``out_dir`` as it was."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            target = os.path.join(out_dir, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)  # os.replace cannot put a directory onto a full one
            os.replace(os.path.join(tmp, name), target)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
