"""Run a command-line program in a forked child of a process that has already imported fairseq.

A fresh interpreter spends ~5-7 s of CPU importing torch and fairseq; a child forked from a process that
imported them starts at once and is as isolated from the next command as a new process: its own
``sys.argv``, environment, working directory and file descriptors 1 and 2, its exit status as
``subprocess`` reports it. ``flallm-experiment`` runs fairseq's CLIs this way, and so does the tests'
fork server (``tests/fork_server.py``).

The parent must not have started threads (OpenMP included) before forking; importing modules is fine.
"""
import atexit
import logging
import os
import signal
import sys
import time
import traceback
from typing import Callable, Dict, List, Optional


def _exit_status(e: SystemExit) -> int:
    """The exit status Python gives ``raise SystemExit(code)`` (a message is printed to stderr, as Python does)."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _follow_standard_streams(old, new):
    """Point the logging handlers that write to the parent's standard streams at the child's.

    Logging handlers made before the fork (fairseq's modules call ``logging.basicConfig`` when imported, and a
    parent such as ``flallm-experiment`` configures its own) hold the parent's ``sys.stdout`` / ``sys.stderr``
    objects. Their descriptors are the child's now, but their buffers are not the child's ``sys.stdout``: a
    program that prints its results and logs to stdout (``fairseq-generate``) would get its log lines written
    in the middle of its output lines. In a new process both go through one object, in order; so here."""
    streams = dict(zip(map(id, old), new))
    for log in [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                       if isinstance(v, logging.Logger)]:
        for handler in log.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in streams:
                handler.setStream(streams[id(handler.stream)])


def fork_call(entry: Callable[[], object], argv: List[str], env: Dict[str, str], stdout_path: str,
              stderr_path: str, cwd: Optional[str] = None, new_group: bool = False) -> int:
    """Fork a child that runs ``entry()`` with ``sys.argv = argv``, ``os.environ = env``, in ``cwd``, its
    file descriptors 1 and 2 appended to the two files (one file if the paths are equal); returns its pid.
    ``new_group``: the child leads a new process group (so that its own children can be killed with it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1  # the child: never returns
    try:
        if new_group:
            os.setpgid(0, 0)
        out = os.open(stdout_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        err = out if stderr_path == stdout_path else os.open(stderr_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # a new process's sys.stdout / sys.stderr are descriptors 1 and 2 (the parent's may be another object)
        old_streams = (sys.stdout, sys.stderr)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
        _follow_standard_streams(old_streams, (sys.stdout, sys.stderr))
        if cwd is not None:
            os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = list(argv)
        try:
            entry()
            code = 0
        except SystemExit as e:
            code = _exit_status(e)
        except BaseException:
            traceback.print_exc()
            code = 1
        # what a new process does when it exits: the exit handlers (fairseq closes its TensorBoard writers in
        # one, logging flushes its handlers), then the standard streams
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def wait_exit_code(pid: int, timeout: Optional[float] = None) -> Optional[int]:
    """The child's exit status as ``subprocess`` reports it (-N: killed by signal N); None if it ran past
    ``timeout`` seconds: then it and its process group (``fork_call(new_group=True)``) are killed."""
    if timeout is None:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


def run_forked(entry: Callable[[], object], argv: List[str], env: Dict[str, str], stdout_path: str,
               stderr_path: str) -> int:
    """Run ``entry()`` in a forked child (see :func:`fork_call`) and return its exit status."""
    return wait_exit_code(fork_call(entry, argv, env, stdout_path, stderr_path))
