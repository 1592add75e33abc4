#!/usr/bin/env python3
"""Score sign language translation outputs: BLEU-1..4, n-gram precisions, ROUGE-L.

Either from a saved ``fairseq-generate`` output (``T-<id>`` references paired with
``D-<id>`` detokenized hypotheses, or ``H-<id>`` when there are no ``D-`` lines)::

    flallm-score --generate-output gen.log --data data/phoenix --gen-subset test

With ``--data``, references are the manifest's original ``tgt_text`` of each sample id
(``T-`` lines are rebuilt from token ids: pieces outside the vocabulary are ``<<unk>>``
there), and the BLEU tokenizer is the data config's ``bleu_tokenizer``.

or from two plain-text files, one sentence per line::

    flallm-score --hyp hyp.txt --ref ref.txt --tokenize 13a --json
"""
import argparse
import json
import os
import sys
import unicodedata
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


def _normalized(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def manifest_references(path: str, manifest: str) -> Tuple[List[str], List[str]]:
    """(hypotheses, original references) of a saved ``fairseq-generate`` output, references
    taken from the manifest's ``tgt_text`` by sample id (the dataset index = manifest row)."""
    from flallm_plugin.data.sign_translation_dataset import read_manifest
    from flallm_plugin.data.errors import SignDataError

    samples = read_generate_output(path)
    hyps, id_refs = hypotheses_and_references(samples, path)
    try:
        rows = read_manifest(manifest)
    except (OSError, SignDataError) as e:
        raise ScoreInputError(str(e)) from e
    refs = []
    for sid, id_ref in zip(sorted(samples), id_refs):
        s = samples[sid]
        if sid >= len(rows):
            raise ScoreInputError(
                f"{path}:{s.reference_line}: sample id {sid} but {manifest} has {len(rows)} rows "
                "(is --gen-subset the split that was decoded?)"
            )
        original = rows[sid]["tgt_text"]
        if "<unk>" not in id_ref and _normalized(id_ref) != _normalized(original):
            raise ScoreInputError(
                f"{path}:{s.reference_line}: T-{sid} {id_ref!r} is not {manifest} line {rows[sid]['_line']} "
                f"({original!r}): is --gen-subset the split that was decoded?"
            )
        refs.append(original)
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
                        help="data directory: with --generate-output, references are its manifest's "
                             "original tgt_text; its config gives the default --tokenize")
    parser.add_argument("--gen-subset", default="test",
                        help="the split fairseq-generate decoded (DATA/SPLIT.tsv; default: test)")
    parser.add_argument("--config-yaml", default="config.yaml",
                        help="data config file name under --data (default: config.yaml)")
    parser.add_argument("--lowercase", action="store_true", help="case-insensitive scoring")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON instead of a table")
    return parser


def main(args: argparse.Namespace) -> Dict:
    """Read the inputs named by *args* and score them."""
    if args.generate_output is not None and args.data is not None:
        data_dir = args.data if os.path.isdir(args.data) else os.path.dirname(args.data)
        hyps, refs = manifest_references(args.generate_output, os.path.join(data_dir, f"{args.gen_subset}.tsv"))
    elif args.generate_output is not None:
        print(f"{os.path.basename(sys.argv[0])}: references are the T- lines (rebuilt from token ids); pass "
              "--data DIR to score against the manifest's original tgt_text", file=sys.stderr)
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
