"""The one writer of a data directory's manifests (``{split}.tsv``) and ``config.yaml``.

Used by the dataset preprocessors, ``flallm-extract-features`` and ``flallm-pack-frames`` alike. A manifest
is tab-separated with a header line and no quoting (``csv.QUOTE_NONE``), which
:class:`~flallm_plugin.data.sign_translation_dataset.SignTranslationDatasetCreator`
reads back; both files are written to a temporary name and renamed.
"""
import csv
import os
import shutil
from typing import Any, Dict, Iterable, Optional, Sequence

import yaml

from flallm_plugin.data.atomic_file import atomic_write_text
from flallm_plugin.data.errors import SignDataError

_FORBIDDEN = ("\t", "\n", "\r")


def write_manifest(path: str, rows: Iterable[Sequence[Any]], columns: Sequence[str], name: Optional[str] = None):
    """Write ``rows`` (one value per column; ``None`` is written empty) under a ``columns`` header.

    A row with the wrong number of values, or a value holding a tab or a line break
    (which the unquoted format cannot represent), is an error naming the file (``name``, if
    given: the file that ``path``, a temporary name, becomes), the row and the column; nothing
    is written then.
    """
    shown = name or path
    columns = list(columns)
    checked = []
    for i, row in enumerate(rows, start=1):
        row = list(row)
        if len(row) != len(columns):
            raise SignDataError(
                f"{shown}: row {i}: {len(row)} values for {len(columns)} columns ({' '.join(columns)})"
            )
        for col, value in zip(columns, row):
            if isinstance(value, str) and any(c in value for c in _FORBIDDEN):
                raise SignDataError(f"{shown}: row {i}: {col} {value[:60]!r} contains a tab or line break")
        checked.append(row)

    def write(f):
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n")
        w.writerow(columns)
        w.writerows(checked)

    atomic_write_text(path, write)


def write_data_config(path: str, config: Dict[str, Any]):
    """Write a data directory's ``config.yaml`` (keys in the given order); see data_cfg.py."""
    atomic_write_text(path, lambda f: yaml.safe_dump(config, f, sort_keys=False))


def copy_text_assets(data_cfg, out_dir: str) -> Dict[str, Any]:
    """Copy a data directory's dictionary and sentencepiece model into ``out_dir`` (a new data directory made
    from it) and return its config with them named there; the caller updates the rest and writes it."""
    config = dict(data_cfg.config)
    src = data_cfg._abs(config.get("vocab_filename", "dict.txt"))
    shutil.copyfile(src, os.path.join(out_dir, os.path.basename(src)))
    config["vocab_filename"] = os.path.basename(src)
    bpe = data_cfg.bpe_tokenizer
    if bpe and bpe.get("sentencepiece_model"):
        name = os.path.basename(bpe["sentencepiece_model"])
        shutil.copyfile(bpe["sentencepiece_model"], os.path.join(out_dir, name))
        config["bpe_tokenizer"] = dict(bpe, sentencepiece_model=name)
    return config
