"""Per-group peak learning rates that follow one shared schedule, for any fairseq optimizer.

Models tag parameters with ``p.param_group = "<name>"`` (``sign_mbart`` tags its LLM-Adapter
``adapter``, both models their visual encoder ``visual``); ``--group-lr '{"adapter": 1e-3}'`` gives
that group its own peak learning rate. Any fairseq ``--lr-scheduler`` drives the base ``--lr``; every
group keeps the ratio ``group_lr / lr`` at each step, so all follow the same (e.g. cosine) curve.
Untagged parameters use ``--lr``. Gradient clipping runs as multi-tensor operations where apex's
fused L2 norm is missing (:func:`~flallm_plugin.optim.foreach.foreach_clip_grad_norm_`).
"""
import json
import logging
from collections import OrderedDict
from typing import Dict, List

from fairseq import utils

from flallm_plugin.optim.foreach import foreach_clip_grad_norm_

logger = logging.getLogger(__name__)

GROUP_LR_HELP = ('JSON mapping of parameter group -> peak learning rate, e.g. \'{"adapter": 1e-3}\'; '
                 "parameters without a group (p.param_group) use --lr")


def parse_group_lr(spec: str) -> Dict[str, float]:
    try:
        group_lr = json.loads(spec or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"--group-lr must be a JSON object, got {spec!r}: {e}") from e
    if not isinstance(group_lr, dict):
        raise ValueError(f"--group-lr must be a JSON object, got {spec!r}")
    return group_lr


def build_param_groups(params, group_lr: Dict[str, float], base_lr: float) -> List[dict]:
    """torch param groups by ``p.param_group``, each with its peak ``lr`` and ``lr_scale = lr / base_lr``."""
    groups = OrderedDict([("default", [])])
    for p in params:
        groups.setdefault(getattr(p, "param_group", "default"), []).append(p)
    unknown = set(group_lr) - set(groups)
    if unknown:
        raise ValueError(
            f"--group-lr names groups with no parameters: {sorted(unknown)} (have {list(groups)}); "
            "with --fp16 add --fp16-no-flatten-grads so parameters keep their groups"
        )
    param_groups = []
    for name, ps in groups.items():
        if not ps:
            continue
        lr = float(group_lr.get(name, base_lr))
        param_groups.append({"params": ps, "lr": lr, "lr_scale": lr / base_lr, "group": name})
        logger.info(f"param group {name!r}: {sum(p.numel() for p in ps):,} parameters, peak lr {lr:g}")
    return param_groups


class GroupLearningRates(object):
    """Mixin for a fairseq optimizer built on :func:`build_param_groups`: the scheduler's lr is the
    base lr, each group follows it at its ``lr_scale``; clipping without apex as multi-tensor ops."""

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        if utils.multi_tensor_l2norm_available:
            return super().clip_grad_norm(max_norm, aggregate_norm_fn)
        return foreach_clip_grad_norm_(self.params, max_norm, aggregate_norm_fn)

    def get_lr(self):
        """The base learning rate (what the scheduler sets)."""
        g = self.param_groups[0]
        return g["lr"] / g.get("lr_scale", 1.0)

    def set_lr(self, lr):
        for g in self.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
