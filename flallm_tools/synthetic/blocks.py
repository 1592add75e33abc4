"""Coloured-block sentences: tiny datasets a tiny model learns (and overfits) in seconds on a CPU.

Each word of a sentence is "signed" by a few frames of a word-specific colour and
position; :func:`make_phoenix`, :func:`make_how2sign` and :func:`make_csl_daily`
write them in the release layouts of :mod:`flallm_tools.synthetic.releases`.
"""
import itertools
import os
import random
from typing import Dict, List

import numpy as np

from flallm_tools.synthetic.releases import (
    write_csl_daily_labels, write_csl_daily_video, write_how2sign_clip, write_how2sign_split, write_phoenix_corpus,
    write_phoenix_video,
)

WORDS = ["regen", "sonne", "wind", "schnee", "nord", "sued", "morgen", "heute"]
COLOURS = [
    (230, 30, 30), (30, 200, 30), (30, 30, 230), (220, 220, 30),
    (220, 30, 220), (30, 220, 220), (250, 140, 0), (120, 60, 200),
]
CHINESE = {"regen": "下雨", "sonne": "太阳", "wind": "风", "schnee": "雪", "nord": "北", "sued": "南",
           "morgen": "明天", "heute": "今天"}

DEFAULT_SPLITS = {
    "train": ["regen nord", "sonne sued heute", "wind morgen", "schnee nord morgen", "sonne heute", "regen wind sued"],
    "dev": ["regen sued", "sonne nord"],
    "test": ["wind nord", "schnee sued heute"],
}


def write_lm_corpus(root: str, n: int = 200, seed: int = 0):
    """Text for a tiny "LLM" of the block language, which knows more of it than the sign corpus holds:
    ``n`` shuffled 2- and 3-word permutations of :data:`WORDS` plus the training sentences
    (``ROOT/corpus.txt``), and the training targets alone (``ROOT/train.txt``, input of trim_mbart.py).
    Returns the two paths."""
    rng = random.Random(seed)
    corpus = [" ".join(c) for k in (2, 3) for c in itertools.permutations(WORDS, k)]
    rng.shuffle(corpus)
    text, train_text = os.path.join(root, "corpus.txt"), os.path.join(root, "train.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus[:n] + DEFAULT_SPLITS["train"]) + "\n")
    with open(train_text, "w", encoding="utf-8") as f:
        f.write("\n".join(DEFAULT_SPLITS["train"]) + "\n")
    return text, train_text


def word_frames(word: str, n: int, w: int, h: int, rng: np.random.RandomState) -> List[np.ndarray]:
    """``n`` noisy RGB frames of one word's block."""
    i = WORDS.index(word)
    frames = []
    for _ in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        x0 = 2 + (i % 4) * (w // 5)
        y0 = 2 + (i // 4) * (h // 3)
        img[y0 : y0 + h // 3, x0 : x0 + w // 4] = COLOURS[i]
        img = np.clip(img.astype(np.int16) + rng.randint(-10, 11, img.shape), 0, 255).astype(np.uint8)
        frames.append(img)
    return frames


def sentence_frames(text: str, w: int, h: int, seed: int, per_word: int = 8) -> List[np.ndarray]:
    rng = np.random.RandomState(seed)
    frames = []
    for word in text.split():
        frames += word_frames(word, per_word, w, h, rng)
    return frames


def make_phoenix(root: str, splits: Dict[str, List[str]] = None, w: int = 26, h: int = 32, per_word: int = 8) -> str:
    """PHOENIX-2014-T release under ``root``; returns ``root``."""
    splits = splits or DEFAULT_SPLITS
    seed = 0
    for split, sentences in splits.items():
        rows = []
        for j, text in enumerate(sentences):
            name = f"{split}_video_{j:03d}"
            seed += 1
            write_phoenix_video(root, split, name, sentence_frames(text, w, h, seed, per_word))
            rows.append((name, f"Signer{(j % 2) + 1:02d}", text.upper(), text))
        write_phoenix_corpus(root, split, rows)
    return root


def make_how2sign(root: str, splits: Dict[str, List[str]] = None, w: int = 32, h: int = 32, per_word: int = 8) -> str:
    """How2Sign release (realigned csv + one mp4 clip per sentence) under ``root``; returns ``root``."""
    splits = splits or {"train": DEFAULT_SPLITS["train"], "val": DEFAULT_SPLITS["dev"], "test": DEFAULT_SPLITS["test"]}
    seed = 100
    for split, sentences in splits.items():
        rows = []
        for j, text in enumerate(sentences):
            seed += 1
            vid = f"vid{split}{j:02d}"
            sname = f"{vid}_{j}-1-rgb_front"
            frames = sentence_frames(text, w, h, seed, per_word)
            write_how2sign_clip(root, split, sname, frames)
            rows.append((vid, f"{vid}-1-rgb_front", f"{vid}_{j}", sname, "0.0", f"{len(frames) / 25:.2f}",
                         f"{text.capitalize()}."))
        write_how2sign_split(root, split, rows)
    return root


def make_csl_daily(root: str, splits: Dict[str, List[str]] = None, w: int = 32, h: int = 32, per_word: int = 8) -> str:
    """CSL-Daily release (label pickle, ``split_1.txt``, jpg frame folders) under ``root``; returns ``root``."""
    splits = splits or DEFAULT_SPLITS
    info, names, seed = [], [], 200
    for split, sentences in splits.items():
        for j, text in enumerate(sentences):
            seed += 1
            name = f"S{seed:06d}_P0000_T00"
            frames = sentence_frames(text, w, h, seed, per_word)
            write_csl_daily_video(root, name, frames)
            words = [CHINESE[t] for t in text.split()]
            info.append({
                "name": name, "length": len(frames), "label_gloss": [t.upper() for t in text.split()],
                "label_char": list("".join(words)), "label_word": words, "signer": j % 2,
            })
            names.append((name, split))
    write_csl_daily_labels(root, info, names)
    return root
