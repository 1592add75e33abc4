"""Clip-level spatial transforms on uint8 frames (the GFSLT-VLP recipe).

Every frame of a clip gets the same transform: resize to ``resize x resize``, crop
``crop x crop`` (random position in training, centre otherwise) and, in training,
each with probability ``p``: rotation within +-``rotate`` degrees, rescale within
+-``scale`` and translation within +-``translate`` pixels. The crop and the
augmentations are composed into one affine warp per frame.
"""
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np


class ClipTransform(object):
    def __init__(self, resize: int, crop: int, train: bool, augmentation: Optional[Dict] = None):
        if crop > resize:
            raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
        self.resize = resize
        self.crop = crop
        self.train = train
        aug = augmentation or {}
        self.augment = bool(train and aug.get("enabled", False))
        self.p = float(aug.get("p", 0.5))
        self.rotate = float(aug.get("rotate", 0.0))
        self.scale = float(aug.get("scale", 0.0))
        self.translate = float(aug.get("translate", 0.0))

    def draw(self, rng: np.random.RandomState) -> Tuple[int, int, float, float, float, float]:
        """The clip's transform parameters ``(x0, y0, angle, scale, tx, ty)``: crop offset in the
        resized frame, rotation (degrees), rescale and translation (px), drawn from ``rng``."""
        r, c = self.resize, self.crop
        if self.train:
            x0, y0 = rng.randint(0, r - c + 1), rng.randint(0, r - c + 1)
        else:
            x0, y0 = (r - c) // 2, (r - c) // 2
        angle, scale, tx, ty = 0.0, 1.0, 0.0, 0.0
        if self.augment:
            if rng.rand() < self.p:
                angle = rng.uniform(-self.rotate, self.rotate)
            if rng.rand() < self.p:
                scale = rng.uniform(1.0 - self.scale, 1.0 + self.scale)
            if rng.rand() < self.p:
                tx, ty = rng.uniform(-self.translate, self.translate, size=2)
        return int(x0), int(y0), float(angle), float(scale), float(tx), float(ty)

    def matrix(self, params) -> np.ndarray:
        """2 x 3 affine map from resized-frame pixels to output pixels for ``draw``'s parameters:
        crop at (x0, y0), then rotate/scale about the crop centre, then translate."""
        x0, y0, angle, scale, tx, ty = params
        c = self.crop
        m = cv2.getRotationMatrix2D((c / 2.0, c / 2.0), angle, scale)
        m[:, 2] += (tx, ty)
        crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        return np.vstack([m, [0.0, 0.0, 1.0]]).dot(crop)[:2]

    def _affine(self, rng: np.random.RandomState):
        """(x0, y0, None) for a plain crop at (x0, y0), else (x0, y0, 2x3 warp matrix)."""
        params = self.draw(rng)
        x0, y0, angle, scale, tx, ty = params
        if angle == 0.0 and scale == 1.0 and tx == 0.0 and ty == 0.0:
            return x0, y0, None
        return x0, y0, self.matrix(params)

    def __call__(self, frames: List[np.ndarray], rng: Optional[np.random.RandomState] = None) -> np.ndarray:
        """frames: list of H x W x 3 uint8 -> T x crop x crop x 3 uint8."""
        rng = rng if rng is not None else np.random.RandomState(0)
        x0, y0, m = self._affine(rng)
        r, c = self.resize, self.crop
        out = np.empty((len(frames), c, c, 3), dtype=np.uint8)
        resized = np.empty((r, r, 3), dtype=np.uint8)  # OpenCV writes into these: no copy per frame
        for i, f in enumerate(frames):
            if f.shape[0] != r or f.shape[1] != r:
                shrink = f.shape[0] * f.shape[1] > r * r
                f = cv2.resize(f, (r, r), dst=resized, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            if m is None:
                out[i] = f[y0 : y0 + c, x0 : x0 + c]
            else:
                cv2.warpAffine(
                    f, m, (c, c), dst=out[i], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
                )
        return out
