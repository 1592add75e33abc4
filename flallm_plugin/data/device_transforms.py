""":class:`~flallm_plugin.data.transforms.ClipTransform`'s resize + crop + affine warp as batched
tensor operations, for running the augmentation on the model's device (``--augment-on-device``).

The data loader's time per frame is PNG decoding (64 %), the affine warp (17 %) and resizing
(7.5 %). With ``--augment-on-device`` the loader only decodes and hands over the decoded frames with the parameters
``ClipTransform.draw`` drew from the same RNG; the task's steps call :func:`warp_frames` on the
batch's device (``SignTranslationTask.augment_on_device``) and the model normalises the result as
it does the loader's crops (docs/performance.md: "Device-side augmentation").

Same parameters, same pixels up to interpolation: OpenCV resizes and warps with 5-bit fixed-point
bilinear weights, torch in floating point (tests/test_device_transforms.py states the differences).
"""
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def inverse_matrices(matrices: Sequence[np.ndarray]) -> torch.Tensor:
    """N 2 x 3 forward maps (resized frame -> output, as ``cv2.warpAffine`` takes them) -> N x 2 x 3
    inverse maps (output pixel -> resized-frame pixel), float64."""
    m = torch.as_tensor(np.stack([np.asarray(x, dtype=np.float64) for x in matrices]))
    full = torch.cat([m, m.new_tensor([0.0, 0.0, 1.0]).expand(m.size(0), 1, 3)], dim=1)
    return torch.linalg.inv(full)[:, :2]


def area_weights(out: int, size: int, device=None) -> torch.Tensor:
    """``out x size`` matrix averaging ``size`` pixels into ``out`` (``out <= size``) by the fraction of
    each input pixel an output pixel covers: OpenCV's INTER_AREA shrink along one axis."""
    scale = size / out
    lo = torch.arange(out, dtype=torch.float64) * scale
    j = torch.arange(size, dtype=torch.float64)
    overlap = (torch.minimum(lo[:, None] + scale, j[None, :] + 1) - torch.maximum(lo[:, None], j[None, :])).clamp(min=0)
    return (overlap / scale).float().to(device)


def warp_frames(frames: torch.Tensor, inverse: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """``N x H x W x 3`` uint8 frames -> ``N x 3 x crop x crop`` float (0..255): resize to ``resize``
    (bilinear; area averaging when it shrinks the frame, as ``ClipTransform``), then sample output pixel
    (x, y) at ``inverse[n] @ (x, y, 1)`` of the resized frame (bilinear, zeros outside), OpenCV's pixel
    convention (integer coordinates at pixel centres). ``inverse``: N x 2 x 3, e.g. from
    :func:`inverse_matrices`."""
    if frames.dim() != 4 or frames.size(-1) != 3:
        raise ValueError(f"expected N x H x W x 3 frames, got shape {tuple(frames.shape)}")
    if inverse.shape != (frames.size(0), 2, 3):
        raise ValueError(f"expected {frames.size(0)} x 2 x 3 inverse matrices, got shape {tuple(inverse.shape)}")
    x = frames.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    if (h, w) != (resize, resize):
        if h * w > resize * resize and h >= resize and w >= resize:  # OpenCV's INTER_AREA proper
            x = area_weights(resize, h, x.device) @ x @ area_weights(resize, w, x.device).T
        else:  # INTER_LINEAR (ClipTransform's INTER_AREA when one side grows: approximated by bilinear)
            x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
    ys, xs = torch.meshgrid(torch.arange(crop, dtype=torch.float64, device=x.device),
                            torch.arange(crop, dtype=torch.float64, device=x.device), indexing="ij")
    dst = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # crop*crop x 3
    src = torch.einsum("nij,pj->npi", inverse.to(x.device, torch.float64), dst)  # N x crop*crop x 2 (x, y)
    grid = ((2 * src + 1) / resize - 1).reshape(-1, crop, crop, 2).to(x.dtype)  # align_corners=False
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
