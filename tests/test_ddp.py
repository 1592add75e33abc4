"""Distributed training on CPUs: two gloo processes under torchrun (docs/training.md: Multi-GPU and multi-node)
train stage 1 and stage 2, agree with one process of the same global batch on the first update, and
checkpoint once; the CPU combinations fairseq cannot run are refused; --sync-bn converts the CNN's and
the temporal module's BatchNorm."""
import os
import sys

import pytest
import torch
from fairseq import options, tasks

from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint
from flallm_plugin.models.visual_encoder import MaskedBatchNorm1d, MaskedSyncBatchNorm1d
from helpers import USER_DIR, run

COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1", "--disable-validation", "--no-epoch-checkpoints",
          "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--max-update", "1",
          "--dropout", "0", "--attention-dropout", "0", "--log-format", "simple", "--log-interval", "1"]
# plain SGD: the update is the averaged gradient itself (Adam's first step would hide a wrong scale)
SGD = ["--optimizer", "sgd", "--lr", "0.5"]
# docs/training.md's torchrun command on CPUs: per-process rank from torchrun's environment
DDP = ["--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--distributed-init-method", "env://",
       "--distributed-no-spawn", "--distributed-world-size", "$WORLD_SIZE", "--distributed-rank", "$RANK"]


def stage_args(stage, stage1):
    if stage == 1:
        return [stage1["data"], "--arch", "light_t_tiny", "--visual-backbone-weights", "none"]
    return [stage1["feats"], "--arch", "sign_mbart_tiny", "--load-visual-encoder-from", stage1["ckpt"],
            "--pretrained-mbart", "none"]


def torchrun(nproc, cmd, label):
    """``torchrun --standalone --nproc-per-node N --no-python sh -c 'exec CMD'`` ($RANK etc. from torchrun)."""
    return run(["torchrun", "--standalone", "--nproc-per-node", str(nproc), "--no-python", "sh", "-c",
                "exec " + " ".join(cmd)], timeout=300, label=label)


def params(path):
    """The trained parameters (BatchNorm running statistics are each process's own)."""
    return {k: v for k, v in load_fairseq_checkpoint(path)["model"].items()
            if v.is_floating_point() and "running_" not in k}


@pytest.mark.parametrize("stage", [1, 2])
def test_ddp_two_cpu_processes_match_one(stage, stage1, tmp_path):
    ddp, single = str(tmp_path / "ddp"), str(tmp_path / "single")
    base = ["fairseq-train", *stage_args(stage, stage1), *COMMON, *SGD, "--batch-size", "1"]
    out = torchrun(2, base + DDP + ["--save-dir", ddp], f"ddp: stage {stage}, 2 gloo processes").stdout
    # the same global batch in one process: 1 sample x 1 process x --update-freq 2
    ref = run(base + ["--update-freq", "2", "--save-dir", single], label=f"ddp: stage {stage}, 1 process").stdout
    assert "distributed init (rank 1)" in out and "initialized host" in out, out[-3000:]
    assert out.count("Saved checkpoint") == 1, out[-3000:]
    assert sorted(os.listdir(ddp)) == [".lock", "checkpoint_last.pt"]  # rank 0's save-dir lock (save_dir_lock.py)

    def loss(log):
        line = [x for x in log.splitlines() if "train_inner" in x and "num_updates=1," in x][0]
        return float(line.split("loss=")[1].split(",")[0]), line.split("bsz=")[1].split(",")[0]

    assert loss(out) == loss(ref) and loss(out)[1] == "2"
    a, b = params(os.path.join(ddp, "checkpoint_last.pt")), params(os.path.join(single, "checkpoint_last.pt"))
    assert sorted(a) == sorted(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{k}: {m}")


def parse(stage1, *extra):
    parser = options.get_training_parser()
    return options.parse_args_and_arch(parser, [*stage_args(1, stage1), *COMMON, "--batch-size", "2", *extra])


def test_ddp_backend_that_cannot_run_on_cpus_is_refused(stage1):
    args = parse(stage1, "--distributed-world-size", "2", "--ddp-backend", "pytorch_ddp")
    task = tasks.setup_task(args)
    with pytest.raises(ValueError, match="--ddp-backend pytorch_ddp cannot train on CPUs.*use --ddp-backend legacy_ddp"):
        task.build_model(args)
    args = parse(stage1, "--distributed-world-size", "2", "--ddp-backend", "legacy_ddp", "--sync-bn")
    with pytest.raises(ValueError, match="--sync-bn needs GPUs"):
        tasks.setup_task(args).build_model(args)
    # one process, or legacy_ddp: built
    tasks.setup_task(parse(stage1)).build_model(parse(stage1))


def test_ddp_sync_bn_converts_cnn_and_temporal_module(stage1):
    torch.manual_seed(0)
    args = parse(stage1)
    plain = tasks.setup_task(args).build_model(args)
    args = parse(stage1, "--sync-bn")
    synced = tasks.setup_task(args).build_model(args)
    kinds = {type(m) for m in synced.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert kinds == {torch.nn.SyncBatchNorm, MaskedSyncBatchNorm1d}, kinds
    assert any(isinstance(m, MaskedBatchNorm1d) for m in plain.modules())
    assert plain.state_dict().keys() == synced.state_dict().keys()
    synced.load_state_dict(plain.state_dict())
    visual_p, visual_s = plain.encoder.visual, synced.encoder.visual
    video = torch.randint(0, 256, (2, 12, 28, 28, 3), dtype=torch.uint8)
    lengths = torch.tensor([12, 7])
    # no process group: SyncBatchNorm normalises like BatchNorm, masking kept (train and eval)
    for train in (True, False):
        visual_p.train(train)
        visual_s.train(train)
        (feats_p, len_p), (feats_s, len_s) = visual_p(video, lengths), visual_s(video, lengths)
        torch.testing.assert_close(feats_s, feats_p)
        assert torch.equal(len_s, len_p)
    assert (feats_s[1, int(len_s[1]):] == 0).all()  # padding stays zero
