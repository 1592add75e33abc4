"""Paths and the one program runner of the tests (importable: ``pytest.ini`` puts tests/ on the path)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fork_server import ForkServer

REPO = Path(__file__).resolve().parents[1]
USER_DIR = str(REPO / "flallm_plugin")  # for --user-dir
BIN = Path(sys.executable).parent  # the venv's console scripts: fairseq-train, flallm-extract-features ...
TIMINGS = {}  # label -> seconds, for the runs given a label; printed at the end of the session
# where the tests whose arithmetic differs on a GPU put their tensors (test_foreach_optim.py, test_device_transforms.py):
# the CPU here and in CI; FLALLM_TEST_DEVICE=cuda on a GPU machine (benchmarks/device_run.sh)
TEST_DEVICE = os.environ.get("FLALLM_TEST_DEVICE", "cpu")


def _text(out):
    return out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")


def _failure(cmd, what, stdout, stderr, tail):
    return (f"{' '.join(cmd)}\n{what}\n--- stdout (tail) ---\n{_text(stdout)[-tail:]}\n"
            f"--- stderr (tail) ---\n{_text(stderr)[-tail:]}")


_SERVER = []  # this pytest process's fork server, started by the first run()


def _forked(cmd, env, cwd, timeout):
    """``(returncode, stdout, stderr)`` of ``cmd`` run by the fork server (returncode None: timed out), or
    None if ``cmd`` is not one of the programs it runs."""
    if not _SERVER:
        _SERVER.append(ForkServer(env))
        atexit.register(_SERVER[0].close)
    server = _SERVER[0]
    if not server.serves(env):
        return None
    with tempfile.TemporaryDirectory(prefix="flallm-run-") as d:
        out, err = os.path.join(d, "stdout"), os.path.join(d, "stderr")
        reply = server.run(cmd, env, cwd, out, err, timeout)
        if reply is None:
            return None
        with open(out, encoding="utf-8", errors="replace") as f_out, open(err, encoding="utf-8", errors="replace") as f_err:
            return reply["returncode"], f_out.read(), f_err.read()


def run(cmd, check=True, cwd=REPO, timeout=900, label=None, tail=4000):
    """Run ``cmd`` (a list) and return the :class:`subprocess.CompletedProcess`, output captured as text.

    The command sees this checkout first on ``PYTHONPATH`` and the venv's bin dir first on
    ``PATH`` (``cmd[0]`` may be a console script's name). A non-zero exit (if ``check``) or a
    run longer than ``timeout`` seconds fails with the command, the return code and the tails
    of stdout and stderr. This venv's Python programs run in a child of the fork server
    (``fork_server.py``: the real program, without importing fairseq again); other commands, and any
    with another thread count or import path than the server's, run as new processes.
    """
    cmd = [str(c) for c in cmd]
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    # one intra-op thread: on a shared 2-core machine OpenMP spinning of two busy processes
    # slows a run tenfold; a tiny model gains nothing from a second thread
    env.setdefault("OMP_NUM_THREADS", "1")
    exe = shutil.which(cmd[0], path=env["PATH"]) or cmd[0]
    start = time.time()
    forked = _forked([exe] + cmd[1:], env, cwd, timeout)
    if forked is not None:
        returncode, stdout, stderr = forked
        if returncode is None:
            raise AssertionError(_failure(cmd, f"timed out after {timeout} s", stdout, stderr, tail))
        proc = subprocess.CompletedProcess([exe] + cmd[1:], returncode, stdout, stderr)
    else:
        try:
            proc = subprocess.run([exe] + cmd[1:], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(_failure(cmd, f"timed out after {timeout} s", e.stdout, e.stderr, tail)) from None
    if label:
        TIMINGS[label] = time.time() - start
    if check and proc.returncode != 0:
        raise AssertionError(_failure(cmd, f"exit status {proc.returncode}", proc.stdout, proc.stderr, tail))
    return proc


def assert_resnet18_file(path, with_fc=False):
    """``path`` holds a torchvision ResNet-18 ``state_dict()`` (its keys, ``fc``'s only ``with_fc``, and shapes but
    ``fc``'s: a classifier of its own) that ``--visual-backbone-weights`` loads: the loaded network holds its
    tensors. Returns the state dict."""
    import torch
    import torchvision

    from flallm_plugin.models.visual_encoder import build_resnet18, load_resnet18_weights

    state = torch.load(path, weights_only=True)
    reference = {k: v for k, v in torchvision.models.resnet18(weights=None).state_dict().items()
                 if with_fc or not k.startswith("fc.")}
    assert state.keys() == reference.keys()
    assert all(state[k].shape == v.shape for k, v in reference.items() if not k.startswith("fc."))
    net = build_resnet18()
    assert load_resnet18_weights(net, str(path)) == str(path)
    torch.testing.assert_close(net.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(net.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    torch.testing.assert_close(net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    return state
