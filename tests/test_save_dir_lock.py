"""One training run per --save-dir: a second fairseq-train on a locked save dir stops at once with one line
naming the directory and the holder's PID; the lock of a dead run (kill -9) does not block."""
import fcntl
import os
import signal
import subprocess
import sys
import time

from helpers import USER_DIR, run

TRAIN = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
         "--required-batch-size-multiple", "1", "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
         "--criterion", "label_smoothed_cross_entropy", "--optimizer", "adam", "--lr", "1e-4", "--max-update", "1",
         "--batch-size", "2", "--disable-validation", "--no-epoch-checkpoints"]

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(600)
"""


def holder(lock_path):
    """Another process holding the save dir's lock, as a running fairseq-train does."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, lock_path], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_run_on_a_locked_save_dir_stops_at_once(stage1, tmp_path):
    save = tmp_path / "save"
    save.mkdir()
    p = holder(str(save / ".lock"))
    try:
        t0 = time.time()
        proc = run(["fairseq-train", stage1["data"], *TRAIN, "--save-dir", str(save)], check=False, timeout=300)
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert f"--save-dir {save}: in use by another training run (PID {p.pid}" in last, last
        assert "num_updates" not in proc.stdout and time.time() - t0 < 120
        assert sorted(os.listdir(save)) == [".lock"]  # nothing read or written
    finally:
        p.kill()
        p.wait()
    # the holder was killed (-9): its lock went with it, the stale .lock file does not block
    assert p.returncode == -signal.SIGKILL
    run(["fairseq-train", stage1["data"], *TRAIN, "--save-dir", str(save)], timeout=300)
    assert "checkpoint_last.pt" in os.listdir(save)
    # and the finished run released it
    fd = os.open(str(save / ".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_generate_on_a_locked_save_dir_runs(stage1):
    """Only training locks: decoding a checkpoint of a save dir that a training run holds works."""
    lock = os.path.join(os.path.dirname(stage1["ckpt"]), ".lock")
    assert os.path.isfile(lock)  # left by the fixture's training run
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live training run holds it
        gen = run(["fairseq-generate", stage1["data"], "--user-dir", USER_DIR, "--task", "sign_translation",
                   "--cpu", "--num-workers", "0", "--required-batch-size-multiple", "1", "--gen-subset", "dev",
                   "--path", stage1["ckpt"], "--beam", "1"],
                  timeout=300)
    finally:
        os.close(fd)
    assert "D-0" in gen.stdout
