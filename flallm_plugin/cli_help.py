"""Make ``fairseq-train --user-dir flallm_plugin --task sign_translation --help`` list our options.

fairseq 0.12 parses ``--help`` before it adds the options of the chosen task and model
(so even ``--task translation --help`` omits ``--source-lang``). When the command line
asks for help, this wrapper adds the chosen plugin task's and architecture's options to
the parser first; without ``--help`` it calls fairseq unchanged.
"""
import sys

from fairseq import options

_original_parse_args_and_arch = options.parse_args_and_arch


def _value_after(argv, flag):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def parse_args_and_arch(parser, input_args=None, *args, **kwargs):
    argv = sys.argv[1:] if input_args is None else input_args
    if "-h" in argv or "--help" in argv:
        from fairseq.dataclass.utils import gen_parser_from_dataclass
        from fairseq.models import ARCH_MODEL_REGISTRY
        from fairseq.tasks import TASK_DATACLASS_REGISTRY

        task = _value_after(argv, "--task")
        if task in TASK_DATACLASS_REGISTRY and TASK_DATACLASS_REGISTRY[task].__module__.startswith("flallm_plugin"):
            group = parser.add_argument_group(f"Task ({task})")
            gen_parser_from_dataclass(group, TASK_DATACLASS_REGISTRY[task]())
        arch = _value_after(argv, "--arch")
        model = ARCH_MODEL_REGISTRY.get(arch)
        if model is not None and model.__module__.startswith("flallm_plugin"):
            model.add_args(parser.add_argument_group(f"Model ({arch})"))
    return _original_parse_args_and_arch(parser, input_args, *args, **kwargs)


options.parse_args_and_arch = parse_args_and_arch
