"""One training run per ``--save-dir``: an OS file lock on ``SAVE_DIR/.lock``.

Two fairseq-train runs on the same save dir overwrite each other's ``checkpoint_last.pt`` (and
resume from each other's). The task takes an exclusive ``fcntl.flock`` on ``SAVE_DIR/.lock`` and
writes its PID there before fairseq reads or writes any checkpoint (``build_model``); a second run
stops at once with one line naming the directory and the PID of the holder. The lock belongs to the
open file, so the OS releases it when the process ends in any way (``kill -9`` included): a
``.lock`` left behind by a dead run does not block. The file itself stays (removing it would let two
runs lock two different files of the same name).

Only the process of global rank 0 locks (the other processes of a multi-GPU or multi-node job
share its save dir), and only in a training run: ``fairseq-train`` creates the save dir before it
sets up the task, so a task built without an existing save dir (``fairseq-generate``, a model
built in Python) takes no lock.
"""
import fcntl
import os
from typing import Dict

LOCK_FILE = ".lock"

_held: Dict[str, int] = {}  # realpath of the save dir -> file descriptor, kept open while the process lives


class SaveDirInUseError(RuntimeError):
    """Another live process holds the save dir's lock."""


def lock_save_dir(save_dir: str) -> str:
    """Lock ``save_dir`` for this process (a no-op if it already holds it); returns the lock file's path."""
    key = os.path.realpath(save_dir)
    path = os.path.join(save_dir, LOCK_FILE)
    if key in _held:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise SaveDirInUseError(
            f"--save-dir {save_dir}: in use by another training run (PID {holder}, which holds {path}); "
            "wait for it to end, stop it, or choose another --save-dir"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    _held[key] = fd
    return path
