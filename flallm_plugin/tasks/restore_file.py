"""The checkpoint fairseq-train is about to resume from, checked before fairseq reads it.

fairseq writes the first checkpoint of a save atomically and then *copies* it to the other names
(``checkpoint_last.pt``, ``checkpoint_best.pt``); a kill during a copy leaves a truncated file,
on which torch's reader fails without naming it. :func:`check_restore_file` runs from the task's
``build_model``, before ``checkpoint_utils.load_checkpoint``: a truncated ``checkpoint_last.pt``
is moved aside and replaced by the newest intact checkpoint of the save dir (the one the copy
came from), so that the same command resumes; a truncated ``--restore-file`` stops the run with
the file and the option that resumes. An intact one is read once with ``weights_only=True``
(whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says): one whose pickle would run code stops the run.
"""
import glob
import logging
import os
import shlex
import sys
import zipfile
from typing import Optional

from flallm_plugin.data.atomic_file import atomic_copy

logger = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6


class CorruptCheckpointError(RuntimeError):
    pass


def checkpoint_problem(path: str) -> Optional[str]:
    """None if ``path`` is a complete torch zip checkpoint, else what is wrong with it. The zip
    directory is written last, so a file cut anywhere has none. Files in torch's legacy (non-zip)
    format are left to torch."""
    size = os.path.getsize(path)
    if size == 0:
        return "empty file"
    with open(path, "rb") as f:
        if f.read(4) != ZIP_MAGIC:
            return None
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        return f"truncated ({size:,} bytes, no zip directory at the end: {e})"
    if not any(n.endswith("data.pkl") for n in names):
        return "not a torch checkpoint (no data.pkl in the archive)"
    return None


def newest_intact(save_dir: str, suffix: str = "", exclude: str = "") -> Optional[str]:
    """The most recently written intact ``checkpoint*{suffix}.pt`` of ``save_dir``."""
    paths = [p for p in glob.glob(os.path.join(glob.escape(save_dir), f"checkpoint*{suffix}.pt"))
             if os.path.abspath(p) != os.path.abspath(exclude) and os.path.isfile(p)]
    for p in sorted(paths, key=os.path.getmtime, reverse=True):
        if checkpoint_problem(p) is None:
            return p
    return None


def resume_command(restore_file: str) -> str:
    argv = list(sys.argv)
    for i, a in enumerate(argv[:-1]):
        if a == "--restore-file":
            del argv[i:i + 2]
            break
    argv = [a for a in argv if not a.startswith("--restore-file=")]
    return shlex.join([os.path.basename(argv[0])] + argv[1:] + ["--restore-file", restore_file])


def check_safe(path: str):
    """fairseq's loader passes no ``weights_only`` (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` would make it
    unpickle anything): the file is read with ``weights_only=True`` before it (checkpoint_safety.py)."""
    from flallm_plugin.checkpoint_safety import check_checkpoint_file

    return check_checkpoint_file(path, "checkpoint to resume from (--save-dir / --restore-file)")


def check_restore_file(save_dir: str, restore_file: str, suffix: str = ""):
    """Check the checkpoint ``fairseq.checkpoint_utils.load_checkpoint`` will load for these
    ``--save-dir`` / ``--restore-file`` / ``--checkpoint-suffix``; returns ``(path, what it holds)``
    (loaded with ``weights_only=True``), or None if there is none."""
    default = restore_file == "checkpoint_last.pt"
    if default:
        path = os.path.join(save_dir, f"checkpoint_last{suffix}.pt")
    else:
        path = restore_file.replace(".pt", suffix + ".pt") if suffix else restore_file
    if not os.path.isfile(path):
        return None
    problem = checkpoint_problem(path)
    if problem is None:
        return path, check_safe(path)
    intact = newest_intact(save_dir, suffix, exclude=path)
    if default and intact is not None:
        aside = path + ".corrupt"
        os.replace(path, aside)
        atomic_copy(intact, path)
        logger.warning(
            f"{path}: {problem} (a kill while fairseq copied it?); moved to {aside}; "
            f"resuming from the newest intact checkpoint {intact} (copied to {path})"
        )
        return path, check_safe(path)
    if intact is not None:
        raise CorruptCheckpointError(f"{path}: {problem}; to resume from the newest intact checkpoint "
                                     f"run: {resume_command(intact)}")
    raise CorruptCheckpointError(f"{path}: {problem}; no intact checkpoint in {save_dir}: "
                                 f"delete {path} to train from scratch")
