"""The tests' subprocess runner: this checkout and the venv first, failures that say why."""
import os
import sys

import pytest

from helpers import BIN, REPO, run


def test_run_uses_this_checkout_and_the_venv_bin():
    code = "import sys, flallm_plugin; print(flallm_plugin.__file__); print(sys.executable)"
    plugin, python = run(["python", "-c", code], cwd="/").stdout.split()
    assert plugin == os.path.join(REPO, "flallm_plugin", "__init__.py")
    assert os.path.dirname(python) == str(BIN)


def test_run_failure_names_command_status_and_output():
    with pytest.raises(AssertionError) as e:
        run([sys.executable, "-c", "import sys; print('partial result'); sys.exit('broken input')"])
    msg = str(e.value)
    assert sys.executable in msg and "exit status 1" in msg
    assert "partial result" in msg and "broken input" in msg
    proc = run([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert proc.returncode == 3


def test_run_timeout():
    with pytest.raises(AssertionError, match="timed out after 1 s"):
        run([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], timeout=1)


def test_fork_server_is_closed_only_by_its_owner(tmp_path):
    """A child forked from a test process runs the exit handlers it inherits (``forked_cli``): closing the
    fork server there must not remove the log of the server its parent still uses."""
    from flallm_tools.forked_cli import run_forked
    from fork_server import ForkServer

    server = ForkServer(dict(os.environ))
    log = str(tmp_path / "log")
    assert run_forked(server.close, ["close"], dict(os.environ), log, log) == 0
    assert os.path.exists(server.log)
    server.close()
    assert not os.path.exists(server.log) and server.proc.returncode == 0
