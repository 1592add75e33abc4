#!/usr/bin/env python3
"""Procedural synthetic sign-language dataset in the PHOENIX-2014-T release layout.

The generator stands in for PHOENIX-2014-T (German weather-forecast sign language
-> German text) in the demo and the tests. It runs on a laptop CPU in seconds and
writes exactly what the real release holds::

    OUT/PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv
    OUT/PHOENIX-2014-T/features/fullFrame-210x260px/{split}/<name>/images0001.png ...
    OUT/text_corpus.de.txt      (text only: stands in for the LLM's pre-training text)

The corpus files are '|'-separated with the header
``name|video|start|end|speaker|orth|translation``; ``video`` is
``{split}/<name>/1/*.png`` (as in the real release, where the frames actually lie
in ``features/fullFrame-210x260px/{split}/<name>/``), ``start``/``end`` are -1,
``speaker`` is ``SignerNN``, ``orth`` the gloss sequence and ``translation`` the
lowercased German sentence. The frame folder keeps its real name even when the
frames are smaller than 210x260 (``frame_w`` x ``frame_h``, portrait by default).

Design
------
*Signs.* 18 glosses, each a procedural sign on a simple signer (head, hair, torso,
arms from the shoulders, two hands): a hand **shape** (disc, square, triangle
with a direction, open ring, bar with an orientation), a **location** relative to
the body (beside the head, above the shoulder, at the chin, chest, side, waist),
a **movement** (static, left-right, up-down, downward strokes, circle, diagonal,
zigzag, pulsing size) and one or two hands (the other hand mirrors the first;
in one-handed signs it rests at the waist). Every two signs differ in at least two
of (shape/direction, location, movement, hands) -- checked by
:func:`check_signs_distinct` -- so a sign is recognisable from a few frames.

*Signers.* ``n_signers`` signers differ in speed (8-11 frames per sign, 2-3
transition frames), body position and scale, hand size, movement amplitude and
skin / hair / clothing / background colours. All splits use the same signers
(as in PHOENIX); every video adds its own jitter (position, scale, amplitude,
background tint, speed +0/+1 frame per sign). Each sign stays visible for at
least 8 raw frames (the model keeps 1 frame in 4), with smooth transitions and
a short rest pose at both ends.

*Language.* Weather forecasts as in PHOENIX. Glosses are signed in the order
TIME [REGION] WEATHER [INTENSITY]; the German sentence puts the verb second,
adds "es"/"sich"/articles and realises the intensity inside the weather phrase,
so the word order and length differ from the gloss order:

    T1  TIME WEATHER                      -> {time} {verb} {weather}
    T2  TIME WEATHER INTENSITY            -> {time} {verb} {weather+intensity}
    T3  TIME REGION WEATHER               -> {time} {verb} {region} {weather}
    T4  TIME REGION WEATHER INTENSITY     -> {time} {verb} {region} {weather+intensity}

e.g. ``MORGEN NORD REGEN`` -> "morgen regnet es im norden" and
``HEUTE SUED SONNE STARK`` -> "heute scheint im süden kräftig die sonne"
(see :data:`WEATHER_PHRASES`). The grammar is deterministic, hence learnable.

*Splits.* The 480 gloss combinations are split per template (about 14 % test,
10 % dev, the rest train) by the seed alone, so dev and test hold only
combinations never seen in training, while every gloss and every target word
of dev/test occurs in the training videos (the training set starts with a greedy
cover of all glosses and words; dev/test combinations whose words would be
unseen are dropped). Templates are sampled evenly; combinations cycle so that a
split holds as many distinct combinations as it can.

*Text corpus.* ``text_corpus_size`` sentences drawn by the same grammar over ALL
combinations (train, dev and test ones alike): the stand-in for text an LLM has
read, much larger than the video-paired training set.

Everything is deterministic given the arguments: a second run with the same
arguments writes byte-identical files. The command line is
``examples/synthetic/generate_dataset.py``; in Python::

    from flallm_tools.synthetic import generate
    generate("/tmp/synth", seed=1)
"""
import csv
import itertools
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from flallm_tools.synthetic.releases import (
    PHOENIX_DIR, phoenix_corpus_path, write_phoenix_corpus, write_phoenix_video,
)

# --------------------------------------------------------------------------- language

