"""The hard synthetic preset: a sign language whose translation does not saturate.

The demo dataset (:mod:`~flallm_tools.synthetic.weather`, 18 signs, 480 sentences)
saturates near 78 BLEU-4. This preset keeps its signer and painter and makes every part
harder, in the same release layouts (PHOENIX-2014-T frame folders by default, How2Sign
mp4 clips with ``layout="how2sign"``)::

    OUT/PHOENIX-2014-T/...                   (layout "phoenix", as weather.py writes it)
    OUT/how2sign_realigned_{train,val,test}.csv,
    OUT/{train,val,test}_rgb_front_clips/raw_videos/<SENTENCE_NAME>.mp4     (layout "how2sign")
    OUT/text_corpus.de.txt                   (text only, for the LLM)

*Signs.* 321 signs (:data:`~flallm_tools.synthetic.hard_language.SIGN_VOCABULARY`), each a
combination of a hand form (disc, ring, square, diamond, triangle in 4 directions, bar in 4
orientations), a location (8 one-handed, 6 two-handed), a movement (10: static, side to
side, up and down, downward / upward strokes, circle, diagonal, zigzag, pulsing size, arc),
the hands (one; two mirrored; two moving in opposite directions) and a colour-free
non-manual cue (none, a nod, a head shake). Every two signs differ in at least two of these
five attributes (:func:`check_signs_distinct`); the assignment of forms to signs is fixed
(it does not depend on the seed).

*Sentences.* 5-12 signs, signed time-topic-comment with the verb last and translated into
German with the verb second, articles, case, number, person, tense, separable verbs,
negation, compounds and context synonyms (:mod:`~flallm_tools.synthetic.hard_language`):
``GESTERN MANN ALT IX FRAU APFEL GEBEN`` -> "gestern hat der alte mann einer frau einen
apfel gegeben". The text has thousands of word types (inflected forms, compounds).

*Signing.* 9 signers differ in speed (7-10 frames per sign, 0-2 transition frames), body
position and scale, hand size, movement amplitude, co-articulation strength and colours.
Neighbouring signs are co-articulated: the first third of a sign starts displaced towards
where the previous sign ended and its last third moves towards where the next one starts,
and transitions are short or absent. Every video adds its own jitter (position, scale,
amplitude, background tint, speed, +-1 frame per sign).

*Splits.* Training starts with sentences that together show every sign, then random
sentences; dev and test sentences are drawn from the signs seen in training only and never
equal a training sentence (nor each other), so dev/test test new combinations of known signs.
Dev/test words may be unseen in training (a new compound, a new inflected form): the summary
counts them. The text corpus holds ``text_corpus_size`` sentences of the same grammar over all
signs.

Deterministic given the seed (byte-identical files). The default size (2000/200/200 videos,
56x70 frames, about 183,000 frames, 50,000 text sentences) takes about 65 s of CPU time on one
core (measured: 130 s wall on a shared 2-core machine; drawing and writing a frame costs about
0.35 ms); the command line is
``examples/synthetic/generate_dataset.py --preset hard``.
"""
import csv
import itertools
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from flallm_plugin.data.atomic_file import atomic_write_text, staged_output_dir
from flallm_tools.synthetic import hard_language as lang
from flallm_tools.synthetic.releases import (
    PHOENIX_DIR, how2sign_csv_path, write_how2sign_clip, write_how2sign_split, write_phoenix_corpus,
    write_phoenix_video,
)
from flallm_tools.synthetic.weather import (
    AMPLITUDE, BACKGROUND, CLOTHING, HAIR, HAND_RADIUS, LOCATIONS, NAME_PREFIX, REST, SKIN, SPLITS,
    TEXT_CORPUS_NAME, TWO_HAND_MIN_X, HandState, Signer, _blend, _is_synthetic, _motion, _Painter, _real_corpus,
    _rest_hands, _tint,
)

# --------------------------------------------------------------------------- signs

