"""Shared, resumable steps of ``flallm-experiment``.

Every step (a stage-1 or stage-2 training, a feature extraction, a decoding) is keyed by what it
computes: a JSON ``spec`` (data, recipe arguments, seed, the keys of the steps it reads). It lives in
``OUT/steps/<kind>-<sha256 of the spec>/``; when it has succeeded, its record (spec, facts, seconds) is
written there as ``done.json``, atomically and last. A step with ``done.json`` is never run again: rows
that need the same work share it, and a re-run after an interruption redoes only what had not finished.
A step directory without ``done.json`` (a killed run) is deleted and the step redone from scratch.

fairseq's programs (``fairseq-train``, ``fairseq-generate``) and ``flallm-extract-features`` run in a
forked child of this process (:mod:`flallm_tools.forked_cli`), with the command's argv, output and exit
status: the child starts with fairseq already imported (a fresh interpreter spends ~5 s importing it, a tiny
step less than that) and is as isolated from the next step as a new process. Other commands run as
subprocesses.
"""
import fcntl
import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import time
from typing import Callable, Dict, List, Optional

from flallm_plugin.data.atomic_file import atomic_write_text
from flallm_tools.forked_cli import run_forked

logger = logging.getLogger("flallm.experiment")

DONE = "done.json"

# command (argv[0]'s name, or the module after ``python -m``) -> (module, function) of its entry point
FORKED_ENTRY_POINTS = {
    "fairseq-train": ("fairseq_cli.train", "cli_main"),
    "fairseq-generate": ("fairseq_cli.generate", "cli_main"),
    "fairseq-preprocess": ("fairseq_cli.preprocess", "cli_main"),
    "flallm_plugin.cli.extract_features": ("flallm_plugin.cli.extract_features", "cli_main"),
}


def entry_point(cmd: List[str]):
    """``(module, function, argv)`` when ``cmd`` is one of :data:`FORKED_ENTRY_POINTS`, else None."""
    if len(cmd) >= 3 and cmd[1] == "-m" and cmd[2] in FORKED_ENTRY_POINTS:
        return FORKED_ENTRY_POINTS[cmd[2]] + ([cmd[2]] + cmd[3:],)
    name = os.path.basename(cmd[0])
    if name in FORKED_ENTRY_POINTS:
        return FORKED_ENTRY_POINTS[name] + ([name] + cmd[1:],)
    return None


def spec_key(kind: str, spec: Dict) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{kind}-{digest[:16]}"


class StepStore(object):
    """Runs steps under ``root`` once each; counts what it ran and what it reused."""

    def __init__(self, root: str, env: Optional[Dict[str, str]] = None):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.env = env
        self.ran: List[str] = []
        self.reused: List[str] = []

    def path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def done_record(self, key: str) -> Optional[Dict]:
        done = os.path.join(self.path(key), DONE)
        if not os.path.isfile(done):
            return None
        with open(done, encoding="utf-8") as f:
            return json.load(f)

    def step(self, kind: str, spec: Dict, run: Callable[[str], Dict]) -> Dict:
        """The record of the step ``(kind, spec)``: read from its ``done.json``, or made by
        ``run(step_dir)`` (which returns the step's facts) in a fresh directory.

        Several runs may share one store (e.g. seeds in parallel): a step is held by an OS lock on
        ``<key>.lock`` while it is checked and run, so a second run needing it waits and then reuses it
        instead of deleting it as unfinished. The lock goes with the process (a killed run holds none)."""
        key = spec_key(kind, spec)
        with open(os.path.join(self.root, key + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._step(key, kind, spec, run)

    def _step(self, key: str, kind: str, spec: Dict, run: Callable[[str], Dict]) -> Dict:
        record = self.done_record(key)
        if record is not None:
            self.reused.append(key)
            logger.info(f"{key}: done earlier, reused")
            return record
        step_dir = self.path(key)
        if os.path.isdir(step_dir):
            logger.info(f"{key}: unfinished earlier run, deleted and redone")
            shutil.rmtree(step_dir)
        os.makedirs(step_dir)
        with open(os.path.join(step_dir, "spec.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=1, sort_keys=True)
        t0 = time.time()
        facts = run(step_dir)
        record = {"key": key, "kind": kind, "dir": step_dir, "spec": spec, "seconds": round(time.time() - t0, 2),
                  **facts}
        atomic_write_text(os.path.join(step_dir, DONE), lambda f: json.dump(record, f, indent=1, sort_keys=True))
        self.ran.append(key)
        logger.info(f"{key}: done in {record['seconds']:.1f} s")
        return record

    def command(self, step_dir: str, name: str, cmd: List[str], stdout_path: Optional[str] = None):
        """Run ``cmd`` with its output in ``step_dir/<name>.log`` (its stdout alone in ``stdout_path``
        if given). A failure names the step, the exit status and the log, followed by its last lines."""
        log_path = os.path.join(step_dir, f"{name}.log")
        logger.info(f"{os.path.basename(step_dir)}: {' '.join(cmd)}")
        env = dict(self.env if self.env is not None else os.environ, PYTHONUNBUFFERED="1")
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(" ".join(cmd) + "\n")
        if stdout_path is not None:
            open(stdout_path, "w").close()
        forked = entry_point(cmd)
        if forked is not None:
            module, function, argv = forked
            entry = getattr(importlib.import_module(module), function)  # imported here, before the fork
            returncode = run_forked(entry, argv, env, stdout_path or log_path, log_path)
        else:
            with open(log_path, "a", encoding="utf-8") as log:
                if stdout_path is None:
                    returncode = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
                else:
                    with open(stdout_path, "w", encoding="utf-8") as out:
                        returncode = subprocess.run(cmd, stdout=out, stderr=log, env=env).returncode
        with open(log_path, encoding="utf-8") as f:
            text = f.read()
        if returncode != 0:
            tail = "\n".join(text.splitlines()[-25:])
            raise RuntimeError(f"{log_path}: step {os.path.basename(step_dir)} ({name}) failed with exit status "
                               f"{returncode}; last lines of its log:\n{tail}")
