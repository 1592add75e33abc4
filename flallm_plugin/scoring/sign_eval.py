"""The usual sign language translation report: sacrebleu BLEU-1..4, n-gram
precisions and ROUGE-L.

BLEU-n follows the SLT papers (Camgoz et al. 2020, GFSLT-VLP): *cumulative*
sacrebleu BLEU with ``max_ngram_order=n`` (geometric mean of p1..pn times the
brevity penalty), so BLEU-4 is the standard sacrebleu score. The individual
n-gram precisions p1..p4 of the BLEU-4 computation are listed separately.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from fairseq.dataclass import FairseqDataclass
from fairseq.scoring import BaseScorer, register_scorer
from omegaconf import II

from flallm_plugin.run_option import run_option
from flallm_plugin.scoring import references
from flallm_plugin.scoring.rouge import rouge_l_corpus


def evaluate(
    hyps: Sequence[str],
    refs: Sequence[str],
    tokenize: str = "13a",
    lowercase: bool = False,
) -> Dict[str, Any]:
    """Score detokenized hypotheses against one reference each.

    Args:
        hyps (List[str]): system outputs.
        refs (List[str]): references, aligned with *hyps*.
        tokenize (str): sacrebleu tokenizer (``13a``, ``char``, ``zh``, ``none``...),
            used for BLEU and ROUGE-L alike.
        lowercase (bool): case-insensitive scoring.

    Returns:
        dict with ``bleu1`` .. ``bleu4`` (cumulative BLEU-n, x100),
        ``precisions`` (sacrebleu p1..p4, x100), ``rouge_l`` (x100),
        ``signature`` (sacrebleu signature of BLEU-4), ``n`` (number of sentences),
        plus ``bp``, ``sys_len``, ``ref_len``, ``tokenize`` and ``lowercase``.
    """
    from sacrebleu.metrics import BLEU

    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if len(hyps) == 0:
        raise ValueError("nothing to score: no sentences")
    tokenize = check_tokenizer(str(tokenize))

    result: Dict[str, Any] = {}
    for order in range(1, 5):
        metric = BLEU(tokenize=tokenize, lowercase=lowercase, max_ngram_order=order)
        bleu = metric.corpus_score(hyps, [refs])
        result[f"bleu{order}"] = bleu.score
    # the last one is the standard BLEU-4
    result["precisions"] = list(bleu.precisions)
    result["bp"] = bleu.bp
    result["sys_len"] = bleu.sys_len
    result["ref_len"] = bleu.ref_len
    result["signature"] = str(metric.get_signature())
    # sacrebleu lowercases before tokenizing; do the same for ROUGE-L
    if lowercase:
        hyps, refs = [h.lower() for h in hyps], [r.lower() for r in refs]
    result["rouge_l"] = rouge_l_corpus(refs, hyps, tokenize=tokenize)
    result["n"] = len(hyps)
    result["tokenize"] = tokenize
    result["lowercase"] = bool(lowercase)
    return result


def format_report(result: Dict[str, Any]) -> str:
    """Render :func:`evaluate`'s result as a small aligned table."""
    rows: List[List[str]] = [[f"BLEU-{n}", f"{result[f'bleu{n}']:.2f}"] for n in range(1, 5)]
    rows += [
        [f"p{n} ({n}-gram precision)", f"{p:.2f}"]
        for n, p in enumerate(result["precisions"], start=1)
    ]
    rows += [
        ["BP", f"{result['bp']:.3f}"],
        ["hyp_len / ref_len", f"{result['sys_len']} / {result['ref_len']}"],
        ["ROUGE-L", f"{result['rouge_l']:.2f}"],
        ["sentences", str(result["n"])],
    ]
    width = max(len(label) for label, _ in rows)
    vwidth = max(len(value) for _, value in rows)
    lines = [f"BLEU = {result['bleu4']:.2f} {result['signature']}"]
    if "references" in result:
        lines.append(f"  references: {result['references']}")
    lines += [f"  {label:<{width}}  {value:>{vwidth}}" for label, value in rows]
    return "\n".join(lines)


@dataclass
class SignEvalConfig(FairseqDataclass):
    sign_eval_tokenizer: Optional[str] = field(
        default=None,
        metadata={
            "help": "sacrebleu tokenizer for BLEU and ROUGE-L (13a, char, zh, intl, none, ...); default: the "
            "data's bleu_tokenizer (config.yaml) under --task sign_translation, else 13a"
        },
    )
    sign_eval_lowercase: bool = field(
        default=False, metadata={"help": "case-insensitive BLEU and ROUGE-L"}
    )
    # which split's original references to score against (scoring/references.py): the run's
    # --gen-subset of the task's data directory, read from the run's options
    data: Optional[str] = II("task.data")
    gen_subset: Optional[str] = II("dataset.gen_subset")


@register_scorer("sign_eval", dataclass=SignEvalConfig)
class SignEvalScorer(BaseScorer):
    """BLEU-1..4 (sacrebleu), n-gram precisions and ROUGE-L in one report; :meth:`score` is BLEU-4.

    Under ``fairseq-generate --task sign_translation`` the references are the manifest's
    original ``tgt_text`` of the run's ``--gen-subset`` (see :mod:`flallm_plugin.scoring.references`),
    not the text rebuilt from target ids, where pieces outside the vocabulary are ``<<unk>>``.
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        self.tokenize = None if cfg.sign_eval_tokenizer is None else check_tokenizer(cfg.sign_eval_tokenizer)
        self.lowercase = bool(cfg.sign_eval_lowercase)
        self.data_tokenizer = None
        self.n_original = 0
        data, split = run_option(cfg, "data"), run_option(cfg, "gen_subset")
        self.split = references.split_key(data, split) if data is not None and split is not None else None
        self._scored = Counter()  # rebuilt reference -> sentences scored with it

    def add_string(self, ref: str, pred: str):
        originals = references.lookup(self.split)  # looked up now: the task may load the split after us
        if originals is not None:  # a split whose task published its original references
            original = originals.original(ref, self._scored[ref])
            self._scored[ref] += 1
            ref, self.data_tokenizer = original, originals.tokenizer
            self.n_original += 1
        self.ref.append(ref)
        self.pred.append(pred)

    @property
    def tokenizer(self) -> str:
        return self.tokenize or self.data_tokenizer or "13a"

    def evaluate(self) -> Dict[str, Any]:
        if 0 < self.n_original < len(self.ref):  # the task registered the split after scoring began
            raise RuntimeError(
                f"sign_eval: only {self.n_original} of {len(self.ref)} references are the manifest's originals "
                "(the others were rebuilt from ids): load the data split before scoring it"
            )
        result = evaluate(self.pred, self.ref, tokenize=self.tokenizer, lowercase=self.lowercase)
        if self.n_original:
            result["references"] = f"the manifest's original tgt_text ({self.n_original} sentences)"
        return result

    def score(self) -> float:
        if len(self.ref) == 0:
            return 0.0
        return self.evaluate()["bleu4"]

    def result_string(self) -> str:
        if len(self.ref) == 0:
            return "sign_eval: no sentences to score"
        return format_report(self.evaluate())


def check_tokenizer(name: str) -> str:
    from sacrebleu.metrics import BLEU

    if name not in BLEU.TOKENIZERS:
        raise ValueError(f"unknown BLEU tokenizer {name!r} (choose from {', '.join(BLEU.TOKENIZERS)})")
    return name