FORMS: Tuple[Tuple[str, float], ...] = (
    ("disc", 0.0), ("ring", 0.0), ("square", 0.0), ("square", 45.0),
    ("triangle", 0.0), ("triangle", 90.0), ("triangle", 180.0), ("triangle", 270.0),
    ("bar", 0.0), ("bar", 45.0), ("bar", 90.0), ("bar", 135.0),
)
HARD_LOCATIONS = dict(LOCATIONS, forehead=(6.0, -66.0), contra=(-28.0, 30.0))
TWO_HANDED_LOCATIONS = tuple(LOCATIONS)  # mirrored hands at "forehead" / "contra" would look like "chin" / "chest"
MOTIONS = ("static", "lr", "ud", "down", "up", "circle", "diag", "zigzag", "pulse", "arc")
HANDS = ("one", "sym", "alt")  # one hand; two mirrored; two moving in opposite directions
HEAD_CUES = ("none", "nod", "shake")
HEAD_AMPLITUDE = 7.0  # body units
FORM_SEED = 2014  # the fixed order in which sign forms are handed out


@dataclass(frozen=True)
class HardSign:
    form: Tuple[str, float]  # hand shape and its orientation (degrees)
    location: str
    motion: str
    hands: str
    head: str

    def attributes(self) -> Tuple:
        return self.form, self.location, self.motion, self.hands, self.head


def _valid(form, location, motion, hands) -> bool:
    if hands != "one" and location not in TWO_HANDED_LOCATIONS:
        return False
    # opposite static or pulsing hands look exactly like mirrored ones
    return not (hands == "alt" and motion in ("static", "pulse"))


def make_signs(glosses: Sequence[str] = lang.SIGN_VOCABULARY, min_diff: int = 2) -> Dict[str, HardSign]:
    """A form for every gloss: a greedy code over the five attributes with minimum distance ``min_diff``.

    Candidates without a head cue come first, so head cues are used only where the manual
    attributes run out.
    """
    rng = np.random.default_rng(FORM_SEED)
    cands = [HardSign(*a) for a in itertools.product(FORMS, HARD_LOCATIONS, MOTIONS, HANDS, HEAD_CUES)
             if _valid(*a[:4])]
    cands = [cands[i] for i in rng.permutation(len(cands))]
    cands.sort(key=lambda c: c.head != "none")  # stable: random order within each group
    if min_diff != 2:
        raise ValueError("make_signs builds codes of minimum distance 2 only")
    seen = set()  # every chosen sign with one attribute blanked: a candidate matching one differs in <= 1
    chosen: List[HardSign] = []
    for c in cands:
        a = c.attributes()
        keys = [a[:k] + (None,) + a[k + 1:] for k in range(len(a))]
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        chosen.append(c)
        if len(chosen) == len(glosses):
            break
    if len(chosen) < len(glosses):
        raise ValueError(f"only {len(chosen)} distinct sign forms for {len(glosses)} glosses")
    return dict(zip(glosses, chosen))


SIGNS: Dict[str, HardSign] = make_signs()


def other_signs() -> List[HardSign]:
    """Every valid sign form that no gloss of the preset uses (for pre-training on *other* signs),
    in a fixed order. They share the attributes' values (forms, locations, movements) with the
    preset's signs, as ImageNet shares edges and shapes with any video, but not their combinations."""
    used = set(SIGNS.values())
    return [c for c in (HardSign(*a) for a in itertools.product(FORMS, HARD_LOCATIONS, MOTIONS, HANDS, HEAD_CUES)
                        if _valid(*a[:4])) if c not in used]


def check_signs_distinct(signs: Dict[str, HardSign] = None, min_diff: int = 2) -> None:
    """Raise if two signs differ in fewer than ``min_diff`` of (form, location, movement, hands, head cue)."""
    signs = SIGNS if signs is None else signs
    items = sorted(signs.items())
    for (a, sa), (b, sb) in itertools.combinations(items, 2):
        diff = sum(x != y for x, y in zip(sa.attributes(), sb.attributes()))
        if diff < min_diff:
            raise AssertionError(f"signs {a} and {b} differ in only {diff} attribute(s)")


def _movement(kind: str, t: float) -> Tuple[float, float, float]:
    """weather.py's movements plus upward strokes and an arc over the top."""
    if kind == "up":
        return 0.0, 1.0 - 2.0 * ((2.0 * t) % 1.0), 1.0
    if kind == "arc":
        return -math.cos(math.pi * t), -0.8 * math.sin(math.pi * t), 1.0
    return _motion(kind, t)


