"""Adam with per-group learning rates that follow one shared schedule (:mod:`~flallm_plugin.optim.param_groups`).

The paper fine-tunes mBART at lr 1e-5 and the LLM-Adapter at 1e-3, both with a cosine
schedule: ``--optimizer param_group_adam --lr 1e-5 --group-lr '{"adapter": 1e-3}'``. Works with
fp32, ``--amp`` and ``--fp16 --fp16-no-flatten-grads`` (fairseq keeps ``param_group`` on the fp32 copies).

Without apex (where fairseq's ``adam`` loops over parameters in Python), the step is fairseq's Adam formula
on torch's fused kernel, and the Trainer's gradient multiply and clipping are folded into it
(:mod:`flallm_plugin.optim.fused`): one pass over the parameters after the backward instead of five, one
kernel per chunk on a GPU instead of seven per parameter. ``--use-old-adam`` keeps fairseq's own loop.
"""
from dataclasses import dataclass, field

from fairseq.optim import register_optimizer
from fairseq.optim.adam import Adam as FairseqAdamAlgorithm
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig

from flallm_plugin.optim.fused import FusedAdam, LazyGradMultiply
from flallm_plugin.optim.param_groups import GROUP_LR_HELP, GroupLearningRates, build_param_groups, parse_group_lr


@dataclass
class ParamGroupAdamConfig(FairseqAdamConfig):
    group_lr: str = field(default="{}", metadata={"help": GROUP_LR_HELP})


@register_optimizer("param_group_adam", dataclass=ParamGroupAdamConfig)
class ParamGroupAdam(LazyGradMultiply, GroupLearningRates, FairseqAdam):
    def __init__(self, cfg: ParamGroupAdamConfig, params):
        base_lr = float(cfg.lr) if isinstance(cfg.lr, (int, float)) else float(cfg.lr[0])
        param_groups = build_param_groups(params, parse_group_lr(cfg.group_lr), base_lr)
        super().__init__(cfg, param_groups)
        if (type(self._optimizer) is FairseqAdamAlgorithm and not getattr(cfg, "tpu", False)
                and not getattr(cfg, "use_old_adam", False)):
            self._optimizer = FusedAdam(param_groups, **self.optimizer_config)
            self.lazy_grad_multiply = True
