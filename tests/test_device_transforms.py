"""warp_frames (the augmentation as batched tensor operations) gives ClipTransform's pixels for the same
drawn parameters, up to interpolation: OpenCV uses 5-bit fixed-point bilinear weights, torch floats.
Measured here (224 px out of 256): mean |difference| 0.07-0.19 grey levels, max 1; exact for a plain
crop of frames already at the resize size and for INTER_AREA shrinks without augmentation. The warp runs on
``helpers.TEST_DEVICE`` (FLALLM_TEST_DEVICE=cuda on a GPU machine: benchmarks/device_run.sh)."""
import numpy as np
import pytest
import torch

from flallm_plugin.data.device_transforms import inverse_matrices, warp_frames
from flallm_plugin.data.transforms import ClipTransform
from helpers import TEST_DEVICE

AUG = dict(enabled=True, p=1.0, rotate=30, scale=0.2, translate=10)


def smooth_frames(h, w, n=3):
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([128 + 100 * np.sin(xx / 9.0 + k), 128 + 100 * np.cos(yy / 13.0 - k),
                      ((xx // 20 + yy // 20) % 2) * 200.0], -1).clip(0, 255).astype(np.uint8) for k in range(n)]


def noise_frames(h, w, n=3):
    r = np.random.RandomState(1)
    return [r.randint(0, 256, (h, w, 3)).astype(np.uint8) for _ in range(n)]


def _diff(frames, augment, seed):
    t = ClipTransform(256, 224, train=True, augmentation=dict(AUG, enabled=augment))
    want = torch.from_numpy(t(frames, np.random.RandomState(seed))).float()
    params = t.draw(np.random.RandomState(seed))  # the same draws as the CPU path's
    got = warp_frames(torch.from_numpy(np.stack(frames)).to(TEST_DEVICE),
                      inverse_matrices([t.matrix(params)] * len(frames)).to(TEST_DEVICE), 256, 224).cpu()
    assert got.shape == (len(frames), 3, 224, 224) and got.dtype == torch.float32
    return (got.permute(0, 2, 3, 1).round().clamp(0, 255) - want).abs()


@pytest.mark.parametrize("frames", [smooth_frames(260, 210), noise_frames(260, 210), smooth_frames(300, 320),
                                    smooth_frames(256, 256)], ids=["phoenix-size", "noise", "shrink", "no-resize"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_parameters_same_pixels(frames, seed):
    d = _diff(frames, augment=True, seed=seed)
    assert float(d.mean()) < 0.3 and float(d.max()) <= 1.0, (float(d.mean()), float(d.max()))


@pytest.mark.parametrize("frames", [smooth_frames(256, 256), smooth_frames(300, 320)], ids=["no-resize", "shrink"])
def test_plain_crop_is_exact(frames):
    assert float(_diff(frames, augment=False, seed=3).max()) == 0.0


def test_each_frame_its_own_matrix():
    """A batch of clips: each frame warped by its clip's matrix, as one call."""
    t = ClipTransform(256, 224, train=True, augmentation=AUG)
    clips = [smooth_frames(260, 210, 2), noise_frames(260, 210, 2)]
    params = [t.draw(np.random.RandomState(s)) for s in (5, 6)]
    assert params[0] != params[1]
    inv = inverse_matrices([t.matrix(p) for p in params for _ in range(2)])
    got = warp_frames(torch.from_numpy(np.stack(clips[0] + clips[1])).to(TEST_DEVICE), inv.to(TEST_DEVICE), 256, 224).cpu()
    for i, (clip, s) in enumerate(zip(clips, (5, 6))):
        want = torch.from_numpy(t(clip, np.random.RandomState(s))).float()
        d = (got[2 * i: 2 * i + 2].permute(0, 2, 3, 1).round() - want).abs()
        assert float(d.mean()) < 0.3 and float(d.max()) <= 1.0


def test_bad_shapes_are_one_line_errors():
    frames = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"^expected N x H x W x 3 frames, got shape \(2, 8, 8\)$"):
        warp_frames(frames[..., 0], torch.zeros(2, 2, 3), 8, 4)
    with pytest.raises(ValueError, match=r"^expected 2 x 2 x 3 inverse matrices, got shape \(1, 2, 3\)$"):
        warp_frames(frames, torch.zeros(1, 2, 3), 8, 4)
