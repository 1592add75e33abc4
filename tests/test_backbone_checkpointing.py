"""--checkpoint-backbone-activations: same step as without it, BatchNorm statistics updated once, refused where frozen."""
import copy
import os
import sys

import pytest
import torch

import flallm_plugin  # noqa: F401
from fairseq import options, tasks
from flallm_plugin.models.visual_encoder import VisualEncoder
from helpers import USER_DIR, run


def _step(encoder, video, lengths, weight):
    """One training forward/backward of ``encoder``; returns how often the CNN's layer1 ran."""
    calls = []
    hook = encoder.backbone.layer1.register_forward_pre_hook(lambda m, i: calls.append(1))
    encoder.train()
    feats, out_lengths = encoder(video, lengths)
    (feats * weight[:, : feats.size(1)]).sum().backward()
    hook.remove()
    return len(calls)


@pytest.mark.parametrize("chunk", [0, 3])
def test_same_gradients_and_batchnorm_statistics(chunk):
    torch.manual_seed(0)
    plain = VisualEncoder(temporal_dim=16, max_frames_per_chunk=chunk)
    ckpt = copy.deepcopy(plain)
    ckpt.checkpoint_backbone = True
    video = torch.randint(0, 256, (2, 5, 40, 40, 3), dtype=torch.uint8)
    lengths = torch.tensor([5, 3])
    weight = torch.randn(2, 5, 16)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    assert _step(plain, video, lengths, weight) == (1 if chunk == 0 else 3)
    # each checkpointed stage runs again in the backward pass: the flag took effect
    assert _step(ckpt, video, lengths, weight) == 2 * (1 if chunk == 0 else 3)
    grads = dict(ckpt.named_parameters())
    for name, p in plain.named_parameters():
        assert p.grad is not None and grads[name].grad is not None, name
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-5, atol=1e-5, msg=name)
    state = ckpt.state_dict()
    for name, buf in plain.state_dict().items():
        torch.testing.assert_close(state[name], buf, rtol=1e-5, atol=1e-5, msg=name)
    # the statistics did move, once per chunk (not once more for the recomputation)
    assert not torch.equal(before["backbone.bn1.running_mean"], state["backbone.bn1.running_mean"])
    assert int(state["backbone.layer4.1.bn2.num_batches_tracked"]) == (1 if chunk == 0 else 3)
    assert ckpt.backbone.bn1.momentum == plain.backbone.bn1.momentum


def test_no_recomputation_in_eval_or_without_gradients():
    torch.manual_seed(0)
    enc = VisualEncoder(temporal_dim=16, checkpoint_backbone=True)
    video = torch.randint(0, 256, (1, 2, 32, 32, 3), dtype=torch.uint8)
    enc.eval()
    calls = []
    enc.backbone.layer1.register_forward_pre_hook(lambda m, i: calls.append(1))
    with torch.no_grad():
        enc(video, torch.tensor([2]))
    enc.train()
    with torch.no_grad():
        enc(video, torch.tensor([2]))
    assert len(calls) == 2


@pytest.fixture(scope="module")
def video_data(phoenix_release, tmp_path_factory):
    data = str(tmp_path_factory.mktemp("ckpt_backbone") / "data")
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", phoenix_release, "--out-dir", data,
         "--resize", "32", "--crop", "28", "--vocab-size", "100"])
    return data


def test_fairseq_train_with_the_flag(video_data, tmp_path):
    save = str(tmp_path / "ckpt")
    run(["fairseq-train", video_data, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
         "--visual-backbone-weights", "none", "--checkpoint-backbone-activations", "--max-frames-per-chunk", "16",
         "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--optimizer", "adam",
         "--lr", "1e-3", "--max-update", "2", "--batch-size", "3", "--required-batch-size-multiple", "1", "--cpu",
         "--save-dir", save, "--num-workers", "0", "--no-epoch-checkpoints", "--disable-validation"],
        label="fairseq-train --checkpoint-backbone-activations")
    state = torch.load(os.path.join(save, "checkpoint_last.pt"), map_location="cpu", weights_only=False)
    assert state["cfg"]["model"].checkpoint_backbone_activations is True


@pytest.mark.parametrize("freeze", ["backbone+temporal", "backbone"])
def test_refused_where_the_backbone_is_frozen(video_data, freeze):
    args = options.parse_args_and_arch(options.get_training_parser(), [
        video_data, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "sign_mbart_tiny", "--cpu",
        "--batch-size", "4", "--required-batch-size-multiple", "1", "--pretrained-mbart", "none",
        "--freeze-visual", freeze, "--checkpoint-backbone-activations",
    ])
    task = tasks.setup_task(args)
    with pytest.raises(ValueError, match=f"--checkpoint-backbone-activations cannot take effect: the ResNet-18 is "
                                         f"frozen \\(--freeze-visual {freeze.replace('+', '.')}\\)"):
        task.build_model(args)
