#!/usr/bin/env python
"""flallm-help: every option of ``fairseq-train`` / ``fairseq-generate`` for a task and model.

fairseq parses ``--help`` before it adds the options of the chosen task and architecture,
so ``fairseq-train --user-dir flallm_plugin --task sign_translation --arch light_t --help``
lists neither (true of fairseq's own tasks too). This command builds fairseq's parser,
lets fairseq's ``parse_args_and_arch`` add the task's, model's, criterion's, optimizer's
and scheduler's options to it, and prints its help::

    flallm-help train --task sign_translation --arch light_t
    flallm-help generate --task sign_translation
"""
import argparse
import sys


def get_parser():
    p = argparse.ArgumentParser(
        prog="flallm-help", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", nargs="?", default="train", choices=["train", "generate"], help="fairseq command")
    p.add_argument("--task", default="sign_translation")
    p.add_argument("--arch", default=None, help="model architecture, e.g. light_t or sign_mbart_large")
    for name in ("--criterion", "--optimizer", "--lr-scheduler", "--scoring"):
        p.add_argument(name, default=None)
    return p


def fairseq_parser(command: str, task: str, arch=None, **choices) -> argparse.ArgumentParser:
    """fairseq's parser for ``command`` with the options of ``task``, ``arch`` and ``choices`` added."""
    # the registries whose options the parser gets: task, architectures, criterion, optimizer, scorers
    from flallm_plugin import criterions, models, optim, scoring, tasks  # noqa: F401
    from fairseq import options

    if command == "train":
        parser = options.get_training_parser(default_task=task)
    else:
        parser = options.get_generation_parser(default_task=task)
    argv = ["DATA", "--task", task]
    if arch is not None:
        argv += ["--arch", arch]
    for name, value in choices.items():
        if value is not None:
            argv += ["--" + name.replace("_", "-"), value]
    options.parse_args_and_arch(parser, input_args=argv, parse_known=True)  # adds the option groups
    parser.prog = f"fairseq-{command}"
    return parser


def cli_main(argv=None):
    args = get_parser().parse_args(argv)
    parser = fairseq_parser(
        args.command, args.task, args.arch, criterion=args.criterion, optimizer=args.optimizer,
        lr_scheduler=args.lr_scheduler, scoring=args.scoring,
    )
    parser.print_help(sys.stdout)


if __name__ == "__main__":
    cli_main()
