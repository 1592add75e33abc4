"""The one sentencepiece trainer of the project (data directories, tiny mBART, tests).

Two id layouts of the special pieces exist:

* ``fairseq``: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, fairseq's own
  dictionary order (the preprocessors' default vocabulary);
* ``mbart``: ``<unk>``=0, ``<s>``=1, ``</s>``=2 and no pad piece, the layout of
  mbart.cc25's ``sentence.bpe.model`` (fairseq id = sentencepiece id + 1).

The trainer options (input file, model prefix, threads...) are stored in the model
file, so the same arguments give a byte-identical model.
"""
from typing import Dict

ID_LAYOUTS: Dict[str, Dict[str, int]] = {
    "fairseq": {"unk_id": 3, "bos_id": 0, "eos_id": 2, "pad_id": 1},
    "mbart": {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1},
}


def train_sentencepiece(
    input_file: str,
    model_prefix: str,
    vocab_size: int,
    model_type: str = "unigram",
    id_layout: str = "fairseq",
    num_threads: int = 1,
) -> str:
    """Train on ``input_file`` (UTF-8, one sentence per line); returns ``model_prefix + ".model"``.

    ``vocab_size`` is an upper bound (``hard_vocab_limit=False``): a small text may
    yield fewer pieces. Every character of the text is covered.
    """
    import sentencepiece as spm

    if id_layout not in ID_LAYOUTS:
        raise ValueError(f"id_layout must be one of {', '.join(ID_LAYOUTS)}, got {id_layout!r}")
    spm.SentencePieceTrainer.train(
        input=input_file,
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=num_threads,
        minloglevel=2,
        **ID_LAYOUTS[id_layout],
    )
    return model_prefix + ".model"
