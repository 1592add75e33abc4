"""The ``sign_contrastive_ce`` criterion: label-smoothed CE + CLIP-style visual-text InfoNCE (beyond the paper).

In-process on the session fixture's stage-1 data (light_t_tiny, and sign_mbart_tiny on its checkpoint),
plus one real fairseq-train (2 epochs) -> fairseq-generate run and flallm-help's listing.
"""
import math

import pytest
import torch

import flallm_plugin  # noqa: F401  (registers the task, models and criterion)
from fairseq import options, tasks
from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.criterions.sign_contrastive_ce import DEFAULT_TEMPERATURE, symmetric_info_nce
from helpers import USER_DIR, run
from test_light_t import count_h_lines, json_log

TRAIN_OPTS = ["--batch-size", "4", "--required-batch-size-multiple", "1", "--label-smoothing", "0.2", "--cpu"]


def build(data, arch="light_t_tiny", *extra, criterion="sign_contrastive_ce"):
    """(args, task, model, criterion) as fairseq-train builds them, and the whole train split as one batch."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        data, "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", arch, "--criterion", criterion,
        "--visual-backbone-weights", "none", *TRAIN_OPTS, *extra,
    ])
    task = tasks.setup_task(args)
    torch.manual_seed(0)
    model = task.build_model(args)
    task.load_dataset("train")
    ds = task.dataset("train")
    sample = ds.collater([ds[i] for i in range(len(ds))])
    return args, task, model, task.build_criterion(args), sample


def test_weight_zero_is_label_smoothed_cross_entropy(stage1):
    """Weight 0: bit-identical loss and logs, no parameters. Weight > 0: the same CE, plus W x sample size
    x the mean InfoNCE, and the model's forward is unchanged by the criterion watching the encoder."""
    args, task, model, crit0, sample = build(stage1["data"])
    lsce = task.build_criterion(options.parse_args_and_arch(options.get_training_parser(), [
        stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
        "--criterion", "label_smoothed_cross_entropy", *TRAIN_OPTS]))
    assert type(lsce).__name__ == "LabelSmoothedCrossEntropyCriterion"
    model.eval()  # no dropout: two forwards give the same output
    ref_loss, ref_size, ref_log = lsce(model, sample)
    loss0, size0, log0 = crit0(model, sample)
    assert torch.equal(loss0, ref_loss) and size0 == ref_size
    assert log0.keys() == ref_log.keys() and all(torch.equal(torch.as_tensor(log0[k]), torch.as_tensor(ref_log[k]))
                                                 for k in log0)
    assert list(crit0.parameters()) == [] and crit0.state_dict() == {}

    _, _, _, crit, _ = build(stage1["data"], "light_t_tiny", "--contrastive-weight", "0.5")
    loss, size, log = crit(model, sample)
    assert torch.equal(log["nll_loss"], ref_log["nll_loss"]) and size == ref_size
    assert log["ncontrastive"] == len(sample["id"]) == 6
    contrastive = log["contrastive_loss"] / log["ncontrastive"]
    assert contrastive > 0
    torch.testing.assert_close(loss, ref_loss + 0.5 * size * contrastive)
    assert [n for n, _ in crit.named_parameters()] == ["logit_scale"]
    assert crit.logit_scale.item() == pytest.approx(math.log(1 / DEFAULT_TEMPERATURE))


def test_matched_pairs_score_lower_than_shuffled():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(8, 16, generator=g)
    visual = text + 0.1 * torch.randn(8, 16, generator=g)
    eye = torch.eye(8, dtype=torch.bool)
    scale = torch.tensor(math.log(1 / DEFAULT_TEMPERATURE))
    matched, v2t, t2v = symmetric_info_nce(visual, text, eye, scale)
    shuffled, v2t_s, t2v_s = symmetric_info_nce(visual[torch.roll(torch.arange(8), 1)], text, eye, scale)
    assert matched.mean() < 0.1 < 2.0 < shuffled.mean()
    assert (v2t, t2v) == (8, 8) and (v2t_s, t2v_s) == (0, 0)
    # a repeated sentence: both of its videos are positives of both copies, never pushed apart
    text[1] = text[0]
    visual[1] = text[0] + 0.1 * torch.randn(16, generator=g)
    same = (text.unsqueeze(1) == text.unsqueeze(0)).all(-1)
    loss, v2t, t2v = symmetric_info_nce(visual, text, same, scale)
    assert v2t == 8 and t2v == 8
    assert loss[0] > math.log(2) * 0.9  # best possible for a sentence with two positives is log 2


