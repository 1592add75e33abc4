"""The data loader's fast paths give the pixels of the plain OpenCV recipe, and its batches are zero-padded."""
import cv2
import numpy as np
import pytest
import torch

from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetItem, new_batch_tensor
from flallm_plugin.data.transforms import ClipTransform
from flallm_plugin.data.video_io import read_image


def _reference_transform(t: ClipTransform, frames, rng):
    """The recipe of ClipTransform written plainly: BGR->RGB done, resize, then crop or warp, one copy each."""
    x0, y0, m = t._affine(rng)
    r, c = t.resize, t.crop
    out = []
    for f in frames:
        if f.shape[:2] != (r, r):
            area = f.shape[0] * f.shape[1] > r * r
            f = cv2.resize(f, (r, r), interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)
        if m is None:
            out.append(f[y0 : y0 + c, x0 : x0 + c].copy())
        else:
            out.append(cv2.warpAffine(f, m, (c, c), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=0))
    return np.stack(out)


@pytest.mark.parametrize("shape", [(260, 210), (40, 40), (300, 300)])
@pytest.mark.parametrize("train", [True, False])
def test_clip_transform_equals_the_plain_recipe(shape, train):
    rs = np.random.RandomState(3)
    frames = [rs.randint(0, 256, shape + (3,), dtype=np.uint8) for _ in range(4)]
    aug = {"enabled": True, "p": 1.0, "rotate": 30.0, "scale": 0.2, "translate": 10.0}
    for seed in range(3):  # warped and (eval) plain crops
        t = ClipTransform(48, 40, train=train, augmentation=aug)
        got = t(frames, np.random.RandomState(seed))
        want = _reference_transform(t, frames, np.random.RandomState(seed))
        assert got.dtype == np.uint8 and got.shape == (4, 40, 40, 3)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ext,kind", [(".png", "rgb"), (".png", "rgba"), (".png", "gray"), (".jpg", "rgb"),
                                      (".bmp", "rgb")])
def test_read_image_is_rgb_of_opencvs_bgr(tmp_path, ext, kind):
    rs = np.random.RandomState(0)
    img = rs.randint(0, 256, (26, 21, {"rgb": 3, "rgba": 4, "gray": 1}[kind]), dtype=np.uint8)
    path = str(tmp_path / f"f{ext}")
    assert cv2.imwrite(path, img[:, :, 0] if kind == "gray" else img)
    want = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    got = read_image(path)
    assert got.shape == (26, 21, 3)
    np.testing.assert_array_equal(got, want)


def test_batch_tensor_is_zero_padded_in_the_main_process_and_in_workers():
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDataset

    sources = [torch.full((n, 2, 2, 3), 7, dtype=torch.uint8) for n in (3, 1, 2)]

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return [SignTranslationDatasetItem(index=j, source=s) for j, s in enumerate(sources)]

    def collate(batch):
        # freed memory of the batch's size, all 255: what an uninitialised batch would likely reuse
        junk = torch.full((3, 3, 2, 2, 3), 255, dtype=torch.uint8)
        del junk
        # the dataset's collater without a dictionary (no targets): only the source part is used
        ds = SignTranslationDataset.__new__(SignTranslationDataset)
        ds.tgt_tokens, ds.tgt_texts, ds.split = None, None, "train"
        return ds.collater(batch[0])

    for workers in (0, 1):
        loader = torch.utils.data.DataLoader(Samples(), batch_size=1, num_workers=workers, collate_fn=collate)
        src = next(iter(loader))["net_input"]["src_tokens"]
        assert src.shape == (3, 3, 2, 2, 3)
        want = torch.zeros_like(src)
        for i, s in enumerate(sources):
            want[i, : s.size(0)] = 7
        assert torch.equal(src, want), workers


def test_new_batch_tensor_outside_workers_is_an_ordinary_tensor():
    t = new_batch_tensor(torch.zeros(1, dtype=torch.uint8), (2, 3))
    assert t.shape == (2, 3) and t.dtype == torch.uint8 and not t.is_shared()
