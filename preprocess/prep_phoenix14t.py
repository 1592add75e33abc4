#!/usr/bin/env python
"""Prepare RWTH-PHOENIX-Weather 2014 T for the ``sign_translation`` task.

Reads the original release under ``--data-root``::

    PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv
        '|'-separated, header name|video|start|end|speaker|orth|translation
    PHOENIX-2014-T/features/fullFrame-210x260px/{train,dev,test}/<name>/images0001.png ...

and writes a data directory (manifests, config.yaml, sentencepiece model, dictionary).
Targets are the ``translation`` column (glosses are not used: gloss-free translation);
``--target-column orth`` takes the gloss sequences instead (the recognition control).

    python preprocess/prep_phoenix14t.py --data-root DIR --out-dir OUT \
        [--spm-model mbart/sentence.bpe.model --dict mbart-trimmed/dict.txt --tgt-lang-tag "[de_DE]"]
"""
import argparse
import os

from flallm_plugin.data.prepare import Sample, add_common_args, check_target_column, read_delimited, write_data_dir

HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
SPLITS = ("train", "dev", "test")
FRAME_DIR = os.path.join("features", "fullFrame-210x260px")
TARGET_COLUMNS = {"translation": "the German sentence, default", "orth": "the gloss sequence"}


def load_split(release: str, split: str, target_column: str = "translation"):
    csv_path = os.path.join(release, "annotations", "manual", f"PHOENIX-2014-T.{split}.corpus.csv")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"{csv_path}: PHOENIX-2014-T annotation file not found")
    check_target_column(target_column, TARGET_COLUMNS, csv_path)
    samples = []
    for row in read_delimited(csv_path, "|", HEADER):
        samples.append(
            Sample(
                id=row["name"],
                video=os.path.join(split, row["name"]),
                tgt_text=row[target_column],
                speaker=row["speaker"],
                where=row["_where"],
            )
        )
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    args = parser.parse_args(argv)
    release = os.path.join(args.data_root, "PHOENIX-2014-T")
    if not os.path.isdir(release):
        parser.error(f"{release}: not found (--data-root must hold PHOENIX-2014-T/)")
    splits = {split: load_split(release, split, args.target_column or "translation") for split in SPLITS}
    return write_data_dir(splits, os.path.join(release, FRAME_DIR), args, bleu_tokenizer="13a")


if __name__ == "__main__":
    main()
