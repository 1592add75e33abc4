"""Writers of video frames: image folders and mp4 files (frames are RGB uint8 arrays)."""
import os
from typing import Sequence

import cv2
import numpy as np


def write_image_folder(folder: str, frames: Sequence[np.ndarray], pattern: str = "images{:04d}.png") -> None:
    """One image per frame, numbered from 1; the format follows ``pattern``'s extension."""
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        path = os.path.join(folder, pattern.format(i))
        if not cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")


def write_mp4(path: str, frames: Sequence[np.ndarray], fps: float = 25.0) -> None:
    h, w = frames[0].shape[:2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write mp4 here: {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
