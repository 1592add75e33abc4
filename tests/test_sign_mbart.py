"""Stage 2 in-process: frozen visual encoder, adapter, cached features, loaders, optimizer."""
import os

import numpy as np
import pytest
import torch

import flallm_plugin  # noqa: F401
from fairseq import options, tasks
from helpers import USER_DIR


def build(data, *extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        data, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "sign_mbart_tiny", "--cpu",
        "--batch-size", "4", "--required-batch-size-multiple", "1", *extra,
    ])
    task = tasks.setup_task(args)
    return args, task, task.build_model(args)


def test_visual_encoder_loaded_frozen_and_bn_fixed(stage1):
    from flallm_plugin.checkpoint_safety import safe_torch_load

    args, task, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none")
    ref = {k[len("encoder.visual."):]: v for k, v in safe_torch_load(stage1["ckpt"])["model"].items()
           if k.startswith("encoder.visual.")}
    state = model.encoder.visual.state_dict()
    assert set(state) == set(ref)
    for k, v in ref.items():
        assert torch.equal(state[k], v), k
    assert all(not p.requires_grad for p in model.encoder.visual.parameters())
    assert all(p.requires_grad for p in model.encoder.adapter.parameters())
    assert all(getattr(p, "param_group", None) == "adapter" for p in model.encoder.adapter.parameters())

    # a real training step: model.train() must keep the frozen BatchNorms in eval mode
    task.load_dataset("train")
    ds = task.dataset("train")
    sample = ds.collater([ds[i] for i in range(len(ds))])
    criterion = task.build_criterion(args)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    before = {k: v.clone() for k, v in model.encoder.visual.state_dict().items()}
    model.train()
    assert not model.encoder.visual.backbone.training and not model.encoder.visual.temporal.training
    for _ in range(2):
        loss, _, _ = criterion(model, sample)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.encoder.visual.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} changed during stage 2"  # weights and BN running stats
    assert model.encoder.adapter.fc1.weight.grad is not None


def _one_step(args, task, model):
    """One SGD step on the training set; returns the state before and after."""
    task.load_dataset("train")
    ds = task.dataset("train")
    sample = ds.collater([ds[i] for i in range(len(ds))])
    criterion = task.build_criterion(args)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    loss, _, _ = criterion(model, sample)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return before, model.state_dict()


