"""Adam with per-group learning rates that follow one shared schedule.

The paper fine-tunes mBART at lr 1e-5 and the LLM-Adapter at 1e-3, both with a cosine
schedule. Models tag parameters with ``p.param_group = "<name>"`` (``sign_mbart`` tags its
LLM-Adapter ``adapter``); ``--group-lr '{"adapter": 1e-3}'`` gives that group its own peak
learning rate. Any fairseq ``--lr-scheduler`` drives the base ``--lr``; every group keeps
the ratio ``group_lr / lr`` at each step, so both follow the same (e.g. cosine) curve.
Untagged parameters use ``--lr``. Works with fp32, ``--amp`` and
``--fp16 --fp16-no-flatten-grads`` (fairseq keeps ``param_group`` on the fp32 copies).

Without apex (where fairseq's ``adam`` loops over parameters in Python), the step and the
gradient clipping run as multi-tensor operations (:mod:`flallm_plugin.optim.foreach`): the same
arithmetic as ``--optimizer adam`` with far fewer kernels per update.
"""
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from fairseq import utils
from fairseq.optim import register_optimizer
from fairseq.optim.adam import Adam as FairseqAdamAlgorithm
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig

from flallm_plugin.optim.foreach import ForeachAdam, foreach_clip_grad_norm_

logger = logging.getLogger(__name__)


@dataclass
class ParamGroupAdamConfig(FairseqAdamConfig):
    group_lr: str = field(
        default="{}",
        metadata={
            "help": 'JSON mapping of parameter group -> peak learning rate, e.g. \'{"adapter": 1e-3}\'; '
            "parameters without a group (p.param_group) use --lr"
        },
    )


@register_optimizer("param_group_adam", dataclass=ParamGroupAdamConfig)
class ParamGroupAdam(FairseqAdam):
    def __init__(self, cfg: ParamGroupAdamConfig, params):
        try:
            group_lr = json.loads(cfg.group_lr or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"--group-lr must be a JSON object, got {cfg.group_lr!r}: {e}") from e
        base_lr = float(cfg.lr) if isinstance(cfg.lr, (int, float)) else float(cfg.lr[0])
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
        super().__init__(cfg, param_groups)
        if type(self._optimizer) is FairseqAdamAlgorithm and not getattr(cfg, "tpu", False):
            self._optimizer = ForeachAdam(param_groups, **self.optimizer_config)

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        """fairseq's clipping; without apex's fused L2 norm, as multi-tensor operations."""
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