def test_contrastive_gradients_reach_the_visual_encoder(stage1):
    """The contrastive term's gradient flows through the hook into ResNet-18, the temporal module,
    the VL-Adapter and the token embeddings, and into the learnable logit scale."""
    args, task, model, crit, sample = build(stage1["data"], "light_t_tiny", "--contrastive-weight", "1")
    _, _, _, crit0, _ = build(stage1["data"])
    model.eval()
    grads = []
    for c in (crit0, crit):
        model.zero_grad()
        loss, _, _ = c(model, sample)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    diff = {n: (grads[1][n] - grads[0][n]).norm().item() for n in grads[0]}
    for prefix in ("encoder.visual.backbone.", "encoder.visual.temporal.", "encoder.adapter.",
                   "decoder.embed_tokens."):
        assert max(v for n, v in diff.items() if n.startswith(prefix)) > 0, prefix
    assert crit.logit_scale.grad is not None and crit.logit_scale.grad.abs().item() > 0


def test_sign_mbart_stage2(stage1):
    """Stage 2: the pooled mBART encoder output vs mBART's shared token embeddings; the LLM-Adapter
    gets the contrastive gradient, the frozen visual encoder none."""
    args, task, model, crit, sample = build(
        stage1["data"], "sign_mbart_tiny", "--load-visual-encoder-from", stage1["ckpt"], "--pretrained-mbart",
        "none", "--contrastive-weight", "0.5", "--contrastive-visual", "adapter")
    model.train()
    loss, _, log = crit(model, sample)
    loss.backward()
    assert log["ncontrastive"] == 6 and log["contrastive_loss"] > 0
    assert model.encoder.adapter.fc1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.visual.parameters())


@pytest.mark.parametrize("extra,expected", [
    (["--contrastive-weight", "0.5", "--batch-size", "1"], "--batch-size 1 with --contrastive-weight"),
    (["--contrastive-init-temperature", "0.1"], "--contrastive-init-temperature acts only with"),
    (["--contrastive-visual", "adapter"], "--contrastive-visual acts only with"),
    (["--contrastive-weight", "-1"], "must be >= 0"),
    (["--contrastive-only-updates", "10"], "--contrastive-only-updates acts only with"),
    (["--contrastive-weight", "1", "--contrastive-init-temperature", "0"], "must be > 0"),
])
def test_settings_where_the_loss_cannot_act_are_refused(stage1, extra, expected):
    with pytest.raises(ValueError, match=expected):
        build(stage1["data"], "light_t_tiny", *extra)


def test_alignment_warm_up_trains_the_contrastive_loss_alone(stage1):
    """--contrastive-only-updates 1, through the task's train_step: at update 0 the decoder's output
    projection (reached by the CE only) gets no gradient while the visual encoder does; from update 1 on
    it does; validation scores CE + W x contrastive throughout; without the task's update number the
    training forward is refused."""
    from fairseq import optim
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args, task, model, crit, sample = build(stage1["data"], "light_t_tiny", "--contrastive-weight", "0.5",
                                            "--contrastive-only-updates", "1", "--optimizer", "adam", "--lr", "1e-3")
    optimizer = optim.build_optimizer(convert_namespace_to_omegaconf(args).optimizer,
                                      list(model.parameters()) + list(crit.parameters()))
    out_proj = model.decoder.output_projection.weight
    conv1 = model.encoder.visual.backbone.conv1.weight
    for update, ce_trained in ((0, False), (1, True)):
        optimizer.zero_grad()
        loss, size, log = task.train_step(sample, model, crit, optimizer, update)
        assert out_proj.grad is not None and conv1.grad is not None
        assert bool(out_proj.grad.abs().sum() > 0) is ce_trained, update
        assert conv1.grad.abs().sum() > 0
        contrastive = 0.5 * size * log["contrastive_loss"] / log["ncontrastive"]
        if not ce_trained:
            torch.testing.assert_close(log["loss"], torch.as_tensor(contrastive, dtype=log["loss"].dtype))
    model.eval()
    with torch.no_grad():
        loss, size, log = task.valid_step(sample, model, crit)
    assert log["loss"] > 0.5 * size * log["contrastive_loss"] / log["ncontrastive"] + 1e-3  # the CE is in it
    model.train()
    crit.num_updates = None
    with pytest.raises(ValueError, match="needs the update number"):
        crit(model, sample)


