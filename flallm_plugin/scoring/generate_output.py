"""The one parser of ``fairseq-generate`` output (``T-``, ``H-`` and ``D-`` lines).

For each sample id ``fairseq-generate`` prints::

    T-<id>\t<reference>
    H-<id>\t<score>\t<hypothesis as tokens>       once per n-best hypothesis, best first
    D-<id>\t<score>\t<detokenized hypothesis>     (one D- line after each H- line)

Other lines (``S-``, ``P-``, logging...) are ignored. Malformed lines, a second
reference for an id, and (when pairing) an id without reference or hypothesis are
:class:`ScoreInputError` naming the source and the line (``FILE:LINE: ...``).
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from flallm_plugin.scoring.score_input import ScoreInputError, read_lines

_GEN_LINE = re.compile(r"^([TDH])-")
_ID = re.compile(r"^\d+$")


@dataclass
class Hypothesis(object):
    score: float
    text: str
    line: int  # 1-based line number in the output


@dataclass
class GeneratedSample(object):
    """Everything ``fairseq-generate`` printed for one sample id."""

    id: int
    reference: Optional[str] = None  # T- line
    reference_line: Optional[int] = None
    detokenized: List[Hypothesis] = field(default_factory=list)  # D- lines, n-best order
    tokenized: List[Hypothesis] = field(default_factory=list)  # H- lines, n-best order

    @property
    def hypothesis(self) -> Optional[str]:
        """The best detokenized hypothesis (first D- line), if any."""
        return self.detokenized[0].text if self.detokenized else None


def parse_generate_lines(lines: Iterable[str], source: str) -> Dict[int, GeneratedSample]:
    """Parse ``fairseq-generate`` output lines; ``source`` (a file name) prefixes the errors.

    Returns:
        {sample id: GeneratedSample}, in the order the ids first appear.
    """
    samples: Dict[int, GeneratedSample] = {}
    for lineno, line in enumerate(lines, start=1):
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
                f"{source}:{lineno}: malformed {kind}- line (expected {expected}): {line[:80]!r}"
            )
        sample = samples.setdefault(int(sid), GeneratedSample(int(sid)))
        if kind == "T":
            if sample.reference is not None:
                raise ScoreInputError(
                    f"{source}:{lineno}: second reference for id {sample.id} "
                    f"(first at line {sample.reference_line})"
                )
            sample.reference, sample.reference_line = fields[1], lineno
            continue
        try:
            score = float(fields[1])
        except ValueError:
            raise ScoreInputError(
                f"{source}:{lineno}: malformed {kind}- line, score {fields[1]!r} is not a number"
            ) from None
        nbest = sample.detokenized if kind == "D" else sample.tokenized
        nbest.append(Hypothesis(score, fields[2], lineno))
    if not samples:
        raise ScoreInputError(f"{source}: no T-/D-/H- lines found (not a fairseq-generate output?)")
    return samples


def read_generate_output(path: str) -> Dict[int, GeneratedSample]:
    """:func:`parse_generate_lines` of a saved ``fairseq-generate`` output file."""
    return parse_generate_lines(read_lines(path), path)


def hypotheses_and_references(
    samples: Dict[int, GeneratedSample], source: str
) -> Tuple[List[str], List[str]]:
    """The best hypothesis and the reference of every id, ordered by id.

    The hypothesis is the first ``D-`` line, or the first ``H-`` line when the output
    has no ``D-`` line at all. Every id must have both a reference and a hypothesis.
    """
    kind = "D" if any(s.detokenized for s in samples.values()) else "H"

    def nbest(s: GeneratedSample) -> List[Hypothesis]:
        return s.detokenized if kind == "D" else s.tokenized

    hyps = {k: nbest(s)[0] for k, s in samples.items() if nbest(s)}
    lone_hyps = sorted(k for k in hyps if samples[k].reference is None)
    if lone_hyps:
        k = lone_hyps[0]
        raise ScoreInputError(
            f"{source}:{hyps[k].line}: {kind}-{k} has no T-{k} reference "
            f"({len(lone_hyps)} id(s) without a reference)"
        )
    lone_refs = sorted(k for k, s in samples.items() if s.reference is not None and k not in hyps)
    if lone_refs:
        k = lone_refs[0]
        raise ScoreInputError(
            f"{source}:{samples[k].reference_line}: T-{k} has no {kind}-{k} hypothesis "
            f"({len(lone_refs)} id(s) without a hypothesis)"
        )
    ids = sorted(hyps)
    return [hyps[k].text for k in ids], [samples[k].reference for k in ids]
