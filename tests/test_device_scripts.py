"""benchmarks/device_wheels.sh asks pip for the project's own pins as the GPU machine's wheels (a stand-in for
pip records what it is asked: the tests do not download), and benchmarks/device_run.sh stops with one line
when the wheels were not carried."""
import os
import re
import stat
import subprocess

from helpers import REPO


def test_device_wheels_asks_for_the_projects_pins(tmp_path):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/bash\necho "$*" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = subprocess.run(["bash", str(REPO / "benchmarks/device_wheels.sh"), str(tmp_path / "whl")],
                         env=dict(os.environ, PYTHON=str(fake)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    download, wheel = calls.read_text().splitlines()
    fairseq = re.search(r"ve-fairseq==[0-9.]+", (REPO / "Makefile").read_text()).group(0)
    reqs = (REPO / "requirements.txt").read_text()
    want = [fairseq] + [re.search(rf"^{n}==[0-9.]+", reqs, re.M).group(0)
                        for n in ("bitarray", "zstandard", "hydra-core", "omegaconf")]
    assert download.startswith("-m pip download") and "--only-binary=:all: --python-version 3.12" in download
    assert download.split()[-len(want):] == want
    assert wheel.startswith("-m pip wheel") and wheel.endswith(re.search(r"^antlr4-python3-runtime==[0-9.]+", reqs,
                                                                         re.M).group(0))


def test_device_wheels_names_a_missing_pin(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benchmarks/device_wheels.sh").write_text((REPO / "benchmarks/device_wheels.sh").read_text())
    (repo / "Makefile").write_text((REPO / "Makefile").read_text())
    (repo / "requirements.txt").write_text(re.sub(r"^zstandard==.*\n", "", (REPO / "requirements.txt").read_text(),
                                                  flags=re.M))
    out = subprocess.run(["bash", str(repo / "benchmarks/device_wheels.sh"), str(tmp_path / "whl")],
                         env=dict(os.environ, PYTHON="false"), capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip() == \
        f"device_wheels.sh: no pin of zstandard in {repo}/requirements.txt"


def test_device_run_without_wheels_is_one_line(tmp_path):
    (tmp_path / "whl").mkdir()
    out = subprocess.run(["bash", str(REPO / "benchmarks/device_run.sh")], capture_output=True, text=True,
                         env=dict(os.environ, OUT=str(tmp_path / "out"), WHEELS=str(tmp_path / "whl")))
    assert out.returncode == 2
    assert out.stdout.strip() == (f"device_run.sh: no wheels in {tmp_path / 'whl'}: run 'bash "
                                  f"benchmarks/device_wheels.sh' here first, then carry {tmp_path / 'whl'}")
    assert (tmp_path / "out/run.log").read_text() == out.stdout