TIME = ("HEUTE", "MORGEN", "ABEND", "NACHT")
REGION = ("NORD", "SUED", "WEST", "OST")
WEATHER = ("REGEN", "SCHNEE", "SONNE", "WIND", "GEWITTER", "NEBEL", "WARM", "KALT")
INTENSITY = ("STARK", "SCHWACH")
GLOSSES: Tuple[str, ...] = TIME + REGION + WEATHER + INTENSITY

TIME_PHRASES = {"HEUTE": "heute", "MORGEN": "morgen", "ABEND": "am abend", "NACHT": "in der nacht"}
REGION_PHRASES = {"NORD": "im norden", "SUED": "im süden", "WEST": "im westen", "OST": "im osten"}
# weather gloss -> (verb phrase in second position, {intensity: phrase closing the sentence})
WEATHER_PHRASES: Dict[str, Tuple[str, Dict[Optional[str], str]]] = {
    "REGEN": ("regnet es", {None: "", "STARK": "kräftig", "SCHWACH": "leicht"}),
    "SCHNEE": ("schneit es", {None: "", "STARK": "kräftig", "SCHWACH": "leicht"}),
    "SONNE": ("scheint", {None: "die sonne", "STARK": "kräftig die sonne", "SCHWACH": "nur selten die sonne"}),
    "WIND": ("weht", {None: "der wind", "STARK": "ein starker wind", "SCHWACH": "ein schwacher wind"}),
    "GEWITTER": ("gibt es", {None: "gewitter", "STARK": "schwere gewitter", "SCHWACH": "vereinzelt gewitter"}),
    "NEBEL": ("bildet sich", {None: "nebel", "STARK": "dichter nebel", "SCHWACH": "leichter nebel"}),
    "WARM": ("wird es", {None: "warm", "STARK": "sehr warm", "SCHWACH": "etwas wärmer"}),
    "KALT": ("wird es", {None: "kalt", "STARK": "sehr kalt", "SCHWACH": "etwas kälter"}),
}

# gloss slots of each template (in signing order)
TEMPLATES: Tuple[Tuple[str, ...], ...] = (
    ("TIME", "WEATHER"),
    ("TIME", "WEATHER", "INTENSITY"),
    ("TIME", "REGION", "WEATHER"),
    ("TIME", "REGION", "WEATHER", "INTENSITY"),
)
_SLOT_GLOSSES = {"TIME": TIME, "REGION": REGION, "WEATHER": WEATHER, "INTENSITY": INTENSITY}
_GLOSS_SLOT = {g: slot for slot, gs in _SLOT_GLOSSES.items() for g in gs}


def translate(glosses: Sequence[str]) -> str:
    """German sentence (lowercased) for a gloss sequence TIME [REGION] WEATHER [INTENSITY]."""
    slots = {}
    for g in glosses:
        if g not in _GLOSS_SLOT:
            raise ValueError(f"unknown gloss {g!r}")
        slots[_GLOSS_SLOT[g]] = g
    if tuple(_GLOSS_SLOT[g] for g in glosses) not in TEMPLATES:
        raise ValueError(f"gloss sequence {' '.join(glosses)!r} matches no template")
    verb, closing = WEATHER_PHRASES[slots["WEATHER"]]
    words = [
        TIME_PHRASES[slots["TIME"]],
        verb,
        REGION_PHRASES.get(slots.get("REGION"), ""),
        closing[slots.get("INTENSITY")],
    ]
    return " ".join(w for w in words if w)


def all_combinations() -> List[Tuple[int, Tuple[str, ...]]]:
    """Every (template index, gloss tuple) the grammar allows, in a fixed order (480)."""
    out = []
    for t, slots in enumerate(TEMPLATES):
        for combo in itertools.product(*(_SLOT_GLOSSES[s] for s in slots)):
            out.append((t, combo))
    return out


def _units(combo: Sequence[str]) -> frozenset:
    """Glosses and target words of a combination (what training has to show once)."""
    return frozenset(["G:" + g for g in combo] + ["W:" + w for w in translate(combo).split()])


# --------------------------------------------------------------------------- signs


@dataclass(frozen=True)
class SignSpec:
    shape: str  # disc | square | triangle | ring | bar
    location: str  # key of LOCATIONS
    motion: str  # static | lr | ud | down | circle | diag | zigzag | pulse
    two_handed: bool
    angle: float = 0.0  # triangle: pointing direction (0 = up, 90 = right); bar: 0 = horizontal


