"""--augment-on-device: the loader only decodes; the task warps the batch on the model's device. The same
sample gets the same transform parameters, so the same pixels up to interpolation (OpenCV's fixed-point
bilinear vs torch's floats: mean |difference| < 0.3 grey levels, max 1) and the same loss; where it cannot
take effect it stops with one line."""
import os
import sys

import numpy as np
import pytest
import torch
from fairseq import options, tasks

from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetItem
from helpers import REPO, USER_DIR

sys.path.insert(0, str(REPO / "benchmarks"))
import loader_speed  # noqa: E402
import update_overhead  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return loader_speed.make_phoenix_sized_data(str(tmp_path_factory.mktemp("phoenix")), videos=3, frames=16)


def _task(data, *extra, rate=("--sampling-rate", "0.5")):
    args = options.parse_args_and_arch(options.get_training_parser(), [
        data, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny", "--cpu",
        "--seed", "3"] + list(rate) + list(extra))
    return tasks.setup_task(args)


def _batch(task, split, indices, epoch=2):
    task.load_dataset(split)
    ds = task.dataset(split)
    ds.set_epoch(epoch)
    return ds.collater([ds[i] for i in indices])


@pytest.mark.parametrize("split", ["train", "dev"])
def test_same_pixels_as_the_loader(data, split):
    indices = [0, 2, 1] if split == "train" else [0]
    want = _batch(_task(data), split, indices)
    raw = _batch(_task(data, "--augment-on-device"), split, indices)
    assert raw["net_input"]["src_tokens"].shape[2:] == (260, 210, 3)  # decoded, not transformed
    assert raw["net_input"]["src_warp"].shape == (len(indices), 2, 3)
    got = _task(data, "--augment-on-device").augment_on_device(raw)
    assert "src_warp" not in got["net_input"] and "src_warp" in raw["net_input"]  # the loader's batch untouched
    torch.testing.assert_close(got["net_input"]["src_lengths"], want["net_input"]["src_lengths"])
    torch.testing.assert_close(got["target"], want["target"])
    a, b = got["net_input"]["src_tokens"], want["net_input"]["src_tokens"]
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    d = (a.float() - b.float()).abs()
    assert float(d.mean()) < 0.3 and float(d.max()) <= 1.0, (float(d.mean()), float(d.max()))
    if split == "train":  # augmentation drew non-trivial warps: the check is not of plain crops
        assert not torch.allclose(raw["net_input"]["src_warp"][:, :, :2].double(), torch.eye(2, dtype=torch.float64))


def test_same_loss_through_fairseqs_trainer(data):
    losses = []
    for extra in ([], ["--augment-on-device"]):
        task, _, _, trainer = update_overhead.build_trainer(data, "sgd", extra=["--sampling-rate", "0.5"] + extra)
        task.load_dataset("train")
        ds = task.dataset("train")
        sample = ds.collater([ds[0], ds[1]])
        losses.append(float(trainer.train_step([sample])["loss"]))
        losses.append(float(trainer.valid_step(sample)["loss"]))
    assert losses[2:] == pytest.approx(losses[:2], rel=1e-3)
    assert losses[0] != losses[1]  # the step changed the model: the valid loss is another number


def test_cached_features_stop_with_one_line(tmp_path):
    (tmp_path / "dict.txt").write_text("a 1\n")
    (tmp_path / "config.yaml").write_text("input_type: features\nfeature_dim: 8\nvocab_filename: dict.txt\n")
    with pytest.raises(ValueError, match=r"^--augment-on-device needs video input, but .*config\.yaml is for cached "
                                         r"features: drop the option$"):
        _task(str(tmp_path), "--augment-on-device", rate=())


def test_frames_of_several_sizes_stop_with_one_line(data):
    task = _task(data, "--augment-on-device")
    task.load_dataset("train")
    ds = task.dataset("train")
    warp = np.eye(3)[:2]
    items = [SignTranslationDatasetItem(i, torch.zeros(2, h, 40, 3, dtype=torch.uint8), ds.tgt_tokens[i], warp)
             for i, h in ((0, 30), (1, 32))]
    with pytest.raises(SignDataError, match=r"^.*train\.tsv: --augment-on-device batches frames as decoded, and these "
                                            r"videos' frame sizes differ: .* \(30, 40\), .* \(32, 40\); prepare the "
                                            r"frames to one size \(or drop the option\)$"):
        ds.collater(items)
    assert os.path.isdir(data)