@pytest.mark.parametrize("level,changes", [
    ("backbone+temporal", ()),
    ("backbone", ("temporal",)),
    ("none", ("backbone", "temporal")),
])
def test_each_freezing_level_updates_exactly_its_parameters(stage1, level, changes):
    """Table 9 on video: weights and BatchNorm statistics of the frozen parts never move, the rest does."""
    args, task, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart",
                              "none", "--freeze-visual", level)
    before, after = _one_step(args, task, model)
    for part in ("backbone", "temporal"):
        prefix = f"encoder.visual.{part}."
        moved = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        params = [k for k, _ in model.named_parameters() if k.startswith(prefix)]
        if part in changes:
            assert set(params) <= set(moved), f"{level}: {part} parameters not updated"
        else:
            assert moved == [], f"{level}: frozen {part} changed: {moved[:3]}"
    for prefix in ("encoder.adapter.", "decoder.layers."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix


@pytest.mark.parametrize("extra,expected", [
    (["--freeze-visual", "none"], "--freeze-visual none trains the backbone and temporal"),
    (["--freeze-visual", "backbone"], "--freeze-visual backbone trains the temporal"),
    (["--adapter-input", "frame"], "cached features are at level 'sign' but the adapter reads 'frame'"),
])
def test_switches_that_cannot_act_on_cached_features_are_refused(stage1, extra, expected):
    with pytest.raises(ValueError) as e:
        build(stage1["feats"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none", *extra)
    assert expected in str(e.value) and ("video data directory" in str(e.value) or "extract features" in str(e.value))


def test_freeze_levels(stage1):
    _, _, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none",
                        "--freeze-visual", "backbone")
    assert all(not p.requires_grad for p in model.encoder.visual.backbone.parameters())
    assert all(p.requires_grad for p in model.encoder.visual.temporal.parameters())
    model.train()
    assert model.encoder.visual.temporal.training and not model.encoder.visual.backbone.training


def test_cached_features_equal_raw_video_forward(stage1):
    args, task, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none")
    model.eval()
    task.load_dataset("dev")
    raw = task.dataset("dev")
    raw_batch = raw.collater([raw[i] for i in range(len(raw))])
    fargs, ftask, fmodel = build(stage1["feats"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none")
    assert fmodel.encoder.input_level == "sign" and model.encoder.input_level is None
    fmodel.load_state_dict(model.state_dict())
    fmodel.eval()
    ftask.load_dataset("dev")
    fds = ftask.dataset("dev")
    feat_batch = fds.collater([fds[i] for i in range(len(fds))])
    assert feat_batch["net_input"]["src_tokens"].dim() == 3
    assert torch.equal(raw_batch["id"], feat_batch["id"])
    with torch.no_grad():
        out_raw = model(**raw_batch["net_input"])[0]
        out_feat = fmodel(**feat_batch["net_input"])[0]
    assert out_raw.shape == out_feat.shape
    torch.testing.assert_close(out_feat, out_raw, atol=1e-5, rtol=0)


def test_light_t_and_frame_adapter_inputs(stage1):
    for level in ("frame", "light_t"):
        args, task, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart",
                                  "none", "--adapter-input", level)
        task.load_dataset("dev")
        ds = task.dataset("dev")
        batch = ds.collater([ds[i] for i in range(len(ds))])
        model.eval()
        with torch.no_grad():
            logits = model(**batch["net_input"])[0]
        assert logits.shape[:2] == batch["target"].shape
        expected_in = 512 if level == "frame" else 256  # ResNet width / light_t_tiny width
        assert model.encoder.adapter.fc1.in_features == expected_in
        assert all(not p.requires_grad for p in model.encoder.visual.parameters())


def test_stage1_key_mismatch_is_a_clear_error(stage1, tmp_path):
    from flallm_plugin.checkpoint_safety import safe_torch_load

    state = safe_torch_load(stage1["ckpt"])
    del state["model"]["encoder.visual.temporal.layers.0.weight"]
    state["model"]["encoder.visual.extra.weight"] = torch.zeros(1)
    bad = str(tmp_path / "bad.pt")
    torch.save(state, bad)
    with pytest.raises(ValueError) as e:
        build(stage1["data"], "--load-visual-encoder-from", bad, "--pretrained-mbart", "none")
    msg = str(e.value)
    assert bad in msg and "temporal.layers.0.weight" in msg and "extra.weight" in msg


def test_pretrained_mbart_vocab_mismatch_is_a_clear_error(stage1, tmp_path):
    _, _, model = build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", "none")
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith(("encoder.visual.", "encoder.adapter."))}
    sd["encoder.embed_tokens.weight"] = torch.zeros(len(model.encoder.dictionary) + 7, 64)
    bad = str(tmp_path / "mbart.pt")
    from flallm_plugin.checkpoint_safety import safe_torch_load

    state = safe_torch_load(stage1["ckpt"])  # a real fairseq checkpoint structure, with other weights
    state["model"] = sd
    torch.save(state, bad)
    with pytest.raises(ValueError, match="rows but the target dictionary"):
        build(stage1["data"], "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart", bad)


def test_param_group_adam_follows_one_schedule():
    from argparse import Namespace

    from fairseq import optim
    from fairseq.optim.lr_scheduler import build_lr_scheduler

    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    b.param_group = "adapter"
    cfg = Namespace(optimizer="param_group_adam", lr=[1e-5], group_lr='{"adapter": 1e-3}', adam_betas="(0.9, 0.999)",
                    adam_eps=1e-8, weight_decay=0.0, use_old_adam=True, fp16_adam_stats=False, tpu=False,
                    lr_scheduler="cosine", warmup_updates=0, warmup_init_lr=-1, max_update=100, lr_period_updates=-1,
                    t_mult=1.0, lr_shrink=0.1, min_lr=0.0, max_lr=1e-5)
    opt = optim.build_optimizer(cfg, [a, b])
    sched = build_lr_scheduler(cfg, opt)
    for step in (0, 30, 60, 99):
        sched.step_update(step)
        lrs = {g["group"]: g["lr"] for g in opt.param_groups}
        assert lrs["adapter"] == pytest.approx(lrs["default"] * 100, rel=1e-9)
    assert opt.param_groups[0]["lr"] < 1e-5  # the cosine curve went down for both groups
    with pytest.raises(ValueError, match="no parameters"):
        optim.build_optimizer(Namespace(**dict(vars(cfg), group_lr='{"nope": 1.0}')), [a, b])


def test_features_manifest_points_to_arrays(stage1):
    import csv

    with open(os.path.join(stage1["feats"], "train.tsv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows
    for r in rows:
        arr = np.load(os.path.join(stage1["feats"], r["video"]))
        assert arr.shape == (int(r["n_frames"]), 512) and arr.dtype == np.float32