SIGNS: Dict[str, SignSpec] = {
    "HEUTE": SignSpec("disc", "low", "ud", True),
    "MORGEN": SignSpec("disc", "head", "diag", False),
    "ABEND": SignSpec("bar", "high", "down", False),
    "NACHT": SignSpec("square", "chin", "lr", True),
    "NORD": SignSpec("triangle", "high", "static", False, 0.0),
    "SUED": SignSpec("triangle", "low", "static", False, 180.0),
    "WEST": SignSpec("triangle", "side", "lr", False, 270.0),
    "OST": SignSpec("triangle", "chest", "lr", False, 90.0),
    "REGEN": SignSpec("bar", "chest", "down", True, 90.0),
    "SCHNEE": SignSpec("disc", "chest", "zigzag", True),
    "SONNE": SignSpec("ring", "high", "circle", False),
    "WIND": SignSpec("bar", "chest", "lr", True, 0.0),
    "GEWITTER": SignSpec("triangle", "head", "zigzag", False, 0.0),
    "NEBEL": SignSpec("ring", "chin", "pulse", True),
    "WARM": SignSpec("disc", "chest", "circle", False),
    "KALT": SignSpec("square", "chest", "ud", True),
    "STARK": SignSpec("square", "side", "down", False),
    "SCHWACH": SignSpec("ring", "side", "pulse", False),
}


def check_signs_distinct(min_diff: int = 2) -> None:
    """Raise if two signs differ in fewer than ``min_diff`` of (shape, location, motion, hands)."""
    for (a, sa), (b, sb) in itertools.combinations(sorted(SIGNS.items()), 2):
        diff = ((sa.shape, sa.angle) != (sb.shape, sb.angle)) + (sa.location != sb.location) \
            + (sa.motion != sb.motion) + (sa.two_handed != sb.two_handed)
        if diff < min_diff:
            raise AssertionError(f"signs {a} and {b} differ in only {diff} attribute(s)")


# Geometry in "body units": the canonical canvas is 210 x 260 (the real release's
# frame size); body coordinates are relative to the neck, +x = the signer's
# dominant side (image right), +y = down.
CANVAS_W, CANVAS_H = 210.0, 260.0
NECK = (105.0, 100.0)
HEAD = (0.0, -42.0, 24.0, 29.0)  # centre x, y, half-axes
SHOULDER = (46.0, 12.0)
TORSO = ((-30, -2), (30, -2), (50, 10), (60, 40), (64, 180), (-64, 180), (-60, 40), (-50, 10))
LOCATIONS = {
    "head": (44.0, -44.0),
    "high": (58.0, -70.0),
    "chin": (0.0, -4.0),
    "chest": (20.0, 45.0),
    "side": (70.0, 60.0),
    "low": (20.0, 112.0),
}
REST = (40.0, 128.0)
TWO_HAND_MIN_X = 30.0  # two-handed signs keep the hands at least this far from the midline
HAND_RADIUS = 14.0
AMPLITUDE = 20.0


def _motion(kind: str, t: float) -> Tuple[float, float, float]:
    """Offset (dx, dy) in units of the amplitude and a size factor at phase ``t`` in [0, 1)."""
    tau = 2.0 * math.pi
    if kind == "static":
        return 0.0, 0.0, 1.0
    if kind == "lr":
        return math.sin(tau * 1.5 * t), 0.0, 1.0
    if kind == "ud":
        return 0.0, math.sin(tau * 1.5 * t), 1.0
    if kind == "down":  # two downward strokes
        return 0.0, -1.0 + 2.0 * ((2.0 * t) % 1.0), 1.0
    if kind == "circle":
        return math.cos(tau * t), math.sin(tau * t), 1.0
    if kind == "diag":  # one sweep from low-left to high-right
        return -1.0 + 2.0 * t, 1.0 - 2.0 * t, 1.0
    if kind == "zigzag":  # sweep left to right while bouncing three times
        tri = 1.0 - 2.0 * abs(((3.0 * t) % 1.0) - 0.5) * 2.0
        return -1.0 + 2.0 * t, 0.7 * tri, 1.0
    if kind == "pulse":  # opening / closing hand
        return 0.0, 0.0, 1.0 + 0.45 * math.sin(tau * 2.0 * t)
    raise ValueError(f"unknown motion {kind!r}")


@dataclass
class HandState:
    x: float
    y: float
    shape: str
    angle: float
    size: float