def _sign_state(spec: HardSign, t: float, amp: float) -> Tuple[HandState, HandState, Tuple[float, float]]:
    """Dominant hand, other hand and head offset of a sign at phase ``t``."""
    lx, ly = HARD_LOCATIONS[spec.location]
    ox, oy, size = _movement(spec.motion, t)
    shape, angle = spec.form
    if spec.hands != "one":
        lx = max(lx, TWO_HAND_MIN_X)
    dom = HandState(lx + amp * ox, ly + amp * oy, shape, angle, size)
    if spec.hands == "one":
        other = HandState(-REST[0], REST[1], "disc", 0.0, 1.0)
    elif spec.hands == "sym":
        other = HandState(-lx - amp * ox, ly + amp * oy, shape, -angle, size)
    else:
        other = HandState(-lx + amp * ox, ly - amp * oy, shape, -angle, size)
    wave = HEAD_AMPLITUDE * math.sin(2.0 * math.pi * 1.5 * t)
    head = {"none": (0.0, 0.0), "nod": (0.0, wave), "shake": (wave, 0.0)}[spec.head]
    return dom, other, head


# --------------------------------------------------------------------------- signers

N_SIGNERS = 9


@dataclass
class HardSigner:
    signer: Signer  # weather.py's signer: speed, placement, size, colours
    coarticulation: float  # how far a sign's ends move towards its neighbours (0..1)


def make_signers(rng: np.random.Generator, n: int = N_SIGNERS, first: int = 0) -> List[HardSigner]:
    """``n`` signers: speed, placement, scale, hand size, amplitude, co-articulation and colours differ.
    ``first`` > 0 numbers them from ``first + 1`` on, with the palettes that numbering gives (other signers)."""
    out = []
    for i in range(first, first + n):
        j = i // len(SKIN)  # the second round of palettes is shifted, so no two signers share all colours
        out.append(HardSigner(Signer(
            name=f"Signer{i + 1:02d}",
            frames_per_sign=7 + (i * 3) % 4,  # 7, 10, 9, 8, 7, ...
            transition=i % 3,
            dx=float(rng.uniform(-14, 14)),
            dy=float(rng.uniform(-8, 8)),
            scale=float(rng.uniform(0.88, 1.1)),
            hand_scale=float(rng.uniform(0.85, 1.15)),
            amplitude=float(rng.uniform(0.85, 1.15)),
            skin=_tint(SKIN[i % len(SKIN)], rng, 6),
            hair=_tint(HAIR[(i * 5 + j) % len(HAIR)], rng, 6),
            clothing=_tint(CLOTHING[(i * 7 + 2 * j) % len(CLOTHING)], rng, 6),
            background=_tint(BACKGROUND[(i * 5 + 1 + 3 * j) % len(BACKGROUND)], rng, 8),
        ), coarticulation=0.2 + 0.1 * (i % 4)))
    return out


# --------------------------------------------------------------------------- rendering


def _shift(h: HandState, dx: float, dy: float) -> HandState:
    return HandState(h.x + dx, h.y + dy, h.shape, h.angle, h.size)


