"""Which target dictionary and sentencepiece model a model was trained with.

Two ``dict.txt`` files of the same size but another order give a model that decodes every token
as some other word, with no error anywhere. The task writes the sha256 of the dictionary's and
the sentencepiece model's bytes into the model args when it builds a model for training
(``target_dict_sha256``, ``target_spm_sha256``, with the files' paths and the dictionary size), and
checks them whenever a model is rebuilt from its checkpoint (fairseq-generate, flallm-export,
flallm-translate): a different file is one line naming both. A checkpoint written before these
facts is loaded with a warning.
"""
import hashlib
import logging
import os
from typing import Optional

logger = logging.getLogger(__name__)


def file_sha256(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_vocab_facts(args, dict_path: str, dict_size: int, spm_path: Optional[str]):
    """Record the dictionary and sentencepiece model of a model being built for training."""
    args.target_dict_sha256 = file_sha256(dict_path)
    args.target_dict_path = os.path.abspath(dict_path)
    args.target_dict_size = int(dict_size)
    args.target_spm_sha256 = file_sha256(spm_path)
    args.target_spm_path = os.path.abspath(spm_path) if spm_path else None


def check_vocab_facts(args, dict_path: str, dict_size: int, spm_path: Optional[str], what: str = "the checkpoint"):
    """Refuse a dictionary or sentencepiece model other than the ones ``args`` (a trained model's) records."""
    saved = getattr(args, "target_dict_sha256", None)
    if saved is None:
        logger.warning(
            f"{what} records no dictionary fingerprint (written before they were saved): {dict_path} is not "
            "checked against the training dictionary"
        )
        return
    trained_dict = getattr(args, "target_dict_path", None) or "the training dict.txt"
    saved_size = getattr(args, "target_dict_size", None)
    if saved_size is not None and int(saved_size) != int(dict_size):
        raise ValueError(
            f"{dict_path}: {dict_size:,} entries, but the model was trained with {saved_size:,} ({trained_dict}); "
            "use the dict.txt the model was trained with"
        )
    if file_sha256(dict_path) != saved:
        raise ValueError(
            f"{dict_path}: not the dictionary the model was trained with ({trained_dict}, sha256 {saved[:12]}): "
            "same size, other entries or order; use the dict.txt the model was trained with"
        )
    saved_spm = getattr(args, "target_spm_sha256", None)
    trained_spm = getattr(args, "target_spm_path", None) or "the training sentencepiece model"
    if saved_spm is not None and spm_path is None:
        raise ValueError(
            f"{dict_path}: the data config names no sentencepiece model, but the model was trained with "
            f"{trained_spm}; add it to the config's bpe_tokenizer"
        )
    if saved_spm is not None and file_sha256(spm_path) != saved_spm:
        raise ValueError(
            f"{spm_path}: not the sentencepiece model the model was trained with ({trained_spm}, sha256 "
            f"{saved_spm[:12]}); use the model trained with it"
        )


def _words(path: str):
    with open(path, encoding="utf-8") as f:
        return [line.split(" ", 1)[0] for line in f.read().splitlines() if line.strip()]


def check_sibling_dict(checkpoint: str, dict_path: Optional[str]):
    """A pretrained mBART checkpoint comes with its ``dict.txt`` (preprocess/trim_mbart.py writes both; the
    release's lacks the language tags and ``<mask>``, which the data's dictionary appends): the data's
    dictionary must hold that one's entries in the same order, first (the embedding rows are in that order)."""
    sibling = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "dict.txt")
    if not os.path.isfile(sibling) or not dict_path or not os.path.isfile(dict_path):
        return
    if os.path.realpath(sibling) == os.path.realpath(dict_path):
        return
    theirs, ours = _words(sibling), _words(dict_path)
    if ours[: len(theirs)] != theirs:
        first = next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))
        raise ValueError(
            f"{dict_path}: not the dictionary of the pretrained mBART {checkpoint} ({sibling}; they differ from "
            f"entry {first + 1} on); use the dict.txt written with it (preprocess/trim_mbart.py writes both)"
        )
