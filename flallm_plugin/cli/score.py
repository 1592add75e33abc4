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
import re
import sys
from typing import Dict, List, Optional, Tuple

from sacrebleu.metrics import BLEU

from flallm_plugin.scoring.sign_eval import evaluate, format_report

_GEN_LINE = re.compile(r"^([TDH])-")
_ID = re.compile(r"^\d+$")


class ScoreInputError(ValueError):
    """An input file cannot be scored; the message names the file (and line)."""


def read_lines(path: str) -> List[str]:
    """Lines of a UTF-8 text file, split on ``\\n`` only, without line endings."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ScoreInputError(f"{path}: cannot read: {e.strerror or e}") from e
    if not raw:
        return []
    chunks = raw.split(b"\n")
    if chunks[-1] == b"":  # final newline
        chunks.pop()
    lines = []
    for lineno, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScoreInputError(
                f"{path}:{lineno}: not valid UTF-8 (byte 0x{chunk[e.start]:02x} "
                f"at column {e.start + 1})"
            ) from e
        lines.append(line[:-1] if line.endswith("\r") else line)
    return lines


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
    """Pair ``T-<id>\\t<ref>`` with ``D-<id>\\t<score>\\t<hyp>`` lines of a saved
    ``fairseq-generate`` output (``H-`` lines when there is no ``D-`` line).

    Other lines (``S-``, ``P-``, logging...) are ignored; with ``--nbest > 1`` the
    first (best) hypothesis of each id is used.

    Returns:
        (hypotheses, references), ordered by sample id.
    """
    refs: Dict[int, Tuple[str, int]] = {}
    hyps: Dict[str, Dict[int, Tuple[str, int]]] = {"D": {}, "H": {}}
    for lineno, line in enumerate(read_lines(path), start=1):
        m = _GEN_LINE.match(line)
        if m is None:
            continue
        kind = m.group(1)
        nfields = 2 if kind == "T" else 3
        fields = line.split("\t", nfields - 1)
        sid = fields[0][2:]
        if len(fields) != nfields or not _ID.match(sid):
            expected = "T-<id>\\t<reference>" if kind == "T" else f"{kind}-<id>\\t<score>\\t<hypothesis>"
            raise ScoreInputError(
                f"{path}:{lineno}: malformed {kind}- line (expected {expected}): {line[:80]!r}"
            )
        if kind != "T":
            try:
                float(fields[1])
            except ValueError:
                raise ScoreInputError(
                    f"{path}:{lineno}: malformed {kind}- line, score {fields[1]!r} "
                    f"is not a number"
                ) from None
        key = int(sid)
        if kind == "T":
            if key in refs:
                raise ScoreInputError(
                    f"{path}:{lineno}: second reference for id {key} "
                    f"(first at line {refs[key][1]})"
                )
            refs[key] = (fields[1], lineno)
        elif key not in hyps[kind]:  # nbest > 1: keep the best (first) one
            hyps[kind][key] = (fields[2], lineno)

    kind = "D" if hyps["D"] else "H"
    chosen = hyps[kind]
    if not refs and not chosen:
        raise ScoreInputError(f"{path}: no T-/D-/H- lines found (not a fairseq-generate output?)")
    lone_hyps = sorted(set(chosen) - set(refs))
    if lone_hyps:
        k = lone_hyps[0]
        raise ScoreInputError(
            f"{path}:{chosen[k][1]}: {kind}-{k} has no T-{k} reference "
            f"({len(lone_hyps)} id(s) without a reference)"
        )
    lone_refs = sorted(set(refs) - set(chosen))
    if lone_refs:
        k = lone_refs[0]
        raise ScoreInputError(
            f"{path}:{refs[k][1]}: T-{k} has no {kind}-{k} hypothesis "
            f"({len(lone_refs)} id(s) without a hypothesis)"
        )
    ids = sorted(refs)
    return [chosen[k][0] for k in ids], [refs[k][0] for k in ids]


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
