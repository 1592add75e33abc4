#!/usr/bin/env python3
"""Score sign language translation outputs: BLEU-1..4, n-gram precisions, ROUGE-L.

Either from a saved ``fairseq-generate`` output (``T-<id>`` references paired with
``D-<id>`` detokenized hypotheses, or ``H-<id>`` when there are no ``D-`` lines)::

    flallm-score --generate-output gen.log --data data/phoenix

or from two plain-text files, one sentence per line::

    flallm-score --hyp hyp.txt --ref ref.txt --tokenize 13a --json
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

from sacrebleu.metrics import BLEU

from flallm_plugin.scoring.generate_output import hypotheses_and_references, read_generate_output
from flallm_plugin.scoring.score_input import ScoreInputError, read_lines
from flallm_plugin.scoring.sign_eval import evaluate, format_report

__all__ = ["ScoreInputError", "cli_main", "parse_generate_output", "read_lines", "read_parallel"]


def read_parallel(hyp_path: str, ref_path: str) -> Tuple[List[str], List[str]]:
    """Hypotheses and references from two line-aligned files."""
    hyps, refs = read_lines(hyp_path), read_lines(ref_path)
    if len(hyps) != len(refs):
        raise ScoreInputError(
            f"line counts differ: {hyp_path} (--hyp) has {len(hyps)} lines, "
            f"{ref_path} (--ref) has {len(refs)} lines"
        )
    return hyps, refs


def parse_generate_output(path: str) -> Tuple[List[str], List[str]]:
    """(hypotheses, references) of a saved ``fairseq-generate`` output, ordered by sample id.

    ``D-`` hypotheses (``H-`` when there is no ``D-`` line); with ``--nbest > 1`` the
    first (best) one of each id. See :mod:`flallm_plugin.scoring.generate_output`.
    """
    return hypotheses_and_references(read_generate_output(path), path)


def default_tokenizer(data: Optional[str], config_yaml: str = "config.yaml") -> str:
    """``bleu_tokenizer`` of ``DATA/config.yaml`` when *data* is given, else ``13a``."""
    if data is None:
        return "13a"
    from flallm_plugin.data.data_cfg import SignDataConfig

    path = data if os.path.isfile(data) else os.path.join(data, config_yaml)
    try:
        return str(SignDataConfig(path).bleu_tokenizer)
    except (OSError, ValueError) as e:
        raise ScoreInputError(str(e)) from e


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flallm-score",
        description="BLEU-1..4 (sacrebleu), n-gram precisions and ROUGE-L of "
                    "sign language translation outputs.",
    )
    src = parser.add_argument_group("input (either --generate-output, or --hyp and --ref)")
    src.add_argument("--generate-output", metavar="FILE",
                     help="saved fairseq-generate output (T-/D-/H- lines)")
    src.add_argument("--hyp", metavar="FILE", help="hypotheses, one sentence per line")
    src.add_argument("--ref", metavar="FILE", help="references, one sentence per line")
    parser.add_argument("--tokenize", choices=list(BLEU.TOKENIZERS), default=None,
                        help="sacrebleu tokenizer (default: bleu_tokenizer of --data's "
                             "config, else 13a)")
    parser.add_argument("--data", metavar="DIR",
                        help="data directory whose config gives the default --tokenize")
    parser.add_argument("--config-yaml", default="config.yaml",
                        help="data config file name under --data (default: config.yaml)")
    parser.add_argument("--lowercase", action="store_true", help="case-insensitive scoring")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON instead of a table")
    return parser


def main(args: argparse.Namespace) -> Dict:
    """Read the inputs named by *args* and score them."""
    if args.generate_output is not None:
        hyps, refs = parse_generate_output(args.generate_output)
    else:
        hyps, refs = read_parallel(args.hyp, args.ref)
    if not hyps:
        raise ScoreInputError("nothing to score: no sentences")
    tokenize = args.tokenize or default_tokenizer(args.data, args.config_yaml)
    try:
        return evaluate(hyps, refs, tokenize=tokenize, lowercase=args.lowercase)
    except ValueError as e:
        raise ScoreInputError(str(e)) from e


def cli_main(argv: Optional[List[str]] = None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.generate_output is not None and (args.hyp or args.ref):
        parser.error("give either --generate-output or --hyp/--ref, not both")
    if args.generate_output is None and not (args.hyp and args.ref):
        parser.error("give --generate-output FILE, or both --hyp FILE and --ref FILE")
    try:
        result = main(args)
    except ScoreInputError as e:
        sys.exit(f"{parser.prog}: error: {e}")
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_report(result))


if __name__ == "__main__":
    cli_main()