def _timeline(signs: Sequence[HardSign], frames_per_sign: Sequence[int], transition: int, amp: float,
              coart: float, hold: Tuple[int, int]) -> List[Tuple[HandState, HandState, Tuple[float, float]]]:
    """Hand and head states of every frame: rest, co-articulated signs with short transitions, rest."""
    rest = _rest_hands() + ((0.0, 0.0),)
    raw = [[_sign_state(spec, i / n, amp) for i in range(n)] for spec, n in zip(signs, frames_per_sign)]
    signs = []
    for k, states in enumerate(raw):
        n = len(states)
        m = max(1, n // 3)
        prev_end = raw[k - 1][-1] if k > 0 else rest
        next_start = raw[k + 1][0] if k + 1 < len(raw) else rest
        out = []
        for i, (dom, other, head) in enumerate(states):
            w_in = coart * max(0.0, 1.0 - i / m)  # perseveration: starts where the previous sign ended
            w_out = coart * max(0.0, (i - (n - 1 - m)) / m)  # anticipation: moves towards the next start
            moved = []
            for h, p, q, s0, s1 in ((dom, prev_end[0], next_start[0], states[0][0], states[-1][0]),
                                    (other, prev_end[1], next_start[1], states[0][1], states[-1][1])):
                moved.append(_shift(h, w_in * (p.x - s0.x) + w_out * (q.x - s1.x),
                                     w_in * (p.y - s0.y) + w_out * (q.y - s1.y)))
            out.append((moved[0], moved[1], head))
        signs.append(out)
    frames = [rest] * hold[0]
    prev = rest
    for states in signs + [[rest]]:  # the last transition leads back to rest
        first = states[0]
        for j in range(1, transition + 1):
            a = j / (transition + 1)
            s = a * a * (3.0 - 2.0 * a)
            frames.append((_blend(prev[0], first[0], a), _blend(prev[1], first[1], a),
                           (prev[2][0] + s * (first[2][0] - prev[2][0]), prev[2][1] + s * (first[2][1] - prev[2][1]))))
        frames += states
        prev = states[-1]
    frames += [rest] * (hold[1] - 1)
    return frames


def render_video(glosses: Sequence[str], hs: HardSigner, frame_w: int, frame_h: int,
                 rng: np.random.Generator) -> List[np.ndarray]:
    """Frames (H x W x 3, RGB uint8) of one signed sentence; ``rng`` draws the per-video jitter."""
    return render_signs([SIGNS[g] for g in glosses], hs, frame_w, frame_h, rng)


def render_signs(signs: Sequence[HardSign], hs: HardSigner, frame_w: int, frame_h: int,
                 rng: np.random.Generator) -> List[np.ndarray]:
    """:func:`render_video` of any sign forms (e.g. :func:`other_signs`, which no gloss uses)."""
    signer = hs.signer
    painter = _Painter(frame_w, frame_h, signer.dx + rng.uniform(-4, 4), signer.dy + rng.uniform(-4, 4),
                       signer.scale * rng.uniform(0.96, 1.04))
    amp = AMPLITUDE * signer.amplitude * rng.uniform(0.88, 1.12)
    base_fps = signer.frames_per_sign + int(rng.integers(0, 2))
    fps = [max(5, base_fps + int(rng.integers(-1, 2))) for _ in signs]
    coart = float(np.clip(hs.coarticulation + rng.uniform(-0.08, 0.08), 0.0, 0.6))
    hold = (int(rng.integers(1, 3)), 1)
    background = _tint(signer.background, rng, 10)
    sleeve = tuple(min(255, c + 22) for c in signer.clothing)
    skin = tuple(min(255, c + 18) for c in signer.skin)
    radius = HAND_RADIUS * signer.hand_scale

    base = np.empty((frame_h, frame_w, 3), dtype=np.uint8)
    base[:] = background
    painter.torso(base, signer)
    out = []
    for dom, other, (hx, hy) in _timeline(signs, fps, signer.transition, amp, coart, hold):
        img = base.copy()
        painter.head(img, signer, hx, hy)
        painter.hands(img, dom, other, sleeve, radius, skin)
        out.append(img)
    return out


# --------------------------------------------------------------------------- splits


def _plan(n_train: int, n_dev: int, n_test: int, seed: int):
    """Sign sequences of each split: a cover of all signs, then random; dev/test held out."""
    r_cover, r_train, r_dev, r_test, r_signers, r_assign = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6))
    train: List[Tuple[str, ...]] = []
    taken = set()
    covered = set()
    for sign in (lang.SIGN_VOCABULARY[i] for i in r_cover.permutation(len(lang.SIGN_VOCABULARY))):
        if len(train) >= n_train:
            break
        if sign in covered:
            continue
        s = lang.sample_sentence(r_cover, must=sign)
        if s not in taken:
            train.append(s)
            taken.add(s)
            covered.update(s)
    for _ in range(100 * n_train):
        if len(train) >= n_train:
            break
        s = lang.sample_sentence(r_train)
        if s not in taken:
            train.append(s)
            taken.add(s)
    if len(train) < n_train:
        raise ValueError(f"could not draw {n_train} distinct training sentences")
    train = [train[i] for i in r_train.permutation(len(train))]
    allowed = frozenset(g for s in train for g in s)
    texts = {lang.translate(s) for s in train}
    plan = {"train": train}
    for split, n, r in (("dev", n_dev, r_dev), ("test", n_test, r_test)):
        chosen = []
        for _ in range(200 * n):
            if len(chosen) >= n:
                break
            s = lang.sample_sentence(r, allowed=allowed)
            text = lang.translate(s)
            if s not in taken and text not in texts:
                chosen.append(s)
                taken.add(s)
                texts.add(text)
        if len(chosen) < n:
            raise ValueError(f"n_train={n_train} is too small: only {len(chosen)} of {n} {split} sentences "
                             "could be drawn from the training signs without repeating a training sentence")
        plan[split] = chosen
    signers = make_signers(r_signers)
    videos = {}
    for split in SPLITS:
        seqs = plan[split]
        who = (np.arange(len(seqs)) % len(signers))[r_assign.permutation(len(seqs))]
        videos[split] = [(f"{NAME_PREFIX}{split}_{i:05d}", int(who[i]), seqs[i]) for i in range(len(seqs))]
    return videos, signers


