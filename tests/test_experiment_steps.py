"""flallm-experiment's step store shared by runs in parallel: a step runs once, the others wait and reuse it."""
import json
import os
import subprocess
import sys

from helpers import REPO

SNIPPET = r"""
import json, os, sys, time
from flallm_tools.experiment.steps import StepStore
root, log = sys.argv[1], sys.argv[2]

def run(step_dir):
    with open(log, "a") as f:
        f.write(f"start {os.getpid()}\n")
    time.sleep(2)  # long enough for the other process to ask for the same step meanwhile
    with open(os.path.join(step_dir, "out.txt"), "w") as f:
        f.write("made")
    with open(log, "a") as f:
        f.write(f"end {os.getpid()}\n")
    return {"out": os.path.join(step_dir, "out.txt")}

with open(log, "a") as f:
    f.write(f"ready {os.getpid()}\n")
while open(log).read().count("ready") < 2:  # both processes ask for the step at the same time
    time.sleep(0.05)
record = StepStore(root).step("demo", {"x": 1}, run)
print(json.dumps(record))
"""


def test_two_runs_share_one_step(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp_path / "log.txt"
    cmd = [sys.executable, "-c", SNIPPET, str(tmp_path / "steps"), str(log)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    lines = log.read_text().split()
    assert lines.count("start") == 1 and lines.count("end") == 1, lines  # made once, never deleted half-way
    made = [json.loads(out.strip().splitlines()[-1])["out"] for out, _ in outs]
    assert made[0] == made[1] and open(made[0]).read() == "made"
