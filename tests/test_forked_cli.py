"""flallm_tools.forked_cli: a forked child reports what a new process would (argv, environment, working
directory, output, exit status, ``sys.exit("message")``), and one past its time limit is killed with its own
children."""
import os
import subprocess
import sys
import time

from flallm_tools.forked_cli import fork_call, run_forked, wait_exit_code


def _program():
    print("argv", sys.argv[1:], "cwd", os.getcwd(), "X", os.environ.get("X"))
    print("to stderr", file=sys.stderr)
    sys.exit(f"{sys.argv[0]}: error: {sys.argv[1]}")


def test_child_status_output_and_exit_message_as_a_process(tmp_path):
    out, err = str(tmp_path / "out"), str(tmp_path / "err")
    before = (dict(os.environ), os.getcwd(), list(sys.argv))
    code = run_forked(_program, ["prog", "bad value"], {"X": "1"}, out, err)
    assert code == 1
    assert open(out).read() == f"argv ['bad value'] cwd {os.getcwd()} X 1\n"
    assert open(err).read() == "to stderr\nprog: error: bad value\n"
    assert (dict(os.environ), os.getcwd(), list(sys.argv)) == before  # the parent's are untouched
    # the same as Python reports for a new process
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.exit('prog: error: bad value')"],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (code, "prog: error: bad value\n")


def test_time_limit_kills_the_child_and_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"

    def program():
        grandchild = subprocess.Popen(["sleep", "60"])
        pid_file.write_text(str(grandchild.pid))
        time.sleep(60)

    log = str(tmp_path / "log")
    pid = fork_call(program, ["prog"], dict(os.environ), log, log, cwd=str(tmp_path), new_group=True)
    deadline = time.time() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline, open(log).read()
        time.sleep(0.05)
    assert wait_exit_code(pid, timeout=0.5) is None
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{grandchild}") and open(f"/proc/{grandchild}/stat").read().split()[2] != "Z":
        assert time.time() < deadline, "the grandchild outlived the time limit"
        time.sleep(0.05)


def test_exit_handlers_run_as_in_a_new_process(tmp_path):
    """fairseq closes its TensorBoard writers in an ``atexit`` handler: a child that skipped them lost the last
    events."""
    marker = tmp_path / "flushed"

    def program():
        import atexit

        atexit.register(marker.write_text, "yes")

    log = str(tmp_path / "log")
    assert run_forked(program, ["prog"], dict(os.environ), log, log) == 0
    assert marker.read_text() == "yes"


PARENT_THAT_LOGS_TO_STDOUT = """
import logging, sys
from flallm_tools.forked_cli import run_forked
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s", force=True)  # as flallm-experiment

def generate():  # as fairseq-generate: results printed to stdout, a log line at the end (basicConfig: a no-op)
    for i in range(2000):
        print(f"H-{i}\\t" + "x" * 50)
    logging.getLogger("fairseq_cli.generate").info("NOTE: hypothesis and token scores are output in base 2")

sys.exit(run_forked(generate, ["generate"], {}, sys.argv[1], sys.argv[2]))
"""


def test_the_parents_log_handlers_write_through_the_childs_stdout(tmp_path):
    """A handler made before the fork on the parent's sys.stdout writes, in the child, through the child's
    sys.stdout: the log line comes after the results, never inside one (flallm-experiment's decodes)."""
    out, err = tmp_path / "out", tmp_path / "err"
    subprocess.run([sys.executable, "-c", PARENT_THAT_LOGS_TO_STDOUT, str(out), str(err)], check=True,
                   stdout=subprocess.DEVNULL)
    lines = out.read_text().splitlines()
    assert lines == [f"H-{i}\t" + "x" * 50 for i in range(2000)] + [
        "NOTE: hypothesis and token scores are output in base 2"]