def test_model_without_a_shared_width_is_refused(stage1):
    _, _, model, crit, sample = build(stage1["data"], "light_t_tiny", "--decoder-embed-dim", "128",
                                      "--contrastive-weight", "1")
    with pytest.raises(ValueError, match="width 256 but the target token embeddings 128"):
        crit(model, sample)


def test_one_video_batch_contributes_nothing(stage1):
    """The last partial batch of an epoch may hold one video: no negative, so CE only, not counted."""
    _, task, model, crit, sample = build(stage1["data"], "light_t_tiny", "--contrastive-weight", "1")
    ds = task.dataset("train")
    one = ds.collater([ds[0]])
    _, _, _, crit0, _ = build(stage1["data"])
    model.eval()
    loss, _, log = crit(model, one)
    assert log["ncontrastive"] == 0 and torch.equal(loss, crit0(model, one)[0])
    loss.backward()
    assert crit.logit_scale.grad is not None  # in the graph (zero): DDP finds every parameter used


def test_fairseq_train_logs_contrastive_and_checkpoint_decodes(stage1, tmp_path):
    save = tmp_path / "ckpt"
    proc = run(["fairseq-train", stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation",
                "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
                "--criterion", "sign_contrastive_ce", "--contrastive-weight", "0.5", *TRAIN_OPTS,
                "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "1", "--valid-subset", "dev",
                "--save-dir", save, "--num-workers", "0", "--no-epoch-checkpoints", "--log-format", "json",
                "--log-interval", "1"], timeout=300, label="fairseq-train sign_contrastive_ce (1 epoch)")
    log = proc.stdout + proc.stderr
    train = json_log(log, "train_inner") + json_log(log, "train")
    valid = json_log(log, "dev")  # fairseq's json end-of-validation line: | dev | {"dev_loss": ...}
    assert len(json_log(log, "train")) == 1 and len(valid) == 1
    for stats in train + valid:
        prefix = "dev_" if "dev_loss" in stats else ("train_" if "train_loss" in stats else "")
        for key in ("contrastive_loss", "contrastive_v2t_acc", "contrastive_t2v_acc", "contrastive_scale"):
            assert prefix + key in stats, (key, stats)
    state = safe_torch_load(str(save / "checkpoint_last.pt"))
    scale = state["criterion"]["logit_scale"].item()
    assert scale != pytest.approx(math.log(1 / DEFAULT_TEMPERATURE), abs=1e-6)  # trained
    assert not any("logit_scale" in k for k in state["model"])  # the model's keys stay the paper's
    gen = run(["fairseq-generate", stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation",
               "--gen-subset", "test", "--path", save / "checkpoint_last.pt", "--beam", "2", "--batch-size", "4", "--required-batch-size-multiple", "1",
               "--cpu", "--num-workers", "0"], timeout=300, label="fairseq-generate of the contrastive checkpoint")
    assert sorted(count_h_lines(gen.stdout)) == [0, 1]


def test_adding_the_loss_to_a_plain_checkpoint(stage1, tmp_path):
    """fairseq restores a criterion's parameters with the model; a checkpoint trained without the loss
    (label_smoothed_cross_entropy: no criterion state) continues with the logit scale at its initial value."""
    save = tmp_path / "ckpt"
    run(["fairseq-train", stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation",
         "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
         "--criterion", "sign_contrastive_ce", "--contrastive-weight", "0.5", "--contrastive-init-temperature", "0.1",
         *TRAIN_OPTS, "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "1", "--disable-validation",
         "--restore-file", stage1["ckpt"], "--reset-optimizer", "--reset-dataloader", "--reset-meters",
         "--reset-lr-scheduler", "--save-dir", save, "--num-workers", "0", "--no-epoch-checkpoints"],
        timeout=300, label="fairseq-train sign_contrastive_ce from a plain stage-1 checkpoint (1 epoch)")
    assert safe_torch_load(stage1["ckpt"])["criterion"] is None
    scale = safe_torch_load(str(save / "checkpoint_last.pt"))["criterion"]["logit_scale"].item()
    assert 0 < abs(scale - math.log(1 / 0.1)) < 0.1  # started at log(1 / 0.1), moved by 2 Adam steps
