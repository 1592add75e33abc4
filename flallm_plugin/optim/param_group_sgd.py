"""SGD (paper stage 1: momentum 0.9, lr 1e-2) with per-group learning rates that follow one shared
schedule (:mod:`~flallm_plugin.optim.param_groups`), e.g. a slower ResNet:
``--optimizer param_group_sgd --momentum 0.9 --lr 1e-2 --group-lr '{"visual": 1e-3}'``.

The step is torch's ``SGD`` as fairseq's ``--optimizer sgd`` runs it (torch picks its multi-tensor
implementation on GPUs); the gradient clipping is one multi-tensor norm and multiply instead of
fairseq's norm and multiply per parameter (without apex).
"""
from fairseq.optim import register_optimizer
from fairseq.optim.sgd import SGD

from flallm_plugin.optim.param_groups import GROUP_LR_HELP, GroupLearningRates, build_param_groups, parse_group_lr


@register_optimizer("param_group_sgd")
class ParamGroupSGD(GroupLearningRates, SGD):
    def __init__(self, args, params):
        super().__init__(args, build_param_groups(params, parse_group_lr(args.group_lr), float(args.lr[0])))

    @staticmethod
    def add_args(parser):
        SGD.add_args(parser)
        parser.add_argument("--group-lr", default="{}", type=str, metavar="JSON", help=GROUP_LR_HELP)
