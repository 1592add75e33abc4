"""Tiny datasets in the original release layouts, made by the tests themselves.

Each word of a sentence is "signed" by a few frames of a word-specific colour and
shape, so a tiny model can learn (and overfit) the mapping in seconds on a CPU.
"""
import os
import pickle
from typing import Dict, List, Sequence

import cv2
import numpy as np

PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation"
WORDS = ["regen", "sonne", "wind", "schnee", "nord", "sued", "morgen", "heute"]
COLOURS = [
    (230, 30, 30), (30, 200, 30), (30, 30, 230), (220, 220, 30),
    (220, 30, 220), (30, 220, 220), (250, 140, 0), (120, 60, 200),
]

DEFAULT_SPLITS = {
    "train": ["regen nord", "sonne sued heute", "wind morgen", "schnee nord morgen", "sonne heute", "regen wind sued"],
    "dev": ["regen sued", "sonne nord"],
    "test": ["wind nord", "schnee sued heute"],
}


def word_frames(word: str, n: int, w: int, h: int, rng: np.random.RandomState) -> List[np.ndarray]:
    i = WORDS.index(word)
    frames = []
    for k in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        x0 = 2 + (i % 4) * (w // 5)
        y0 = 2 + (i // 4) * (h // 3)
        img[y0 : y0 + h // 3, x0 : x0 + w // 4] = COLOURS[i]
        img = np.clip(img.astype(np.int16) + rng.randint(-10, 11, img.shape), 0, 255).astype(np.uint8)
        frames.append(img)  # RGB
    return frames


def sentence_frames(text: str, w: int, h: int, seed: int, per_word: int = 8) -> List[np.ndarray]:
    rng = np.random.RandomState(seed)
    frames = []
    for word in text.split():
        frames += word_frames(word, per_word, w, h, rng)
    return frames


def write_png_folder(folder: str, frames: Sequence[np.ndarray], pattern: str = "images{:04d}.png"):
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames, start=1):
        cv2.imwrite(os.path.join(folder, pattern.format(i)), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def write_mp4(path: str, frames: Sequence[np.ndarray], fps: float = 25.0):
    h, w = frames[0].shape[:2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4 here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def make_phoenix(root: str, splits: Dict[str, List[str]] = None, w: int = 26, h: int = 32, per_word: int = 8) -> str:
    """PHOENIX-2014-T release layout under ``root``; returns ``root``."""
    splits = splits or DEFAULT_SPLITS
    rel = os.path.join(root, "PHOENIX-2014-T")
    ann = os.path.join(rel, "annotations", "manual")
    os.makedirs(ann, exist_ok=True)
    seed = 0
    for split, sentences in splits.items():
        lines = [PHOENIX_HEADER]
        for j, text in enumerate(sentences):
            name = f"{split}_video_{j:03d}"
            seed += 1
            frames = sentence_frames(text, w, h, seed, per_word)
            write_png_folder(os.path.join(rel, "features", "fullFrame-210x260px", split, name), frames)
            speaker = f"Signer{(j % 2) + 1:02d}"
            lines.append(f"{name}|{split}/{name}/1/*.png|-1|-1|{speaker}|{text.upper()}|{text}")
        with open(os.path.join(ann, f"PHOENIX-2014-T.{split}.corpus.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return root


def make_how2sign(root: str, splits: Dict[str, List[str]] = None, w: int = 32, h: int = 32, per_word: int = 8) -> str:
    """How2Sign layout: ``how2sign_realigned_{split}.csv`` (tab separated) + one mp4 per sentence."""
    splits = splits or {"train": DEFAULT_SPLITS["train"], "val": DEFAULT_SPLITS["dev"], "test": DEFAULT_SPLITS["test"]}
    header = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
    seed = 100
    for split, sentences in splits.items():
        lines = [header]
        clip_dir = os.path.join(root, f"{split}_rgb_front_clips", "raw_videos")
        for j, text in enumerate(sentences):
            seed += 1
            vid = f"vid{split}{j:02d}"
            sname = f"{vid}_{j}-1-rgb_front"
            frames = sentence_frames(text, w, h, seed, per_word)
            write_mp4(os.path.join(clip_dir, sname + ".mp4"), frames)
            lines.append(f"{vid}\t{vid}-1-rgb_front\t{vid}_{j}\t{sname}\t0.0\t{len(frames) / 25:.2f}\t{text.capitalize()}.")
        with open(os.path.join(root, f"how2sign_realigned_{split}.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return root


def make_csl_daily(root: str, splits: Dict[str, List[str]] = None, w: int = 32, h: int = 32, per_word: int = 8) -> str:
    """CSL-Daily layout: ``sentence_label/csl2020ct_v2.pkl``, ``split_1.txt``, jpg frame folders."""
    splits = splits or DEFAULT_SPLITS
    zh = {"regen": "下雨", "sonne": "太阳", "wind": "风", "schnee": "雪", "nord": "北", "sued": "南", "morgen": "明天", "heute": "今天"}
    info, split_lines, seed = [], ["name|split"], 200
    for split, sentences in splits.items():
        for j, text in enumerate(sentences):
            seed += 1
            name = f"S{seed:06d}_P0000_T00"
            frames = sentence_frames(text, w, h, seed, per_word)
            write_png_folder(os.path.join(root, "sentence", "frames_512x512", name), frames, "{:06d}.jpg")
            words = [zh[t] for t in text.split()]
            info.append({
                "name": name, "length": len(frames), "label_gloss": [t.upper() for t in text.split()],
                "label_char": list("".join(words)), "label_word": words, "signer": j % 2,
            })
            split_lines.append(f"{name}|{split}")
    os.makedirs(os.path.join(root, "sentence_label"), exist_ok=True)
    with open(os.path.join(root, "sentence_label", "csl2020ct_v2.pkl"), "wb") as f:
        pickle.dump({"info": info, "gloss_map": []}, f)
    with open(os.path.join(root, "sentence_label", "split_1.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(split_lines) + "\n")
    return root
