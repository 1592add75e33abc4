"""ROUGE-L as in coco-caption (``pycocoevalcap/rouge/rouge.py``), the variant
reported by sign language translation papers (Camgoz et al. 2020, GFSLT-VLP...).

Per sentence: ``prec = LCS / len(hyp)``, ``rec = LCS / len(ref)`` and
``F = (1 + beta^2) * prec * rec / (rec + beta^2 * prec)`` with ``beta = 1.2``
(0 when ``prec`` or ``rec`` is 0); the corpus score is the mean of the sentence
scores, reported x100.
"""
from dataclasses import dataclass, field
from typing import Sequence

from fairseq.dataclass import FairseqDataclass
from fairseq.scoring import BaseScorer, register_scorer
from fairseq.scoring.tokenizer import EvaluationTokenizer

ROUGE_BETA = 1.2


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            cur[j] = prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1]


def rouge_l_sentence(
    ref_tokens: Sequence[str], hyp_tokens: Sequence[str], beta: float = ROUGE_BETA
) -> float:
    """Sentence ROUGE-L F-score in [0, 1] (coco-caption ``Rouge.calc_score``
    with a single reference)."""
    if len(ref_tokens) == 0 or len(hyp_tokens) == 0:
        return 0.0
    lcs = lcs_length(ref_tokens, hyp_tokens)
    prec = lcs / len(hyp_tokens)
    rec = lcs / len(ref_tokens)
    if prec > 0 and rec > 0:
        return ((1 + beta ** 2) * prec * rec) / (rec + beta ** 2 * prec)
    return 0.0


def rouge_l_corpus(
    refs: Sequence[str],
    hyps: Sequence[str],
    tokenize: str = "none",
    lowercase: bool = False,
    beta: float = ROUGE_BETA,
) -> float:
    """Corpus ROUGE-L (mean of sentence scores) x100.

    Args:
        refs (List[str]): one reference per sentence.
        hyps (List[str]): one hypothesis per sentence.
        tokenize (str): an :class:`EvaluationTokenizer` (sacrebleu) tokenizer type;
            ``none`` splits on whitespace only.
        lowercase (bool): lowercase before comparing tokens.
        beta (float): recall weight of the F-score.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if len(refs) == 0:
        return 0.0
    tokenizer = EvaluationTokenizer(tokenizer_type=str(tokenize), lowercase=lowercase)
    total = 0.0
    for ref, hyp in zip(refs, hyps):
        total += rouge_l_sentence(
            tokenizer.tokenize(ref).split(), tokenizer.tokenize(hyp).split(), beta
        )
    return 100.0 * total / len(refs)


@dataclass
class RougeLConfig(FairseqDataclass):
    rouge_tokenizer: EvaluationTokenizer.ALL_TOKENIZER_TYPES = field(
        default="none",
        metadata={"help": "sacrebleu tokenizer applied before splitting on whitespace "
                          "(none, 13a, char, zh, ...)"},
    )
    rouge_lowercase: bool = field(
        default=False, metadata={"help": "lowercase references and hypotheses"}
    )


@register_scorer("rouge_l", dataclass=RougeLConfig)
class RougeLScorer(BaseScorer):
    """coco-caption ROUGE-L (beta = 1.2), mean over sentences, x100."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.tokenize = str(cfg.rouge_tokenizer)
        self.lowercase = bool(cfg.rouge_lowercase)

    def add_string(self, ref: str, pred: str):
        self.ref.append(ref)
        self.pred.append(pred)

    def score(self) -> float:
        return rouge_l_corpus(self.ref, self.pred, self.tokenize, self.lowercase)

    def result_string(self) -> str:
        return f"ROUGE-L = {self.score():.2f}"
