"""Output directories that a tool may replace: only its own, never one holding what it reads.

``flallm-extract-features --overwrite`` and ``flallm-export`` write a directory under a temporary
name next to the output and rename it into place. Each leaves a marker file in what it writes
(``.flallm-extract-features``, ``.flallm-export``); an existing output directory is replaced only if

* it carries the tool's marker (it was written by the same tool, not a release or a save dir), and
* it neither is nor contains any of the run's inputs (data directory, video root, the videos of
  the manifests, dictionary, sentencepiece model, checkpoint): deleting it would destroy them.

(Files are written to a temporary name and renamed by :mod:`flallm_plugin.data.atomic_file`, which
``flallm-export`` uses for its directory too; :func:`publish_dir` is the one rename that replaces a
full directory.) The checks compare both the paths as given and with symlinks resolved. Orphan temporary
directories of an interrupted run (their process gone, the marker inside) are removed by the
next run of the same tool on the same output.

The preprocessors (``preprocess/prep_*.py --out-dir``) write a few named files into a directory that
may hold others: they write all of them into such a temporary directory and move them into place at
the end (:func:`publish_files`), replacing only the files of those names.
"""
import contextlib
import glob
import logging
import os
import shutil
import uuid
from typing import Iterable, Iterator, List, Optional, Tuple

logger = logging.getLogger(__name__)


def marker_name(tool: str) -> str:
    return f".{tool}"


def _forms(path: str) -> List[str]:
    """The path as given (absolute) and with symlinks resolved."""
    return list({os.path.abspath(path), os.path.realpath(path)})


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def input_under(out_dir: str, inputs: Iterable[Tuple[Optional[str], str]]) -> Optional[Tuple[str, str]]:
    """The first ``(path, what)`` of ``inputs`` whose path ``out_dir`` is, or holds (as given or with
    symlinks resolved)."""
    outs = _forms(out_dir)
    for p, what in inputs:
        if not p:
            continue
        for form in _forms(p):
            if any(_inside(form, o) for o in outs):
                return p, what
    return None


def check_out_dir(out_dir: str, inputs: Iterable[Tuple[Optional[str], str]], tool: str, option: str,
                  overwrite: bool):
    """Refuse an ``out_dir`` that is or holds one of ``inputs`` (``(path, what it is)``); a non-empty one
    without ``overwrite``; and, with ``overwrite``, one that ``tool`` did not write (no marker)."""
    held = input_under(out_dir, inputs)
    if held is not None:
        raise ValueError(
            f"{option} {out_dir}: is or holds {held[1]} {held[0]}, which this run reads; replacing it would "
            "destroy it: choose another directory"
        )
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"{option} {out_dir}: exists and is not a directory")
    if not os.path.isdir(out_dir) or not os.listdir(out_dir):
        return
    if not overwrite:
        raise ValueError(
            f"{option} {out_dir}: not empty; pass --overwrite to replace it (whole, once {tool} has "
            "succeeded) or choose a new directory"
        )
    if not os.path.isfile(os.path.join(out_dir, marker_name(tool))):
        raise ValueError(
            f"{option} {out_dir}: not written by {tool} (no {marker_name(tool)} file in it), so --overwrite "
            "will not delete it: remove it yourself if it is yours, or choose another directory"
        )


def temp_prefix(out_dir: str) -> str:
    parent, name = os.path.split(os.path.abspath(out_dir))
    return os.path.join(parent, f".{name}.")


def make_temp_dir(out_dir: str, tool: str) -> str:
    """A new directory next to ``out_dir`` (same file system: renamed into place at the end), with
    ``tool``'s marker in it. Never an existing path: created with ``mkdir``, a unique name."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{temp_prefix(out_dir)}{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    os.mkdir(tmp)  # mode 0777 & ~umask, as any directory the user creates; fails if it exists
    with open(os.path.join(tmp, marker_name(tool)), "w", encoding="utf-8") as f:
        f.write(f"written by {tool}; its --overwrite may replace this directory\n")
    return tmp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphan_temp_dirs(out_dir: str, tool: str) -> List[str]:
    """Remove the temporary directories a killed run of ``tool`` left next to ``out_dir``: named
    ``.{name}.{pid}.{hex}.tmp`` (or ``...tmp.old``), holding ``tool``'s marker, their process gone."""
    removed = []
    prefix = temp_prefix(out_dir)
    for path in glob.glob(glob.escape(prefix) + "*.tmp") + glob.glob(glob.escape(prefix) + "*.tmp.old"):
        parts = path[len(prefix):].split(".")
        if len(parts) < 3 or not parts[0].isdigit() or not os.path.isdir(path) or os.path.islink(path):
            continue
        if int(parts[0]) == os.getpid() or _pid_alive(int(parts[0])):
            continue
        if not os.path.isfile(os.path.join(path, marker_name(tool))):
            continue
        shutil.rmtree(path)
        logger.warning(f"{path}: removed the temporary directory of an interrupted {tool} run")
        removed.append(path)
    return removed


def publish_dir(tmp: str, out_dir: str):
    """Rename the finished ``tmp`` to ``out_dir``; an existing ``out_dir`` (checked by
    :func:`check_out_dir`) is moved aside first, then deleted, so ``out_dir`` is at every moment
    either the old or the new directory (or, between the two renames, absent)."""
    out_dir = os.path.abspath(out_dir)
    old = None
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        old = tmp + ".old"
        os.rename(out_dir, old)
    try:
        os.replace(tmp, out_dir)  # onto a missing or empty directory
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)  # the old directory back in place
        raise
    if old is not None:
        shutil.rmtree(old)


@contextlib.contextmanager
def staged_dir(out_dir: str, tool: str) -> Iterator[str]:
    """Yield a new temporary directory next to ``out_dir`` holding ``tool``'s marker (the temporary directories
    of killed runs of ``tool`` removed first); when the block succeeds it replaces ``out_dir`` whole
    (:func:`publish_dir`), when it fails it is removed and the error goes on. Check ``out_dir`` first
    (:func:`check_out_dir`)."""
    remove_orphan_temp_dirs(out_dir, tool)
    tmp = make_temp_dir(out_dir, tool)
    try:
        yield tmp
        publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_files(tmp: str, out_dir: str, tool: str):
    """Move every file of the finished ``tmp`` (but ``tool``'s marker) into ``out_dir`` (created if missing),
    each by one rename that replaces the file of that name, then remove ``tmp``; the other entries of
    ``out_dir`` stay. Everything was written before the first rename, so a run that fails or is killed
    earlier leaves the files of ``out_dir`` as they were (a kill between these few renames may leave some
    replaced). A name that is a directory in ``out_dir`` is refused before any rename."""
    names = sorted(n for n in os.listdir(tmp) if n != marker_name(tool))
    for n in names:
        dst = os.path.join(out_dir, n)
        if os.path.isdir(dst) and not os.path.islink(dst):
            raise ValueError(f"{dst}: is a directory, where {tool} writes a file of that name: move it away")
    os.makedirs(out_dir, exist_ok=True)
    for n in names:
        os.replace(os.path.join(tmp, n), os.path.join(out_dir, n))
    shutil.rmtree(tmp)
