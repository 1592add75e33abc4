"""Write files under a temporary name and rename them: a failed run never leaves a half-written file."""
import os
import shutil
from typing import Callable, TextIO


def _temp_name(path: str) -> str:
    """A temporary name next to ``path`` (same file system, so the rename is atomic)."""
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.{os.getpid()}.tmp")


def atomic_write_text(path: str, write_fn: Callable[[TextIO], None]):
    """Call ``write_fn(f)`` on a UTF-8 text file (``\\n`` line endings) that becomes ``path``."""
    tmp = _temp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write_fn(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_copy(src: str, dst: str):
    """Copy ``src`` to ``dst`` through a temporary name (nothing to do if they are the same file)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    tmp = _temp_name(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
