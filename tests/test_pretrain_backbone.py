"""examples/synthetic/pretrain_backbone.py: the ResNet-18 stand-in for ImageNet, trained on other signs by other
signers, loads through --visual-backbone-weights exactly as torchvision's file; a file that is not a ResNet-18
state dict stops with one line naming it."""
import json
import sys

import pytest
import torch
import torchvision

from flallm_plugin.models.visual_encoder import build_resnet18, load_resnet18_weights
from flallm_tools.synthetic.hard import SIGNS, make_signers, other_signs
from helpers import assert_resnet18_file, run


def test_other_signs_and_signers_are_not_the_benchmarks():
    import numpy as np

    others = other_signs()
    assert others and not set(others) & set(SIGNS.values())
    preset = {h.signer.name for h in make_signers(np.random.default_rng(1))}
    standin = {h.signer.name for h in make_signers(np.random.default_rng(1), first=9)}
    assert preset == {f"Signer{i:02d}" for i in range(1, 10)} and not preset & standin


def test_standin_is_a_torchvision_resnet18_state_dict(tmp_path):
    out = tmp_path / "standin.pth"
    proc = run([sys.executable, "examples/synthetic/pretrain_backbone.py", "--out", out, "--n-clips", "18",
                "--epochs", "1", "--batch-size", "32", "--n-signers", "3"], label="pretrain_backbone.py, 18 clips")
    summary = json.loads(proc.stdout)
    assert summary["clips"] == 18 and summary["train_frames"] > 0 and summary["held_out_frames"] > 0
    assert_resnet18_file(out, with_fc=True)  # torchvision's keys (fc too: the loader drops it)


@pytest.mark.parametrize("make,expected", [
    (lambda: {"conv1.weight": torch.zeros(64, 3, 7, 7)}, "missing keys"),
    (lambda: {**torchvision.models.resnet18(weights=None).state_dict(), "conv1.weight": torch.zeros(64, 3, 3, 3)},
     "size mismatch"),
    (lambda: torchvision.models.resnet34(weights=None).state_dict(), "unexpected keys"),
    (lambda: [1, 2, 3], "expected a ResNet-18 state dict"),
])
def test_a_file_that_is_not_a_resnet18_state_dict_is_named(tmp_path, make, expected):
    bad = tmp_path / "bad.pth"
    torch.save(make(), bad)
    with pytest.raises(ValueError) as e:
        load_resnet18_weights(build_resnet18(), str(bad))
    message = str(e.value)
    assert message.startswith(f"{bad}: ") and expected in message and "ResNet-18" in message
    assert "\n" not in message