# --------------------------------------------------------------------------- output

LAYOUTS = ("phoenix", "how2sign")
HOW2SIGN_SPLITS = {"train": "train", "dev": "val", "test": "test"}  # ours -> release name
HOW2SIGN_FPS = 25.0


def _how2sign_entries() -> List[str]:
    return ([os.path.basename(how2sign_csv_path("", s)) for s in HOW2SIGN_SPLITS.values()]
            + [f"{s}_rgb_front_clips" for s in HOW2SIGN_SPLITS.values()])


def _how2sign_is_synthetic(out_root: str) -> bool:
    found = False
    for s in HOW2SIGN_SPLITS.values():
        path = how2sign_csv_path(out_root, s)
        if os.path.isfile(path):
            found = True
            with open(path, encoding="utf-8") as f:
                rows = list(csv.reader(f, delimiter="\t"))[1:]
            if any(len(r) < 4 or not r[3].startswith(NAME_PREFIX) for r in rows):
                return False
    return found


def _how2sign_real_csv(out_root: str):
    """A How2Sign CSV under ``out_root`` naming a clip this generator did not write, or None."""
    for s in HOW2SIGN_SPLITS.values():
        path = how2sign_csv_path(out_root, s)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                rows = list(csv.reader(f, delimiter="\t"))[1:]
            if any(r and (len(r) < 4 or not r[3].startswith(NAME_PREFIX)) for r in rows):
                return path
    return None


def _existing(out_root: str, layout: str) -> List[str]:
    names = [PHOENIX_DIR] if layout == "phoenix" else _how2sign_entries()
    return [os.path.join(out_root, n) for n in names if os.path.exists(os.path.join(out_root, n))]


def _check_output(out_root: str, layout: str, overwrite: bool) -> None:
    """Refuse to replace data this generator did not write (before any work is done); ``overwrite``
    replaces a release without corpus files naming other videos (an interrupted one), never real data."""
    if not _existing(out_root, layout):
        return
    real = _real_corpus(out_root) if layout == "phoenix" else _how2sign_real_csv(out_root)
    if real is not None:
        raise FileExistsError(
            f"{real} names videos this generator did not write (real data?): {', '.join(_existing(out_root, layout))} "
            "is never replaced, --overwrite included; remove it yourself or choose another output folder"
        )
    if overwrite:
        return
    synthetic = _is_synthetic(out_root) if layout == "phoenix" else _how2sign_is_synthetic(out_root)
    if not synthetic:
        raise FileExistsError(f"{', '.join(_existing(out_root, layout))} exist(s) and do(es) not look generated "
                              "by this script; pass overwrite=True (--overwrite) to replace")


def _stats(values: Sequence[int]) -> Dict:
    return {"min": min(values, default=0), "mean": round(float(np.mean(values)), 1) if values else 0.0,
            "max": max(values, default=0)}