def _sign_hands(spec: SignSpec, t: float, amp: float) -> Tuple[HandState, HandState]:
    """Dominant and non-dominant hand of a sign at phase ``t``."""
    lx, ly = LOCATIONS[spec.location]
    ox, oy, size = _motion(spec.motion, t)
    if spec.two_handed:
        lx = max(lx, TWO_HAND_MIN_X)
        dom = HandState(lx + amp * ox, ly + amp * oy, spec.shape, spec.angle, size)
        other = HandState(-lx - amp * ox, ly + amp * oy, spec.shape, -spec.angle, size)
    else:
        dom = HandState(lx + amp * ox, ly + amp * oy, spec.shape, spec.angle, size)
        other = HandState(-REST[0], REST[1], "disc", 0.0, 1.0)
    return dom, other


def _rest_hands() -> Tuple[HandState, HandState]:
    return (HandState(REST[0], REST[1], "disc", 0.0, 1.0), HandState(-REST[0], REST[1], "disc", 0.0, 1.0))


def _blend(a: HandState, b: HandState, alpha: float) -> HandState:
    s = alpha * alpha * (3.0 - 2.0 * alpha)  # smoothstep
    owner = a if s < 0.5 else b
    return HandState(a.x + s * (b.x - a.x), a.y + s * (b.y - a.y), owner.shape, owner.angle,
                     a.size + s * (b.size - a.size))


# --------------------------------------------------------------------------- signers

SKIN = ((236, 188, 150), (205, 150, 105), (165, 110, 75), (250, 215, 180), (125, 80, 55), (220, 170, 130))
HAIR = ((45, 30, 20), (20, 18, 18), (120, 85, 45), (70, 45, 30), (30, 28, 35), (160, 130, 80))
CLOTHING = ((28, 32, 62), (22, 22, 24), (24, 62, 42), (92, 24, 34), (48, 48, 60), (44, 30, 78))
BACKGROUND = ((112, 138, 172), (150, 152, 160), (104, 150, 138), (150, 170, 196), (128, 128, 178), (176, 160, 136))


@dataclass
class Signer:
    name: str
    frames_per_sign: int
    transition: int
    dx: float
    dy: float
    scale: float
    hand_scale: float
    amplitude: float
    skin: Tuple[int, int, int]
    hair: Tuple[int, int, int]
    clothing: Tuple[int, int, int]
    background: Tuple[int, int, int]


def _tint(rgb, rng, spread) -> Tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in rgb)


def make_signers(n: int, rng: np.random.Generator) -> List[Signer]:
    """``n`` signers with distinct speed, placement, hand size and colours."""
    signers = []
    for i in range(n):
        k = i % len(SKIN)
        signers.append(Signer(
            name=f"Signer{i + 1:02d}",
            frames_per_sign=8 + (i * 3) % 4,  # 8, 11, 10, 9, 8, ...
            transition=2 + i % 2,
            dx=float(rng.uniform(-14, 14)),
            dy=float(rng.uniform(-8, 8)),
            scale=float(rng.uniform(0.92, 1.08)),
            hand_scale=float(rng.uniform(0.9, 1.15)),
            amplitude=float(rng.uniform(0.85, 1.15)),
            skin=_tint(SKIN[k], rng, 6),
            hair=_tint(HAIR[(i * 5) % len(HAIR)], rng, 6),
            clothing=_tint(CLOTHING[(i * 7) % len(CLOTHING)], rng, 6),
            background=_tint(BACKGROUND[(i * 5 + 1) % len(BACKGROUND)], rng, 8),
        ))
    return signers


# --------------------------------------------------------------------------- rendering

_SHIFT = 4  # sub-pixel precision of the OpenCV drawing calls
_ONE = 1 << _SHIFT


def _ellipse_pts(cx, cy, ax, ay, n=24, a0=0.0, a1=2 * math.pi) -> np.ndarray:
    ang = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * math.pi - 1e-9)
    return np.stack([cx + ax * np.cos(ang), cy + ay * np.sin(ang)], axis=1)


