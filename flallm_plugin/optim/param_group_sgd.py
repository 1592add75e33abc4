"""SGD (paper stage 1: momentum 0.9, lr 1e-2) with per-group learning rates that follow one shared
schedule (:mod:`~flallm_plugin.optim.param_groups`), e.g. a slower ResNet:
``--optimizer param_group_sgd --momentum 0.9 --lr 1e-2 --group-lr '{"visual": 1e-3}'``.

The step is torch's ``SGD`` with ``fused=True`` where every parameter's device has the kernel, with the
Trainer's gradient multiply and clipping folded into it (:mod:`flallm_plugin.optim.fused`): one pass over
the parameters after the backward instead of four; elsewhere torch's ``SGD`` as fairseq's ``--optimizer sgd``
runs it, with the clipping as one multi-tensor norm and multiply (without apex).
"""
from fairseq.optim import register_optimizer
from fairseq.optim.sgd import SGD

from flallm_plugin.optim.fused import FusedSGD, LazyGradMultiply, fused_device
from flallm_plugin.optim.param_groups import GROUP_LR_HELP, GroupLearningRates, build_param_groups, parse_group_lr


@register_optimizer("param_group_sgd")
class ParamGroupSGD(LazyGradMultiply, GroupLearningRates, SGD):
    def __init__(self, args, params):
        param_groups = build_param_groups(params, parse_group_lr(args.group_lr), float(args.lr[0]))
        super().__init__(args, param_groups)
        if all(fused_device(p.device) and p.is_floating_point() for g in param_groups for p in g["params"]):
            self._optimizer = FusedSGD(param_groups, **self.optimizer_config)
            self.lazy_grad_multiply = True

    @staticmethod
    def add_args(parser):
        SGD.add_args(parser)
        parser.add_argument("--group-lr", default="{}", type=str, metavar="JSON", help=GROUP_LR_HELP)
