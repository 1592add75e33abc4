"""The files of the PHOENIX-2014-T, How2Sign and CSL-Daily releases, as the preprocessors read them.

Each writer takes the folder that holds the release (``--data-root`` of ``preprocess/prep_*.py``).
"""
import os
import pickle
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from flallm_tools.synthetic.frames import write_image_folder, write_mp4

PHOENIX_DIR = "PHOENIX-2014-T"
PHOENIX_FRAME_DIR = "fullFrame-210x260px"
PHOENIX_HEADER = ("name", "video", "start", "end", "speaker", "orth", "translation")
HOW2SIGN_HEADER = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED",
                   "SENTENCE")


# ---------------------------------------------------------------------------- PHOENIX-2014-T
def phoenix_corpus_path(root: str, split: str) -> str:
    return os.path.join(root, PHOENIX_DIR, "annotations", "manual", f"{PHOENIX_DIR}.{split}.corpus.csv")


def phoenix_frame_dir(root: str, split: str, name: str) -> str:
    return os.path.join(root, PHOENIX_DIR, "features", PHOENIX_FRAME_DIR, split, name)


def write_phoenix_corpus(root: str, split: str, rows: Iterable[Tuple[str, str, str, str]]) -> None:
    """``PHOENIX-2014-T.{split}.corpus.csv`` from rows (name, speaker, orth, translation)."""
    path = phoenix_corpus_path(root, split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("|".join(PHOENIX_HEADER) + "\n")
        for name, speaker, orth, translation in rows:
            f.write("|".join((name, f"{split}/{name}/1/*.png", "-1", "-1", speaker, orth, translation)) + "\n")


def write_phoenix_video(root: str, split: str, name: str, frames: Sequence[np.ndarray]) -> None:
    write_image_folder(phoenix_frame_dir(root, split, name), frames)


# ---------------------------------------------------------------------------------- How2Sign
def how2sign_csv_path(root: str, split: str) -> str:
    return os.path.join(root, f"how2sign_realigned_{split}.csv")


def how2sign_clip_path(root: str, split: str, sentence_name: str) -> str:
    return os.path.join(root, f"{split}_rgb_front_clips", "raw_videos", sentence_name + ".mp4")


def write_how2sign_split(root: str, split: str, rows: Iterable[Sequence[str]]) -> None:
    """``how2sign_realigned_{split}.csv`` (tab separated) from rows in :data:`HOW2SIGN_HEADER` order."""
    lines = ["\t".join(HOW2SIGN_HEADER)] + ["\t".join(row) for row in rows]
    with open(how2sign_csv_path(root, split), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_how2sign_clip(root: str, split: str, sentence_name: str, frames: Sequence[np.ndarray]) -> None:
    write_mp4(how2sign_clip_path(root, split, sentence_name), frames)


# --------------------------------------------------------------------------------- CSL-Daily
def csl_daily_frame_dir(root: str, name: str) -> str:
    return os.path.join(root, "sentence", "frames_512x512", name)


def write_csl_daily_video(root: str, name: str, frames: Sequence[np.ndarray]) -> None:
    write_image_folder(csl_daily_frame_dir(root, name), frames, "{:06d}.jpg")


def csl_daily_label_path(root: str) -> str:
    return os.path.join(root, "sentence_label", "csl2020ct_v2.pkl")


def csl_daily_split_path(root: str) -> str:
    return os.path.join(root, "sentence_label", "split_1.txt")


def write_csl_daily_labels(root: str, info: List[Dict], splits: Iterable[Tuple[str, str]]) -> None:
    """``sentence_label/csl2020ct_v2.pkl`` (the ``info`` entries) and ``split_1.txt`` (name, split)."""
    os.makedirs(os.path.join(root, "sentence_label"), exist_ok=True)
    with open(csl_daily_label_path(root), "wb") as f:
        pickle.dump({"info": info, "gloss_map": []}, f)
    with open(csl_daily_split_path(root), "w", encoding="utf-8") as f:
        f.write("\n".join(["name|split"] + [f"{name}|{split}" for name, split in splits]) + "\n")