def _hand_pts(shape: str, angle: float, r: float) -> np.ndarray:
    """Outline of a hand shape centred on 0 (canonical units)."""
    if shape in ("disc", "ring"):
        return _ellipse_pts(0.0, 0.0, r, r, n=18)
    if shape == "square":
        h = 0.88 * r
        pts = np.array([(-h, -h), (h, -h), (h, h), (-h, h)])
    elif shape == "triangle":  # pointing up before rotation
        R = 1.35 * r
        pts = np.array([(0.0, -R), (0.866 * R, 0.5 * R), (-0.866 * R, 0.5 * R)])
    elif shape == "bar":  # horizontal before rotation
        pts = np.array([(-1.5 * r, -0.5 * r), (1.5 * r, -0.5 * r), (1.5 * r, 0.5 * r), (-1.5 * r, 0.5 * r)])
    else:
        raise ValueError(f"unknown hand shape {shape!r}")
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    return pts @ np.array([[c, s], [-s, c]])  # clockwise rotation in image coordinates


class _Painter:
    """Draws one signer's frames at the output size (OpenCV, RGB canvas)."""

    def __init__(self, frame_w: int, frame_h: int, body_dx: float, body_dy: float, scale: float):
        self.w, self.h = frame_w, frame_h
        self.sx, self.sy = frame_w / CANVAS_W, frame_h / CANVAS_H
        self.ox, self.oy = NECK[0] + body_dx, NECK[1] + body_dy
        self.k = scale

    def px(self, pts) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64)
        x = (self.ox + self.k * pts[..., 0]) * self.sx
        y = (self.oy + self.k * pts[..., 1]) * self.sy
        return np.round(np.stack([x, y], axis=-1) * _ONE).astype(np.int32)

    def thickness(self, t: float) -> int:
        return max(1, int(round(t * self.k * self.sx)))

    def fill(self, img, pts, bgr):
        cv2.fillPoly(img, [self.px(pts)], bgr, cv2.LINE_AA, _SHIFT)

    def body(self, img, signer: Signer):
        self.torso(img, signer)
        self.head(img, signer)

    def torso(self, img, signer: Signer):
        """Torso and neck."""
        self.fill(img, TORSO, signer.clothing)
        self.fill(img, [(-9, -20), (9, -20), (10, 2), (-10, 2)], signer.skin)  # neck

    def head(self, img, signer: Signer, dx: float = 0.0, dy: float = 0.0):
        """Hair and face, moved by (dx, dy) body units (nods and head shakes)."""
        cx, cy, ax, ay = HEAD
        self.fill(img, _ellipse_pts(cx + dx, cy - 3 + dy, ax + 2, ay, n=20, a0=math.pi, a1=2 * math.pi), signer.hair)
        self.fill(img, _ellipse_pts(cx + dx, cy + 2 + dy, ax, ay - 3), signer.skin)

    def arm(self, img, hand: HandState, side: float, bgr):
        sh = self.px([(side * SHOULDER[0], SHOULDER[1])])[0]
        h = self.px([(hand.x, hand.y)])[0]
        cv2.line(img, (int(sh[0]), int(sh[1])), (int(h[0]), int(h[1])), bgr, self.thickness(13), cv2.LINE_AA, _SHIFT)

    def hands(self, img, dom: HandState, other: HandState, sleeve, radius: float, skin):
        """Both arms, then both hands (the dominant one last, on top)."""
        self.arm(img, other, -1.0, sleeve)
        self.arm(img, dom, 1.0, sleeve)
        self.hand(img, other, radius, skin)
        self.hand(img, dom, radius, skin)

    def hand(self, img, hand: HandState, radius: float, bgr):
        pts = _hand_pts(hand.shape, hand.angle, radius * hand.size) + np.array([hand.x, hand.y])
        if hand.shape == "ring":
            cv2.polylines(img, [self.px(pts)], True, bgr, self.thickness(0.5 * radius * hand.size),
                          cv2.LINE_AA, _SHIFT)
        else:
            self.fill(img, pts, bgr)


def _timeline(glosses: Sequence[str], frames_per_sign: Sequence[int], transition: int,
              amp: float, hold: Tuple[int, int]) -> List[Tuple[HandState, HandState]]:
    """Hand states of every frame: rest, (transition, sign)*, transition, rest."""
    frames: List[Tuple[HandState, HandState]] = []
    rest = _rest_hands()
    frames += [rest] * hold[0]
    prev = rest
    for g, n in zip(glosses, frames_per_sign):
        spec = SIGNS[g]
        sign = [_sign_hands(spec, i / n, amp) for i in range(n)]
        for j in range(1, transition + 1):
            a = j / (transition + 1)
            frames.append((_blend(prev[0], sign[0][0], a), _blend(prev[1], sign[0][1], a)))
        frames += sign
        prev = sign[-1]
    for j in range(1, transition + 1):
        a = j / (transition + 1)
        frames.append((_blend(prev[0], rest[0], a), _blend(prev[1], rest[1], a)))
    frames += [rest] * hold[1]
    return frames


