"""What a training run did, read from its checkpoint (never from its log).

* ``updates``: ``optimizer_history[-1]["num_updates"]`` of the dev-selected checkpoint;
* ``epoch`` and ``dev_metric``: the epoch it was saved at and its validation metric
  (``extra_state``: the ``--best-checkpoint-metric`` value fairseq compared, dev BLEU here);
* ``trained_params``: the number of parameter elements the optimizer held state for
  (``last_optimizer_state``: Adam's ``exp_avg`` / SGD's ``momentum_buffer``). fairseq's trainer hands
  the optimizer exactly the parameters that require gradients, and the optimizer keeps state for those
  that received one: this is what the run trained.
"""
from typing import Dict

import torch

from flallm_plugin.checkpoint_safety import safe_torch_load


def trained_parameter_count(state: Dict, path: str) -> int:
    opt = state.get("last_optimizer_state")
    if not opt or "state" not in opt:
        raise ValueError(f"{path}: no optimizer state (saved with --no-save-optimizer-state?): "
                         "the trained parameters cannot be read from it")
    total = 0
    for idx, entry in opt["state"].items():
        # per-element state (Adam's exp_avg, SGD's momentum_buffer; 0-dim for a scalar parameter such as
        # the contrastive loss's logit scale), not the step counter
        sizes = [v.numel() for k, v in entry.items() if torch.is_tensor(v) and k != "step"]
        if not sizes:
            raise ValueError(f"{path}: optimizer state of parameter {idx} holds no per-element tensor "
                             "(SGD without momentum keeps none): use an optimizer with state (Adam, SGD --momentum)")
        total += max(sizes)
    return total


def saved_epoch(iterator: Dict) -> int:
    """The epoch a checkpoint was saved in: fairseq's iterator state names the *next* epoch
    (``iterations_in_epoch`` 0) when the save came at an epoch's end."""
    epoch = int(iterator.get("epoch", 0))
    return epoch - 1 if epoch > 0 and int(iterator.get("iterations_in_epoch", 0)) == 0 else epoch


def checkpoint_facts(path: str) -> Dict:
    state = safe_torch_load(path)
    extra = state.get("extra_state") or {}
    history = state.get("optimizer_history") or [{}]
    return {
        "checkpoint": path,
        "updates": int(history[-1].get("num_updates", 0)),
        "epoch": saved_epoch(extra.get("train_iterator") or {}),
        "dev_metric": float(extra["val_loss"]) if extra.get("val_loss") is not None else None,
        "trained_params": trained_parameter_count(state, path),
    }
