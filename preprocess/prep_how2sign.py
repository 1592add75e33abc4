#!/usr/bin/env python
r"""Prepare How2Sign for the ``sign_translation`` task.

Reads the original release under ``--data-root``::

    how2sign_realigned_{train,val,test}.csv
        tab-separated, header VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME
        START_REALIGNED END_REALIGNED SENTENCE
    {split}_rgb_front_clips/raw_videos/<SENTENCE_NAME>.mp4     one clip per sentence

and writes a data directory (manifests, config.yaml, sentencepiece model, dictionary).
Targets are the ``SENTENCE`` column; the split ``val`` becomes ``dev``. Every clip is
decoded once to count its frames. ``speaker`` holds ``VIDEO_ID`` (the release names
no signer per sentence).

With ``--from-full-videos`` the sentences are cut at run time from the full videos
``<VIDEO_NAME>.mp4`` (under ``--full-videos-dir-pattern``) with the realigned
start/end times, which the manifests then carry as ``start`` / ``end`` columns.

    python preprocess/prep_how2sign.py --data-root DIR --out-dir OUT \
        [--clips-dir-pattern '{split}_rgb_front_clips/raw_videos'] \
        [--spm-model mbart/sentence.bpe.model --dict mbart-trimmed/dict.txt --tgt-lang-tag "[en_XX]"]
"""
import argparse
import math
import os

from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.prepare import Sample, add_common_args, read_delimited, write_data_dir

HEADER = [
    "VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE",
]
SPLITS = {"train": "train", "val": "dev", "test": "test"}  # release name -> our split name
DEFAULT_CLIPS_PATTERN = os.path.join("{split}_rgb_front_clips", "raw_videos")
DEFAULT_FULL_PATTERN = os.path.join("{split}_raw_videos", "raw_videos")


def _seconds(row, col: str) -> float:
    v = row[col]
    try:
        x = float(v)
    except ValueError:
        raise SignDataError(f"{row['_where']}: {col} {v!r} is not a number of seconds") from None
    if not math.isfinite(x) or x < 0:
        raise SignDataError(f"{row['_where']}: {col} {v!r} must be a non-negative number of seconds")
    return x


def _dir_for(pattern: str, split: str, option: str) -> str:
    try:
        return pattern.format(split=split)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{option} {pattern!r}: only the field {{split}} may be used ({e!r})") from None


def load_split(data_root: str, release_split: str, args) -> list:
    csv_path = os.path.join(data_root, f"how2sign_realigned_{release_split}.csv")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"{csv_path}: How2Sign annotation file not found")
    if args.from_full_videos:
        video_dir = _dir_for(args.full_videos_dir_pattern, release_split, "--full-videos-dir-pattern")
    else:
        video_dir = _dir_for(args.clips_dir_pattern, release_split, "--clips-dir-pattern")
    samples = []
    for row in read_delimited(csv_path, "\t", HEADER):
        where = row["_where"]
        if not row["SENTENCE_NAME"]:
            raise SignDataError(f"{where}: empty SENTENCE_NAME")
        s = Sample(
            id=row["SENTENCE_NAME"],
            video=os.path.join(video_dir, row["SENTENCE_NAME"] + ".mp4"),
            tgt_text=row["SENTENCE"],
            speaker=row["VIDEO_ID"],
            where=where,
        )
        if args.from_full_videos:
            if not row["VIDEO_NAME"]:
                raise SignDataError(f"{where}: empty VIDEO_NAME")
            s.video = os.path.join(video_dir, row["VIDEO_NAME"] + ".mp4")
            s.start, s.end = _seconds(row, "START_REALIGNED"), _seconds(row, "END_REALIGNED")
            if s.end <= s.start:
                raise SignDataError(
                    f"{where}: END_REALIGNED {row['END_REALIGNED']} is not after "
                    f"START_REALIGNED {row['START_REALIGNED']}"
                )
        samples.append(s)
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument(
        "--clips-dir-pattern", default=DEFAULT_CLIPS_PATTERN,
        help="folder (under --data-root) of a split's sentence clips; {split} is train, val or test "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--from-full-videos", action="store_true",
        help="cut sentences from the full videos <VIDEO_NAME>.mp4 with START/END_REALIGNED at run time",
    )
    parser.add_argument(
        "--full-videos-dir-pattern", default=DEFAULT_FULL_PATTERN,
        help="with --from-full-videos: folder (under --data-root) of a split's full videos (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.target_column not in (None, "SENTENCE"):
        parser.error(f"--target-column {args.target_column}: How2Sign's how2sign_realigned_*.csv has no gloss "
                     "annotation; its only target column is SENTENCE")
    if not os.path.isdir(args.data_root):
        parser.error(f"{args.data_root}: not found (--data-root must hold how2sign_realigned_*.csv)")
    splits = {ours: load_split(args.data_root, release, args) for release, ours in SPLITS.items()}
    return write_data_dir(splits, args.data_root, args, bleu_tokenizer="13a")


if __name__ == "__main__":
    main()
