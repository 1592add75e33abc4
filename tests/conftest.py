"""Fixtures shared by the tests: the coloured-block releases, built once and only read."""
import os
import sys

import pytest

from flallm_tools.synthetic import make_csl_daily, make_how2sign, make_phoenix
from helpers import TEST_DEVICE, TIMINGS, USER_DIR, run


@pytest.fixture(scope="session")
def phoenix_release(tmp_path_factory):
    """PHOENIX-2014-T release of :data:`flallm_tools.synthetic.DEFAULT_SPLITS` (``--data-root``)."""
    return make_phoenix(str(tmp_path_factory.mktemp("phoenix_release")))


@pytest.fixture(scope="session")
def how2sign_release(tmp_path_factory):
    """How2Sign release (splits train / val / test) of the same sentences."""
    return make_how2sign(str(tmp_path_factory.mktemp("how2sign_release")))


@pytest.fixture(scope="session")
def csl_daily_release(tmp_path_factory):
    """CSL-Daily release of the same sentences, in Chinese."""
    return make_csl_daily(str(tmp_path_factory.mktemp("csl_daily_release")))


@pytest.fixture(scope="session")
def stage1(phoenix_release, tmp_path_factory):
    """A tiny stage-1 run on the PHOENIX release: video data dir (32 px resize, 28 px crop), light_t_tiny
    checkpoint, and its sign-level features (flallm-extract-features), each only read by the tests."""
    root = tmp_path_factory.mktemp("stage2")
    data = str(root / "data")
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", phoenix_release, "--out-dir", data,
         "--resize", "32", "--crop", "28", "--vocab-size", "100"])
    ckpt_dir = str(root / "ckpt1")
    run(["fairseq-train", data, "--user-dir", USER_DIR, "--task", "sign_translation",
         "--arch", "light_t_tiny", "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy",
         "--label-smoothing", "0.2", "--optimizer", "adam", "--lr", "1e-3", "--max-epoch", "2", "--batch-size", "4",
         "--required-batch-size-multiple", "1", "--cpu", "--save-dir", ckpt_dir, "--num-workers", "0",
         "--no-epoch-checkpoints", "--disable-validation"])
    feats = str(root / "feats")
    run(["flallm-extract-features", "--data", data, "--checkpoint",
         os.path.join(ckpt_dir, "checkpoint_last.pt"), "--out-dir", feats, "--cpu", "--num-workers", "0"])
    return {"root": root, "data": data, "ckpt": os.path.join(ckpt_dir, "checkpoint_last.pt"), "feats": feats}


def pytest_configure(config):
    if TEST_DEVICE not in ("cpu", "cuda"):
        raise pytest.UsageError(f"FLALLM_TEST_DEVICE={TEST_DEVICE!r}: set it to cpu or cuda")
    if TEST_DEVICE == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise pytest.UsageError("FLALLM_TEST_DEVICE=cuda, but torch sees no CUDA device: unset it on a CPU machine")


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("timings of labelled subprocess runs")
        for label, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {label}")
