"""Safe checkpoint loading.

torch >= 2.6 loads with ``weights_only=True``: only tensors, containers and allowlisted
classes may be unpickled. fairseq checkpoints pickle a few more classes (the training
``argparse.Namespace`` above all); importing the plugin allowlists exactly those, and
nothing that can run code. A checkpoint whose pickle names anything else (``os.system``,
``builtins.eval``, ...) is refused.

``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns torch's *default* into ``weights_only=False``:
fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` calls ``torch.load`` without
``weights_only``, so under that variable it would unpickle anything. torch (2.6 to 2.14, read
in ``torch/serialization.py``: "can only override if callsite did not explicitly set
weights_only") never overrides an *explicit* ``weights_only=True``, which every load here
passes. So every file that fairseq loads is first read here with ``weights_only=True``
(:func:`check_checkpoint_file`): ``--path`` when the command line is parsed (:func:`check_path_option`,
which fairseq-validate needs) and at task setup, ``--finetune-from-model`` at task setup, the
checkpoint fairseq-train resumes from (``restore_file.py``), the stage-1 / mBART checkpoints
(:func:`load_fairseq_checkpoint`) and a model directory's ``model.pt`` (``hub.py``). A file
whose pickle is refused never reaches fairseq. fairseq's functions are not patched.
"""
import argparse
import os
import re
from typing import Optional

import numpy as np
import torch
from torch.serialization import add_safe_globals

# Exactly the classes a fairseq checkpoint pickles besides tensors and plain containers
# (torch allows those itself): the legacy ``args`` namespace, and the numpy arrays and
# scalars held by the saved metric meters (e.g. the BLEU n-gram counts) — data only:
# an array of Python objects would still go through this same restricted unpickler.
FAIRSEQ_CHECKPOINT_GLOBALS = [
    argparse.Namespace,
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
    np.dtypes.Int64DType,
    np.dtypes.Int32DType,
]

# Checkpoints written under numpy 1.x name the same two functions by their old module path.
NUMPY1_NAMES = [
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
]

add_safe_globals(FAIRSEQ_CHECKPOINT_GLOBALS + NUMPY1_NAMES)


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint whose pickle would import or call something outside the allowlist."""


def explain_load_error(path: str, e: Exception) -> Exception:
    """The error to raise for a checkpoint ``path`` that torch refused or could not read."""
    msg = str(e)
    if "Unsupported global" in msg or "GLOBAL" in msg:
        m = re.search(r"GLOBAL (\S+)", msg)
        detail = f"it imports {m.group(1)}" if m else msg.strip().splitlines()[-1]
        return UnsafeCheckpointError(
            f"{path}: refused to load: its pickle references code outside the allowlist "
            f"({', '.join(c.__module__ + '.' + c.__qualname__ for c in FAIRSEQ_CHECKPOINT_GLOBALS)} and "
            f"torch's own types); a checkpoint that would run code is never loaded. Details: {detail}"
        )
    m = re.search(r"WeightsUnpickler error:\s*(.+)", msg)
    detail = m.group(1).strip() if m else msg.strip().splitlines()[-1]
    return RuntimeError(f"{path}: cannot read checkpoint (corrupt, truncated or not a torch file): {detail}")


def safe_torch_load(path: str, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with a clear error for unsafe or broken files."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # re-raised with the file and the reason, never swallowed
        raise explain_load_error(path, e) from e


def upgrade_problem(path: str, state) -> Optional[Exception]:
    """The error fairseq's checkpoint upgrade (``checkpoint_utils._upgrade_state_dict``) would end in for
    ``state``, a dict that torch has read from ``path``, named; None if none is known."""
    if not isinstance(state, dict):
        return ValueError(f"{path}: not a fairseq checkpoint (the torch file holds a {type(state).__name__}, "
                          f"not a checkpoint dict)")
    history = state.get("optimizer_history")
    if "optimizer_history" in state and (not isinstance(history, list) or not history):
        return ValueError(
            f"{path}: checkpoint has an empty optimizer_history: fairseq cannot upgrade it (its checkpoint upgrade "
            f"reads the last entry, which every checkpoint fairseq-train saves has: criterion_name, "
            f"optimizer_name, lr_scheduler_state, num_updates). The file itself reads; it was written or edited "
            f"by something else: give its optimizer_history one such entry, or save it again from fairseq"
        )
    return None


def explain_upgrade_error(path: str, e: Exception) -> Exception:
    """The error to raise when fairseq's ``load_checkpoint_to_cpu`` failed on ``path``: a file torch
    cannot read (corrupt, truncated, unsafe) is explained as such; a file torch reads but fairseq cannot
    upgrade is named as a checkpoint fairseq cannot upgrade, with the entry that is missing."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        try:  # mmap needs the zip format; an older torch file may still read without it
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            return explain_load_error(path, e)
    known = upgrade_problem(path, state)
    if known is not None:
        return known
    if isinstance(e, KeyError):
        return ValueError(f"{path}: not a fairseq checkpoint (fairseq's checkpoint upgrade found no {e} entry)")
    return RuntimeError(
        f"{path}: fairseq cannot upgrade this checkpoint (the file reads; fairseq's checkpoint upgrade "
        f"failed: {type(e).__name__}: {e})"
    )


def check_checkpoint_file(path: str, what: Optional[str] = "checkpoint"):
    """Check that ``path`` is a readable, safe torch checkpoint that fairseq can upgrade, without reading
    its tensors (``mmap``): for the files fairseq itself will load later (``--path``, ``--finetune-from-model``,
    the checkpoint to resume from, a model directory's ``model.pt``), so a broken or unsafe one is
    named before anything runs, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says. Returns what it
    loaded (tensors memory-mapped for a zip-format file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: {what or 'checkpoint'} not found")
    prefix = f"{what}: " if what else ""  # the option that named the file, if any
    with open(path, "rb") as f:
        zip_format = f.read(4) == b"PK\x03\x04"  # torch's legacy format (before 1.6) cannot be mmapped
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zip_format)
    except Exception as e:  # re-raised with the file and the reason, never swallowed
        err = explain_load_error(path, e)
        raise type(err)(f"{prefix}{err}") from e
    err = upgrade_problem(path, state)
    if err is not None:
        raise type(err)(f"{prefix}{err}")
    return state


def check_path_option(value: str) -> str:
    """``argparse`` type of fairseq's ``--path`` (``a.pt:b.pt`` names an ensemble): each file checked by
    :func:`check_checkpoint_file` when the command line is parsed, the value returned unchanged. For
    ``fairseq-validate``, which loads ``--path`` (fairseq's ``torch.load``, no ``weights_only``) before it
    sets up any task: parsing is the first moment plugin code sees the path. argparse would turn a
    ValueError into "invalid value" and drop its message, so one is raised again as a RuntimeError."""
    from fairseq import utils

    for p in utils.split_paths(value):
        try:
            check_checkpoint_file(p, "--path")
        except ValueError as e:
            raise RuntimeError(str(e)) from e
    return value


def load_fairseq_checkpoint(path: str, arg_overrides=None):
    """fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` (``weights_only`` loading, old
    ``args`` upgraded to ``cfg``, ``arg_overrides`` applied to it), with errors that name the file."""
    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    # fairseq's torch.load passes no weights_only (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD would make it
    # unpickle anything): the file is read with an explicit weights_only=True first
    check_checkpoint_file(path, what=None)
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)
    except Exception as e:  # re-raised with the file and the reason (unreadable, or not upgradable), never swallowed
        raise explain_upgrade_error(path, e) from e
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state