def render_video(glosses: Sequence[str], signer: Signer, frame_w: int, frame_h: int,
                 rng: np.random.Generator) -> List[np.ndarray]:
    """Frames (H x W x 3, RGB uint8) of one signed sentence.

    ``rng`` draws the per-video jitter: placement, scale, amplitude, background
    tint and speed.
    """
    painter = _Painter(frame_w, frame_h,
                       signer.dx + rng.uniform(-4, 4), signer.dy + rng.uniform(-4, 4),
                       signer.scale * rng.uniform(0.97, 1.03))
    amp = AMPLITUDE * signer.amplitude * rng.uniform(0.9, 1.1)
    fps = [signer.frames_per_sign + int(rng.integers(0, 2)) for _ in glosses]
    hold = (int(rng.integers(1, 3)), 1)
    background = _tint(signer.background, rng, 8)
    sleeve = tuple(min(255, c + 22) for c in signer.clothing)
    skin = tuple(min(255, c + 18) for c in signer.skin)  # palms: a little lighter than the face
    radius = HAND_RADIUS * signer.hand_scale

    base = np.empty((frame_h, frame_w, 3), dtype=np.uint8)
    base[:] = background
    painter.body(base, signer)
    out = []
    for dom, other in _timeline(glosses, fps, signer.transition, amp, hold):
        img = base.copy()
        painter.hands(img, dom, other, sleeve, radius, skin)
        out.append(img)
    return out


# --------------------------------------------------------------------------- splits

SPLITS = ("train", "dev", "test")
SPLIT_FRACTIONS = {"test": 0.14, "dev": 0.10}
NAME_PREFIX = "synth_"
TEXT_CORPUS_NAME = "text_corpus.de.txt"


def split_combinations(rng: np.random.Generator) -> Dict[str, List[Tuple[int, Tuple[str, ...]]]]:
    """Disjoint train/dev/test pools of (template, combination), split per template.

    Dev/test combinations containing a gloss or word absent from the train pool
    move to train, so every dev/test unit can be learnt.
    """
    pools = {s: [] for s in SPLITS}
    combos = all_combinations()
    for t in range(len(TEMPLATES)):
        members = [c for c in combos if c[0] == t]
        order = rng.permutation(len(members))
        n_test = max(1, int(round(SPLIT_FRACTIONS["test"] * len(members))))
        n_dev = max(1, int(round(SPLIT_FRACTIONS["dev"] * len(members))))
        pools["test"] += [members[i] for i in order[:n_test]]
        pools["dev"] += [members[i] for i in order[n_test:n_test + n_dev]]
        pools["train"] += [members[i] for i in order[n_test + n_dev:]]
    train_units = frozenset().union(*(_units(c) for _, c in pools["train"]))
    for s in ("dev", "test"):
        keep = [c for c in pools[s] if _units(c[1]) <= train_units]
        pools["train"] += [c for c in pools[s] if not _units(c[1]) <= train_units]
        pools[s] = keep
    return pools


def _greedy_cover(pool, rng) -> list:
    """A small list of combinations that shows every gloss and word of ``pool``."""
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    uncovered = set().union(*(_units(c) for _, c in shuffled))
    cover = []
    while uncovered:
        best = max(shuffled, key=lambda c: len(_units(c[1]) & uncovered))
        cover.append(best)
        uncovered -= _units(best[1])
    return cover


def _sample_split(pool, n: int, rng, first=()) -> list:
    """``n`` combinations: ``first``, then templates evenly, cycling each template's pool."""
    chosen = list(first)[:n]
    by_template = {t: [c for c in pool if c[0] == t] for t in range(len(TEMPLATES))}
    by_template = {t: cs for t, cs in by_template.items() if cs}
    if not by_template and n > len(chosen):
        raise ValueError("no gloss combination left for this split")
    templates = sorted(by_template)
    todo = n - len(chosen)
    wanted = [templates[i % len(templates)] for i in range(todo)]
    wanted = [wanted[i] for i in rng.permutation(todo)]
    queues = {t: [] for t in templates}
    refilled = set()
    for t in wanted:
        if not queues[t]:
            # the first pass over a template skips what ``first`` already holds
            fresh = by_template[t]
            if t not in refilled:
                fresh = [c for c in fresh if c not in chosen] or fresh
                refilled.add(t)
            queues[t] = [fresh[i] for i in rng.permutation(len(fresh))]
        chosen.append(queues[t].pop())
    return chosen


