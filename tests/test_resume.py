"""Unattended runs survive a kill: the same command, re-run, resumes bit-exactly (batches are rebuilt
from (seed, epoch)), and a checkpoint truncated by a kill is named instead of crashing torch's reader."""
import os
import shutil
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
    """Each epoch's batch compositions come from (seed, epoch): new ones every epoch from the one
    iterator fairseq-train keeps, and the same when a run starts (resumes) at that epoch."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [video_data, *TRAIN, "--save-dir", str(tmp_path), "--no-augment"])
    cfg = convert_namespace_to_omegaconf(args)

    def compositions(first_epoch, n_epochs):
        task = tasks.setup_task(cfg.task)
        task.load_dataset("train")
        itr = task.get_batch_iterator(task.dataset("train"), max_sentences=2, seed=cfg.common.seed,
                                      epoch=first_epoch, required_batch_size_multiple=1)
        seen = []
        for _ in range(n_epochs):
            seen.append(sorted(tuple(sorted(b["id"].tolist())) for b in itr.next_epoch_itr(shuffle=True)))
        assert itr.epoch == first_epoch + n_epochs - 1
        return seen

    first = compositions(1, 4)
    assert len(set(map(tuple, first))) > 1, first
    assert compositions(3, 1) == first[2:3]  # epoch 3 built alone, as a resumed run builds it


def truncate(path, keep=0.5):
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * keep))


def test_truncated_checkpoint_last_resumes_from_newest_intact(video_data, tmp_path):
    save = str(tmp_path / "ckpt")
    cmd = ["fairseq-train", video_data, *TRAIN, "--save-dir", save]
    run(cmd + ["--max-update", "4"], label="restore: first 4 updates")
    last = os.path.join(save, "checkpoint_last.pt")
    # a kill while fairseq copied checkpoint_2_4.pt to checkpoint_last.pt
    truncate(last)
    os.utime(last)  # written after the file it was copied from
    out = run(cmd, label="restore: same command after the kill").stdout
    assert f"{last}: truncated" in out and "moved to" in out, out[-3000:]
    assert f"resuming from the newest intact checkpoint {os.path.join(save, 'checkpoint_2_4.pt')}" in out
    assert "(epoch 2 @ 4 updates)" in out
    state = load_fairseq_checkpoint(last)
    assert state["optimizer_history"][-1]["num_updates"] == 9
    assert os.path.getsize(last + ".corrupt") < os.path.getsize(last)


def test_truncated_restore_file_is_named_with_the_command_that_resumes(video_data, tmp_path):
    save = str(tmp_path / "ckpt")
    run(["fairseq-train", video_data, *TRAIN, "--save-dir", save, "--max-update", "3"])
    best = os.path.join(save, "checkpoint1.pt")
    shutil.copyfile(best, os.path.join(save, "checkpoint_best.pt"))
    truncate(os.path.join(save, "checkpoint_best.pt"), keep=0.9)
    cmd = ["fairseq-train", video_data, *TRAIN, "--save-dir", save, "--restore-file",
           os.path.join(save, "checkpoint_best.pt")]
    proc = run(cmd, check=False)
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert f"{os.path.join(save, 'checkpoint_best.pt')}: truncated" in last_line, proc.stderr[-3000:]
    # the newest intact one: checkpoint_last.pt, copied from checkpoint1.pt after it was written
    assert last_line.endswith("--restore-file " + os.path.join(save, "checkpoint_last.pt")), last_line
    # no intact checkpoint at all: says to delete the file
    for name in os.listdir(save):
        if name != "checkpoint_best.pt":
            os.remove(os.path.join(save, name))
    proc = run(cmd, check=False)
    assert proc.returncode != 0
    assert "no intact checkpoint in" in proc.stderr.strip().splitlines()[-1], proc.stderr[-3000:]
