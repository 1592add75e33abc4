"""The tests' fork server: runs this checkout's Python programs in children forked from a process that has
already imported torch, fairseq and the plugin, so that a test's ``fairseq-train`` does not spend ~7 s of
CPU importing them.

Each command runs as the real program does (:mod:`flallm_tools.forked_cli`): its console-script entry
point, ``python -m module``, ``python script.py`` or ``python -c code`` in a forked child with the command's
argv, environment, working directory, stdout and stderr; nothing in the server has run any of them.
``helpers.run`` sends every such command here, except one with another thread count or import path than
the server's (those are read when torch is imported): it runs as a new process. The child's root logger is
a fresh interpreter's (fairseq's modules call ``logging.basicConfig`` when imported; ``fairseq-train``
configures logging before importing fairseq). Started once per pytest process (each xdist worker has its
own), the server stops when that process closes its end of the socket (``ForkServer.close``, at exit).
"""
import importlib
import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import tempfile
import types
from typing import Dict, List, Optional

# the server's preloaded modules: importing them has no side effect a program could notice (fairseq_cli's
# modules, which configure logging when imported, are imported by each child)
PRELOAD = ("torch", "torchvision", "numpy", "sacrebleu", "sentencepiece", "fairseq", "fairseq.checkpoint_utils",
           "fairseq.options", "fairseq.tasks", "fairseq.models", "fairseq.criterions", "fairseq.trainer",
           "fairseq.sequence_generator", "flallm_plugin")


def console_scripts() -> Dict[str, str]:
    """console-script name -> ``module:function`` of every installed distribution."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="console_scripts")}


def entry_for(cmd: List[str], scripts: Dict[str, str], bin_dir: str, base_path: List[str]):
    """``(entry, argv)`` running ``cmd`` as its program would, ``sys.path[0]`` set as Python sets it; None
    if it is not a Python program of this venv (the caller runs it as a subprocess)."""
    exe, args = cmd[0], cmd[1:]

    def with_path(first, run):
        def entry():
            sys.path[:] = [first() if callable(first) else first] + base_path
            # the root logger as a fresh interpreter has it: importing fairseq in the server ran its
            # modules' logging.basicConfig (a fresh fairseq-train configures logging before importing fairseq)
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            root.setLevel(logging.WARNING)
            run()
        return entry

    if os.path.realpath(exe) == os.path.realpath(sys.executable):
        if args[:1] == ["-m"] and len(args) >= 2:
            module = args[1]
            return (with_path(os.getcwd, lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)),
                    [module] + args[2:])
        if args[:1] == ["-c"] and len(args) >= 2:
            code = args[1]

            def run_code():
                main = sys.modules["__main__"] = types.ModuleType("__main__")
                exec(compile(code, "<string>", "exec"), main.__dict__)

            return with_path("", run_code), ["-c"] + args[2:]
        if args and not args[0].startswith("-"):
            script = args[0]
            return (with_path(lambda: os.path.dirname(os.path.abspath(script)),
                              lambda: runpy.run_path(script, run_name="__main__")), args)
        return None
    name = os.path.basename(exe)
    if os.path.dirname(os.path.abspath(exe)) == bin_dir and name in scripts:
        module, _, function = scripts[name].partition(":")

        def run():
            target = importlib.import_module(module)
            for attr in function.split("."):
                target = getattr(target, attr)
            sys.exit(target())  # as the console-script wrapper does

        return with_path(bin_dir, run), [exe] + args
    return None


def serve(sock: socket.socket) -> None:
    from flallm_tools.forked_cli import fork_call, wait_exit_code

    scripts = console_scripts()
    bin_dir = os.path.dirname(os.path.abspath(sys.executable))
    base_path = list(sys.path[1:])  # without this file's directory
    reader = sock.makefile("r", encoding="utf-8")
    for line in reader:
        req = json.loads(line)
        found = entry_for(req["cmd"], scripts, bin_dir, base_path)
        if found is None:
            reply = {"forked": False}
        else:
            entry, argv = found
            pid = fork_call(entry, argv, req["env"], req["stdout"], req["stderr"], cwd=req["cwd"], new_group=True)
            reply = {"forked": True, "returncode": wait_exit_code(pid, req["timeout"])}
        sock.sendall((json.dumps(reply) + "\n").encode("utf-8"))


class ForkServer(object):
    """The client: one server process, started with the environment every command of the session gets."""

    def __init__(self, env: Dict[str, str]):
        self.env = dict(env)
        mine, theirs = socket.socketpair()
        self.sock = mine
        fd, self.log = tempfile.mkstemp(prefix="flallm-fork-server-", suffix=".log")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(theirs.fileno())],
                                     env=self.env, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=fd, stderr=fd)
        os.close(fd)
        theirs.close()
        self.reader = mine.makefile("r", encoding="utf-8")
        self.owner = os.getpid()  # a forked child inherits this object (and the atexit handler closing it)

    def serves(self, env: Dict[str, str]) -> bool:
        """Whether a command with ``env`` can run here: the variables read when torch and the plugin are
        imported (thread counts, the import path) must be the server's."""
        keys = ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")
        return all(env.get(k) == self.env.get(k) for k in keys)

    def run(self, cmd: List[str], env: Dict[str, str], cwd: str, stdout: str, stderr: str,
            timeout: float) -> Optional[Dict]:
        """The reply for ``cmd`` (``returncode`` None: timed out and killed), or None if it is not a
        program the server runs."""
        req = {"cmd": cmd, "env": env, "cwd": str(cwd), "stdout": stdout, "stderr": stderr, "timeout": timeout}
        self.sock.sendall((json.dumps(req) + "\n").encode("utf-8"))
        line = self.reader.readline()
        if not line:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-4000:]
            raise RuntimeError(f"the tests' fork server (pid {self.proc.pid}) exited with status "
                               f"{self.proc.wait()}; its log {self.log}:\n{tail}")
        reply = json.loads(line)
        return reply if reply["forked"] else None

    def close(self) -> None:
        """Stop the server (it ends when its socket closes) and remove its log, kept if it failed; a no-op in
        any process but the one that started it (a child forked from a test runs its parent's exit handlers)."""
        if os.getpid() != self.owner:
            return
        self.reader.close()
        self.sock.close()
        if self.proc.wait() == 0:
            os.unlink(self.log)


if __name__ == "__main__":
    server_sock = socket.socket(fileno=int(sys.argv[1]))
    for name in PRELOAD:
        __import__(name)
    serve(server_sock)
