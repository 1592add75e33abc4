"""Original reference texts for scorers run inside ``fairseq-generate``, per data split.

``fairseq-generate`` rebuilds each reference from the target token ids, so with a
vocabulary trimmed to the training text every piece never seen in training becomes
``<<unk>>`` and BLEU would be computed against a corrupted reference. The original text is
in the manifest (``tgt_text``), and the ``sign_translation`` collater puts it in each
batch (``sample["tgt_text"]``, with the batch's ``sample["split"]``).

Why a registry: fairseq-generate builds the scorer from its own options alone
(``scoring.build_scorer(cfg.scoring, tgt_dict)``) and hands it two strings per sentence,
``add_string(reference rebuilt from ids, detokenized hypothesis)``: no sample, no sample id,
no task. So the task leaves the original texts where the scorer can find them, keyed so
that nothing depends on the order of the calls or on there being one scorer:

* by **split**: :func:`split_key` (the data directory's real path, the split name). The task
  opens a split's entry when it loads the split (:func:`register`); the scorer knows its split
  from the run's options (``--gen-subset`` and the task's data directory) and looks it up when
  it scores, so it may be built before or after the data is loaded, and scorers of several
  splits (or data directories) coexist in one process;
* within a split, by **the text fairseq hands the scorer**: after generating each batch the
  task publishes, per sample id, the reference as fairseq-generate rebuilds it (its ``T-``
  text) and the original (:func:`publish`; a sample id published again changes nothing). A
  scorer takes the original of each rebuilt text it is given, in any order. Samples whose
  rebuilt texts are equal (they differ only in pieces outside the vocabulary) are taken in
  the order they were first generated, which is the order fairseq-generate scores them in.

An entry holds one text per sample of the split, at most; a rebuilt text the task never
published for the scorer's split is an error, never a silent fallback to the rebuilt text.
"""
import os
from typing import Dict, Iterable, List, Optional, Tuple

SplitKey = Tuple[str, str]


def split_key(data: str, split: str) -> SplitKey:
    """The key of a data split: (real path of the data directory, split name)."""
    return os.path.realpath(os.fspath(data)), str(split)


class SplitReferences(object):
    """The original references of one data split, by the text fairseq-generate rebuilds from ids."""

    def __init__(self, key: SplitKey, tokenizer: Optional[str]):
        self.key = key
        self.tokenizer = tokenizer  # the data's BLEU tokenizer (config.yaml), for the scorer
        self._ids = set()
        self._originals: Dict[str, List[str]] = {}  # rebuilt text -> originals, in generation order

    def __len__(self):
        return len(self._ids)

    def where(self) -> str:
        data, split = self.key
        return f"split {split} of {data}"

    def add(self, sample_id: int, rebuilt: str, original: str):
        if sample_id in self._ids:
            return
        self._ids.add(sample_id)
        self._originals.setdefault(rebuilt, []).append(original)

    def original(self, rebuilt: str, occurrence: int) -> str:
        """The original of the ``occurrence``-th (0-based) sentence scored whose rebuilt text is ``rebuilt``."""
        originals = self._originals.get(rebuilt, [])
        if occurrence >= len(originals):
            raise RuntimeError(
                f"sign_eval: {self.where()}: no original reference was generated for the reference {rebuilt!r} "
                f"(occurrence {occurrence + 1}, {len(originals)} generated); score only what this run's task "
                "generated, without options that change fairseq-generate's T- text (--post-process)"
            )
        return originals[occurrence]


_splits: Dict[SplitKey, SplitReferences] = {}


def register(data: str, split: str, tokenizer: Optional[str]) -> SplitReferences:
    """Open (or, when the split is loaded again, reopen empty) the entry of a split whose
    original references the task will publish."""
    key = split_key(data, split)
    _splits[key] = SplitReferences(key, tokenizer)
    return _splits[key]


def lookup(key: Optional[SplitKey]) -> Optional[SplitReferences]:
    """The split's entry, or ``None`` where no task registered it (e.g. another task's data)."""
    return _splits.get(key) if key is not None else None


def publish(data: str, split: str, ids: Iterable[int], rebuilt: Iterable[str], originals: Iterable[str]):
    """A generated batch's sample ids, references as fairseq-generate rebuilds them, and originals."""
    key = split_key(data, split)
    entry = _splits.get(key)
    if entry is None:
        raise RuntimeError(f"references: split {split} of {key[0]} was never registered (load the dataset first)")
    for i, r, o in zip(ids, rebuilt, originals, strict=True):
        entry.add(int(i), r, o)