def _plan(n_train, n_dev, n_test, n_signers, seed):
    """Videos of each split: list of (name, signer index, glosses) and the signers."""
    ss = np.random.SeedSequence(seed)
    r_split, r_signers, r_train, r_dev, r_test, r_assign = (np.random.default_rng(s) for s in ss.spawn(6))
    signers = make_signers(n_signers, r_signers)
    pools = split_combinations(r_split)
    cover = _greedy_cover(pools["train"], r_train)
    train = _sample_split(pools["train"], n_train, r_train, first=cover)
    train_units = frozenset().union(*(_units(c) for _, c in train)) if train else frozenset()
    plan = {"train": train}
    for split, n, r in (("dev", n_dev, r_dev), ("test", n_test, r_test)):
        pool = [c for c in pools[split] if _units(c[1]) <= train_units]
        if n > 0 and not pool:
            raise ValueError(f"n_train={n_train} is too small: no {split} combination uses only "
                             f"glosses and words seen in training (use n_train >= {len(cover)})")
        plan[split] = _sample_split(pool, n, r)
    videos = {}
    for split in SPLITS:
        combos = plan[split]
        who = np.arange(len(combos)) % n_signers
        who = who[r_assign.permutation(len(combos))]
        videos[split] = [(f"{NAME_PREFIX}{split}_{i:05d}", int(who[i]), combos[i][1]) for i in range(len(combos))]
    return videos, signers


# --------------------------------------------------------------------------- output


def _is_synthetic(out_root: str) -> bool:
    """Whether an existing ``out_root/PHOENIX-2014-T`` was written by this generator."""
    found = False
    for split in SPLITS:
        path = phoenix_corpus_path(out_root, split)
        if not os.path.isfile(path):
            continue
        found = True
        with open(path, encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="|"))[1:]
        if any(not r or not r[0].startswith(NAME_PREFIX) for r in rows):
            return False
    return found


def _real_corpus(out_root: str):
    """A corpus CSV of ``out_root/PHOENIX-2014-T`` naming a video this generator did not write (real data),
    or None."""
    for split in SPLITS:
        path = phoenix_corpus_path(out_root, split)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                rows = list(csv.reader(f, delimiter="|"))[1:]
            if any(r and not r[0].startswith(NAME_PREFIX) for r in rows):
                return path
    return None


def refuse_real_release(out_root: str, real: str):
    raise FileExistsError(
        f"{real} names videos this generator did not write (real data?): {os.path.join(out_root, PHOENIX_DIR)} "
        "is never replaced, --overwrite included; remove it yourself or choose another output folder"
    )


def _prepare_output(out_root: str, overwrite: bool) -> None:
    phoenix_root = os.path.join(out_root, PHOENIX_DIR)
    if not os.path.isdir(phoenix_root) or not os.listdir(phoenix_root):
        return
    real = _real_corpus(out_root)
    if real is not None:
        refuse_real_release(out_root, real)
    if overwrite or _is_synthetic(out_root):  # overwrite: a synthetic release without its CSVs (interrupted)
        shutil.rmtree(phoenix_root)
        return
    raise FileExistsError(f"{phoenix_root} exists and does not look generated by this script; "
                          "pass overwrite=True (--overwrite) to replace it")


