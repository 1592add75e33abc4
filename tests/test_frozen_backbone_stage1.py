"""Stage 1 on cached ResNet features: flallm-extract-features --visual-backbone-weights keeps every frame's
ResNet-18 features, light_t trains its temporal module, VL-Adapter and Light-T on them (sampled as video is)
with the ResNet frozen, and the checkpoint then reads video exactly as it read the features."""
import os

import numpy as np
import pytest
import torch
from torchvision.models import resnet18

from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator
from flallm_plugin.models.visual_encoder import VisualEncoder
from flallm_plugin.scoring.generate_output import parse_generate_lines
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]
TRAIN = ["--arch", "light_t_tiny", "--criterion", "label_smoothed_cross_entropy", "--optimizer", "adam",
         "--lr", "1e-3", "--batch-size", "4", "--no-epoch-checkpoints", "--disable-validation"]


def last_line(proc):
    return (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1]


@pytest.fixture(scope="module")
def frozen(stage1, tmp_path_factory):
    """A torchvision-format ResNet-18 file, the video data's frame-level features from it, and a light_t
    trained 2 epochs on those features."""
    root = tmp_path_factory.mktemp("frozen_backbone")
    torch.manual_seed(0)
    weights = str(root / "resnet18.pth")
    torch.save(resnet18(weights=None).state_dict(), weights)
    feats = str(root / "frame_feats")
    run(["flallm-extract-features", "--data", stage1["data"], "--visual-backbone-weights", weights, "--level",
         "frame", "--out-dir", feats, "--cpu", "--num-workers", "0"])
    save = str(root / "ckpt")
    run(["fairseq-train", feats, *COMMON, *TRAIN, "--visual-backbone-weights", weights, "--max-epoch", "2",
         "--save-dir", save])
    return {"weights": weights, "feats": feats, "ckpt": os.path.join(save, "checkpoint_last.pt"), "root": root}


def test_features_keep_every_frame_and_are_the_resnets(stage1, frozen):
    """All-frame features sampled as video is (eval: phase 0) equal the ResNet run on the sampled frames."""
    video_cfg = SignDataConfig(os.path.join(stage1["data"], "config.yaml"))
    feat_cfg = SignDataConfig(os.path.join(frozen["feats"], "config.yaml"))
    assert feat_cfg.config["source_sampling_rate"] == 1 and feat_cfg.features_hold_every_frame
    assert feat_cfg.sampling_rate == video_cfg.sampling_rate < 1
    assert feat_cfg.video_sampling_rate() == video_cfg.sampling_rate

    def dataset(data, cfg):
        return SignTranslationDatasetCreator.from_tsv(data, cfg, "dev", None, None, is_train_split=False,
                                                      visual_input=None, augment=False, seed=1)

    videos, feats = dataset(stage1["data"], video_cfg), dataset(frozen["feats"], feat_cfg)
    assert videos.stride == feats.stride > 1
    visual = VisualEncoder(mean=video_cfg.mean, std=video_cfg.std)
    visual.load_backbone_weights(frozen["weights"])
    visual.eval()
    for i in range(len(videos)):
        clip = videos[i].source
        cached = feats[i].source
        assert cached.shape[0] == clip.shape[0] < int(feats.n_frames[i])
        with torch.no_grad():
            raw, _ = visual(clip[None], torch.tensor([clip.shape[0]]), level="frame")
        assert torch.allclose(raw[0], cached, atol=1e-5), (i, (raw[0] - cached).abs().max())


def test_training_draws_a_new_phase_each_epoch(frozen):
    cfg = SignDataConfig(os.path.join(frozen["feats"], "config.yaml"))
    train = SignTranslationDatasetCreator.from_tsv(frozen["feats"], cfg, "train", None, None, is_train_split=True,
                                                   visual_input=None, augment=False, seed=1)
    full = np.load(train.video_paths[0])
    seen = set()
    for epoch in range(1, 9):
        train.set_epoch(epoch)
        x = train[0].source.numpy()
        phase = [p for p in range(train.stride) if np.array_equal(full[p::train.stride][: len(x)], x)]
        assert len(phase) == 1, "a sampled clip is every stride-th frame from one phase"
        seen.add(phase[0])
    assert len(seen) > 1


def test_resnet_stays_the_file_and_video_decodes_as_features(stage1, frozen):
    state = load_fairseq_checkpoint(frozen["ckpt"])["model"]
    weights = torch.load(frozen["weights"], weights_only=True)
    backbone = {k[len("encoder.visual.backbone."):]: v for k, v in state.items()
                if k.startswith("encoder.visual.backbone.")}
    assert backbone and set(backbone) == {k for k in weights if not k.startswith("fc.")}
    for k, v in backbone.items():
        assert torch.equal(v, weights[k]), k  # frozen: parameters and BatchNorm statistics
    temporal = [k for k in state if k.startswith("encoder.visual.temporal.")]
    assert temporal

    def hypotheses(data):
        out = run(["fairseq-generate", data, *COMMON, "--gen-subset", "dev", "--path", frozen["ckpt"],
                   "--beam", "2", "--batch-size", "4"])
        samples = parse_generate_lines((out.stdout + out.stderr).split("\n"), data)
        return {i: s.hypothesis for i, s in samples.items()}

    on_feats, on_video = hypotheses(frozen["feats"]), hypotheses(stage1["data"])
    assert on_feats and on_feats == on_video


@pytest.mark.parametrize("case", ["features of other weights", "sign-level features"])
def test_light_t_refuses_features_it_cannot_train_on(stage1, frozen, case):
    data, expected = {
        "features of other weights": (frozen["feats"], ("visual fingerprint", "--visual-backbone-weights none")),
        "sign-level features": (stage1["feats"], ("sign-level features", "--level frame --visual-backbone-weights")),
    }[case]
    proc = run(["fairseq-train", data, *COMMON, *TRAIN, "--visual-backbone-weights", "none",
                "--max-update", "1", "--save-dir", str(frozen["root"] / case.replace(" ", "_"))], check=False)
    assert proc.returncode != 0
    line = last_line(proc)
    assert all(part in line for part in expected), line


def test_resnet_weights_alone_give_frame_features_only(stage1, frozen):
    proc = run(["flallm-extract-features", "--data", stage1["data"], "--visual-backbone-weights",
                frozen["weights"], "--out-dir", str(frozen["root"] / "sign_feats"), "--cpu"], check=False)
    assert proc.returncode != 0
    assert "--level frame" in last_line(proc), last_line(proc)
    assert not os.path.exists(frozen["root"] / "sign_feats")
