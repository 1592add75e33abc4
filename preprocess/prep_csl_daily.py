#!/usr/bin/env python
r"""Prepare CSL-Daily for the ``sign_translation`` task.

Reads the original release under ``--data-root``::

    sentence_label/csl2020ct_v2.pkl    pickled dict; key ``info``: a list of
        {name, length, label_gloss, label_char, label_word, signer}
    sentence_label/split_1.txt         '|'-separated, header name|split (train/dev/test)
    sentence/frames_512x512/<name>/000000.jpg ...

and writes a data directory (manifests, config.yaml, sentencepiece model, dictionary).
Targets are the Chinese sentences (``label_word`` joined without spaces, or
``label_char`` when a row has no words); glosses are not used (gloss-free
translation). BLEU is computed on characters (``bleu_tokenizer: char``).
``--target-column label_gloss`` takes the gloss sequences instead (the recognition control;
BLEU on the space-separated glosses, ``13a``).

The annotation pickle is read with a restricted unpickler that only builds plain
containers (dict, list, tuple, set, str, bytes, numbers): a pickle that would import
or call anything else is refused.

    python preprocess/prep_csl_daily.py --data-root DIR --out-dir OUT \
        [--spm-model mbart/sentence.bpe.model --dict mbart-trimmed/dict.txt --tgt-lang-tag "[zh_CN]"]
"""
import argparse
import os
import pickle

from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.prepare import Sample, add_common_args, check_target_column, read_delimited, write_data_dir

LABEL_FILE = os.path.join("sentence_label", "csl2020ct_v2.pkl")
SPLIT_FILE = os.path.join("sentence_label", "split_1.txt")
FRAME_DIR = os.path.join("sentence", "frames_512x512")
SPLITS = ("train", "dev", "test")

# the only globals a plain-container pickle may reference (protocol 0/1 pickles of
# Python 2 name them under __builtin__)
_SAFE_BUILTINS = frozenset(
    ["dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "bool",
     "complex", "unicode", "long"]
)


class _ContainerUnpickler(pickle.Unpickler):
    """Builds dicts/lists/strings/numbers only; any other global is refused."""

    def find_class(self, module, name):
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            if name == "unicode":
                return str
            if name == "long":
                return int
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def load_labels(path: str) -> list:
    """The ``info`` list of the annotation pickle (refuses anything that is not plain data)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: CSL-Daily annotation file not found")
    try:
        with open(path, "rb") as f:
            data = _ContainerUnpickler(f, encoding="utf-8").load()
    except pickle.UnpicklingError as e:
        raise SignDataError(
            f"{path}: refused to load: the pickle is not plain data ({e}); "
            "the CSL-Daily release holds only dicts, lists, strings and numbers"
        ) from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, UnicodeDecodeError) as e:
        raise SignDataError(f"{path}: cannot read the annotation pickle (corrupt or truncated: {e!r})") from e
    if not isinstance(data, dict) or not isinstance(data.get("info"), list):
        got = type(data).__name__ if not isinstance(data, dict) else f"dict with keys {sorted(map(str, data))}"
        raise SignDataError(f"{path}: expected a dict with an 'info' list (CSL-Daily csl2020ct_v2.pkl), got {got}")
    return data["info"]


TARGET_COLUMNS = {"label_word": "the Chinese sentence, default; label_char where a row has no words",
                  "label_char": "the sentence's characters", "label_gloss": "the gloss sequence, space-separated"}


def _target(entry: dict, where: str, column: str = "label_word") -> str:
    keys = ("label_word", "label_char") if column == "label_word" else (column,)
    sep = " " if column == "label_gloss" else ""
    for key in keys:
        v = entry.get(key)
        if v is None:
            continue
        if isinstance(v, str):
            return v.strip() if sep else v.replace(" ", "")
        if not isinstance(v, (list, tuple)) or not all(isinstance(t, str) for t in v):
            raise SignDataError(f"{where}: {key} must be a list of strings, got {v!r}")
        if v:
            return sep.join(t.strip() for t in v)
    raise SignDataError(f"{where}: no target ({' and '.join(keys)} missing or empty)")


def load_release(data_root: str, target_column: str = "label_word"):
    label_path = os.path.join(data_root, LABEL_FILE)
    split_path = os.path.join(data_root, SPLIT_FILE)
    check_target_column(target_column, TARGET_COLUMNS, label_path)
    info = load_labels(label_path)
    by_name = {}
    for i, entry in enumerate(info):
        where = f"{label_path}: info[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise SignDataError(f"{where}: expected a dict with a 'name' string, got {entry!r:.200}")
        if entry["name"] in by_name:
            raise SignDataError(f"{where}: duplicate name {entry['name']!r}")
        by_name[entry["name"]] = (i, entry)
    if not os.path.isfile(split_path):
        raise FileNotFoundError(f"{split_path}: CSL-Daily split file not found")
    splits = {split: [] for split in SPLITS}
    for row in read_delimited(split_path, "|", ["name", "split"]):
        where = row["_where"]
        name, split = row["name"], row["split"]
        if split not in splits:
            raise SignDataError(f"{where}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        if name not in by_name:
            raise SignDataError(f"{where}: {name!r} has no entry in {label_path}")
        i, entry = by_name[name]
        where = f"{where} ({label_path}: info[{i}])"
        splits[split].append(
            Sample(
                id=name,
                video=name,
                tgt_text=_target(entry, where, target_column),
                speaker=str(entry.get("signer", "")),
                where=where,
            )
        )
    return splits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.data_root, "sentence_label")):
        parser.error(f"{os.path.join(args.data_root, 'sentence_label')}: not found (--data-root must hold "
                     "sentence_label/ and sentence/frames_512x512/)")
    column = args.target_column or "label_word"
    splits = load_release(args.data_root, column)
    # glosses are space-separated words: BLEU on them as tokens; sentences on characters
    return write_data_dir(splits, os.path.join(args.data_root, FRAME_DIR), args,
                          bleu_tokenizer="13a" if column == "label_gloss" else "char")


if __name__ == "__main__":
    main()