def _write_text_corpus(path: str, size: int, seed: int) -> List[str]:
    """``size`` sentences over all combinations, templates drawn evenly."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    combos = all_combinations()
    by_template = [[c for t, c in combos if t == i] for i in range(len(TEMPLATES))]
    ts = rng.integers(0, len(TEMPLATES), size=size)
    sentences = []
    for t in ts:
        members = by_template[t]
        sentences.append(translate(members[int(rng.integers(0, len(members)))]))
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(s + "\n" for s in sentences)
    return sentences


def generate(
    out_root: str,
    n_train: int = 360,
    n_dev: int = 40,
    n_test: int = 60,
    n_signers: int = 5,
    frame_w: int = 56,
    frame_h: int = 70,
    seed: int = 1,
    text_corpus_size: int = 20000,
    overwrite: bool = False,
    verbose: bool = False,
) -> Dict:
    """Write the synthetic dataset under ``out_root`` and return a summary.

    ``out_root/PHOENIX-2014-T`` is replaced if it holds an earlier synthetic
    dataset (or ``overwrite`` is set and it has no corpus CSV naming other videos); a folder
    whose corpus names videos this generator did not write (real data) raises
    :class:`FileExistsError`, ``overwrite`` or not.
    """
    if min(n_train, n_signers, frame_w, frame_h) < 1 or min(n_dev, n_test, text_corpus_size) < 0:
        raise ValueError("n_train, n_signers and the frame size must be >= 1; n_dev, n_test, "
                         "text_corpus_size >= 0")
    check_signs_distinct()
    t0 = time.perf_counter()
    out_root = os.path.abspath(out_root)
    phoenix_root = os.path.join(out_root, PHOENIX_DIR)
    _prepare_output(out_root, overwrite)
    videos, signers = _plan(n_train, n_dev, n_test, n_signers, seed)

    for split in SPLITS:
        write_phoenix_corpus(out_root, split, [(name, signers[who].name, " ".join(glosses), translate(glosses))
                                               for name, who, glosses in videos[split]])

    summary: Dict = {"out_root": out_root, "phoenix_root": phoenix_root, "seed": seed,
                     "frame_size": f"{frame_w}x{frame_h}", "signers": [s.name for s in signers], "splits": {}}
    for si, split in enumerate(SPLITS):
        lengths = []
        for i, (name, who, glosses) in enumerate(videos[split]):
            rng = np.random.default_rng(np.random.SeedSequence([seed, si, i]))
            frames = render_video(glosses, signers[who], frame_w, frame_h, rng)
            write_phoenix_video(out_root, split, name, frames)
            lengths.append(len(frames))
        summary["splits"][split] = {
            "videos": len(videos[split]),
            "combinations": len({g for _, _, g in videos[split]}),
            "frames": int(sum(lengths)),
            "frames_per_video": {"min": min(lengths, default=0), "mean": round(float(np.mean(lengths)), 1)
                                 if lengths else 0.0, "max": max(lengths, default=0)},
            "signers": len({w for _, w, _ in videos[split]}),
        }
        if verbose:
            print(f"[synthetic] {split}: {len(lengths)} videos, {sum(lengths)} frames", file=sys.stderr)

    sentences = _write_text_corpus(os.path.join(out_root, TEXT_CORPUS_NAME), text_corpus_size, seed)
    train_words = {w for _, _, g in videos["train"] for w in translate(g).split()}
    summary.update({
        "gloss_vocab": len({g for s in SPLITS for _, _, gs in videos[s] for g in gs}),
        "word_vocab": len({w for s in SPLITS for _, _, g in videos[s] for w in translate(g).split()}),
        "train_word_vocab": len(train_words),
        "text_corpus": {"path": os.path.join(out_root, TEXT_CORPUS_NAME), "sentences": len(sentences),
                        "distinct_sentences": len(set(sentences))},
        "seconds": round(time.perf_counter() - t0, 2),
    })
    return summary


def render_sign_sheet(path: str, frame_w: int = 56, frame_h: int = 70, n_signers: int = 5,
                      seed: int = 1, zoom: int = 3) -> None:
    """Save a montage: one row per signer, one column per gloss (its middle frame)."""
    signers = make_signers(n_signers, np.random.default_rng(np.random.SeedSequence(seed).spawn(6)[1]))
    rows = []
    for signer in signers:
        cells = []
        for g in GLOSSES:
            frames = render_video([g], signer, frame_w, frame_h, np.random.default_rng(0))
            mid = frames[len(frames) // 2]
            cells.append(cv2.copyMakeBorder(mid, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
        rows.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(rows, axis=0)
    sheet = cv2.resize(sheet, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    label = np.full((16 * zoom // 2, sheet.shape[1], 3), 255, np.uint8)
    for j, g in enumerate(GLOSSES):
        cv2.putText(label, g[:6], (j * (frame_w + 2) * zoom + 2, 6 * zoom), cv2.FONT_HERSHEY_PLAIN,
                    0.3 * zoom, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, cv2.cvtColor(np.concatenate([label, sheet], axis=0), cv2.COLOR_RGB2BGR))
