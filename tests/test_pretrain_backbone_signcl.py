"""examples/pretrain_backbone_signcl.py: SignCL's temporal contrastive loss as a self-supervised stage for the
ResNet-18 on a data directory's own training videos; its file loads through --visual-backbone-weights."""
import json
import os
import sys

import pytest
import torch
import torchvision

from helpers import assert_resnet18_file, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from pretrain_backbone_signcl import signcl_loss  # noqa: E402


def test_signcl_loss_pulls_neighbours_and_pushes_far_frames():
    # one window of 4 frames on a line at 0, 1, 3, 10; a second window of 2 valid frames (then padding)
    a = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    b = torch.tensor([[0.0], [5.0], [100.0], [100.0]])  # the padding must not count
    feats = torch.stack([a, b])
    loss, pos, neg = signcl_loss(feats, torch.tensor([4, 2]), torch.tensor([1, 1]), max_distance=8.0)
    # neighbour pairs (each counted both ways): a: 1, 2, 7 -> squares 1, 4, 49; b: 5 -> 25
    assert pos.item() == pytest.approx(2 * (1 + 4 + 49 + 25) / 8)
    # far pairs (|i - j| > 1) of a only: (0,2) d 3, (0,3) d 10, (1,3) d 9 -> max(0, 8 - d)^2 = 25, 0, 0
    assert neg.item() == pytest.approx(2 * 25 / 6)
    assert loss.item() == pytest.approx(pos.item() + neg.item())
    # a larger margin leaves only (0,3): pushed beyond max_distance already
    _, _, neg = signcl_loss(feats, torch.tensor([4, 2]), torch.tensor([2, 2]), max_distance=8.0)
    assert neg.item() == 0.0


def test_signcl_backbone_is_a_torchvision_resnet18_state_dict(stage1, tmp_path):
    out = tmp_path / "signcl.pth"
    proc = run([sys.executable, "examples/pretrain_backbone_signcl.py", stage1["data"], "--out", out, "--epochs", "1",
                "--window", "4", "--videos-per-batch", "4", "--threads", "1"], label="pretrain_backbone_signcl.py")
    summary = json.loads(proc.stdout)
    assert summary["init"] is None and summary["train_videos"] > 0 and len(summary["history"]) == 1
    assert summary["history"][0]["train_loss"] > 0 and summary["history"][0]["valid_loss"] > 0
    assert_resnet18_file(out)
    # --init: starts from that file (here the one just written), and a file of another network is one line
    bad = tmp_path / "bad.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), bad)
    refused = run([sys.executable, "examples/pretrain_backbone_signcl.py", stage1["data"], "--out",
                   tmp_path / "x.pth", "--init", bad], check=False)
    assert refused.returncode != 0 and not (tmp_path / "x.pth").exists()
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"--init: {bad}: not a torchvision ResNet-18 state dict"), refused.stderr
