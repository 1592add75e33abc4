"""Unattended runs survive a kill: the same command, re-run, resumes bit-exactly (batches are rebuilt
from (seed, epoch)), and a checkpoint truncated by a kill is named instead of crashing torch's reader."""
import os
import sys

import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint
from helpers import USER_DIR, run

# 6 train samples, 2 a batch: 3 updates an epoch, 9 in all; a checkpoint every 4 updates (mid-epoch 2)
TRAIN = ["--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
         "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
         "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "3", "--batch-size", "2",
         "--required-batch-size-multiple", "1", "--cpu", "--num-workers", "0", "--disable-validation",
         "--save-interval-updates", "4", "--seed", "3"]

# Runs a command and SIGKILLs it as soon as it logs a line containing the pattern (a real kill -9).
KILL_AFTER = """
import os, signal, subprocess, sys
pattern, cmd = sys.argv[1], sys.argv[2:]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
for line in proc.stdout:
    print(line, end="")
    if pattern in line:
        os.kill(proc.pid, signal.SIGKILL)
        break
print("return code", proc.wait())
"""


@pytest.fixture(scope="module")
def video_data(phoenix_release, tmp_path_factory):
    data = str(tmp_path_factory.mktemp("resume") / "data")
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", phoenix_release, "--out-dir", data,
         "--resize", "32", "--crop", "28", "--vocab-size", "100"])
    return data


def model_state(path):
    return load_fairseq_checkpoint(path)["model"]


def assert_same_tensors(a, b):
    assert sorted(a) == sorted(b)
    assert any("running_var" in k for k in a)  # BatchNorm buffers are compared too
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k}: max abs diff {(a[k].double() - b[k].double()).abs().max():.3g}"


def test_killed_run_resumes_bit_exactly(video_data, tmp_path):
    straight = str(tmp_path / "straight")
    run(["fairseq-train", video_data, *TRAIN, "--save-dir", straight], label="resume: uninterrupted")
    killed = str(tmp_path / "killed")
    cmd = ["fairseq-train", video_data, *TRAIN, "--save-dir", killed]
    out = run([sys.executable, "-c", KILL_AFTER, "(epoch 2 @ 4 updates, score", *cmd], label="resume: killed").stdout
    assert "return code -9" in out, out[-2000:]
    # killed in the middle of epoch 2, after the checkpoint of update 4
    assert load_fairseq_checkpoint(os.path.join(killed, "checkpoint_last.pt"))["optimizer_history"][-1][
        "num_updates"] == 4
    assert not os.path.exists(os.path.join(killed, "checkpoint3.pt"))
    out = run(cmd, label="resume: same command again").stdout
    assert "Loaded checkpoint" in out and "epoch 2 @ 4 updates" in out, out[-2000:]
    for name in ("checkpoint_last.pt", "checkpoint3.pt"):
        assert_same_tensors(model_state(os.path.join(straight, name)), model_state(os.path.join(killed, name)))


def test_epochs_draw_new_batches(video_data, tmp_path):
    """Each epoch's batch compositions come from (seed, epoch): not the same every epoch, and the
    same on every run."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [video_data, *TRAIN, "--save-dir", str(tmp_path)])
    cfg = convert_namespace_to_omegaconf(args)

    def compositions(epochs):
        task = tasks.setup_task(cfg.task)
        task.load_dataset("train")
        seen = []
        for epoch in epochs:
            itr = task.get_batch_iterator(task.dataset("train"), max_sentences=2, seed=cfg.common.seed + epoch,
                                          epoch=epoch, required_batch_size_multiple=1)
            seen.append(sorted(tuple(sorted(b.tolist())) for b in itr.frozen_batches))
        return seen

    first = compositions([1, 2, 3, 4])
    assert len(set(map(tuple, first))) > 1, first
    assert compositions([3]) == first[2:3]  # epoch 3 alone, as a resumed run builds it