def generate_hard(out_root: str, n_train: int = 2000, n_dev: int = 200, n_test: int = 200, seed: int = 1,
                  frame_w: int = 56, frame_h: int = 70, text_corpus_size: int = 50000, layout: str = "phoenix",
                  overwrite: bool = False, verbose: bool = False) -> Dict:
    """Write the hard synthetic dataset under ``out_root`` in ``layout`` and return a summary.

    The release is written under a temporary folder in ``out_root`` and moved into place at
    the end (replacing an earlier synthetic release of the same layout; anything else raises
    :class:`FileExistsError` unless ``overwrite``, and real data, whose corpus names other videos,
    always does). ``summary["data_root"]`` is the
    ``--data-root`` of ``preprocess/prep_phoenix14t.py`` / ``prep_how2sign.py``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if min(n_train, frame_w, frame_h) < 1 or min(n_dev, n_test, text_corpus_size) < 0:
        raise ValueError("n_train and the frame size must be >= 1; n_dev, n_test, text_corpus_size >= 0")
    check_signs_distinct()
    t0 = time.perf_counter()
    out_root = os.path.abspath(out_root)
    os.makedirs(out_root, exist_ok=True)
    _check_output(out_root, layout, overwrite)
    videos, signers = _plan(n_train, n_dev, n_test, seed)
    if verbose:
        print(f"[hard] planned {sum(len(v) for v in videos.values())} videos in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)

    summary: Dict = {"out_root": out_root, "data_root": out_root, "layout": layout, "seed": seed,
                     "frame_size": f"{frame_w}x{frame_h}", "signers": [h.signer.name for h in signers],
                     "splits": {}}
    with staged_output_dir(out_root) as tmp_root:  # the finished release replaces an earlier one
        for si, split in enumerate(SPLITS):
            rows, lengths = [], []
            for i, (name, who, glosses) in enumerate(videos[split]):
                rng = np.random.default_rng(np.random.SeedSequence([seed, si, i]))
                frames = render_video(glosses, signers[who], frame_w, frame_h, rng)
                text = lang.translate(glosses)
                speaker = signers[who].signer.name
                if layout == "phoenix":
                    write_phoenix_video(tmp_root, split, name, frames)
                    rows.append((name, speaker, " ".join(glosses), text))
                else:
                    release = HOW2SIGN_SPLITS[split]
                    write_how2sign_clip(tmp_root, release, f"{name}-rgb_front", frames)
                    rows.append((speaker, f"{speaker}-rgb_front", name, f"{name}-rgb_front", "0.0",
                                 f"{len(frames) / HOW2SIGN_FPS:.2f}", text))
                lengths.append(len(frames))
            if layout == "phoenix":
                write_phoenix_corpus(tmp_root, split, rows)
            else:
                write_how2sign_split(tmp_root, HOW2SIGN_SPLITS[split], rows)
            summary["splits"][split] = {
                "videos": len(lengths), "frames": int(sum(lengths)), "frames_per_video": _stats(lengths),
                "signs_per_video": _stats([len(g) for _, _, g in videos[split]]),
                "signers": len({w for _, w, _ in videos[split]}),
            }
            if verbose:
                print(f"[hard] {split}: {len(lengths)} videos, {sum(lengths)} frames, "
                      f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for path in _existing(out_root, layout):
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)

    corpus_rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    corpus = [lang.translate(lang.sample_sentence(corpus_rng)) for _ in range(text_corpus_size)]
    corpus_path = os.path.join(out_root, TEXT_CORPUS_NAME)
    atomic_write_text(corpus_path, lambda f: f.writelines(s + "\n" for s in corpus))

    words = {s: {w for _, _, g in videos[s] for w in lang.translate(g).split()} for s in SPLITS}
    train_signs = {g for _, _, gs in videos["train"] for g in gs}
    summary.update({
        "release_root": os.path.join(out_root, PHOENIX_DIR) if layout == "phoenix" else out_root,
        "sign_vocab": len(lang.SIGN_VOCABULARY),
        "train_sign_vocab": len(train_signs),
        "train_word_types": len(words["train"]),
        "dev_test_word_types_unseen_in_train": len((words["dev"] | words["test"]) - words["train"]),
        "text_corpus": {"path": corpus_path, "sentences": len(corpus), "distinct_sentences": len(set(corpus)),
                        "word_types": len({w for s in corpus for w in s.split()})},
        "seconds": round(time.perf_counter() - t0, 2),
    })
    return summary
