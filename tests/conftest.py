"""Fixtures shared by the tests: the coloured-block releases, built once and only read."""
import pytest

from flallm_plugin.synthetic import make_csl_daily, make_how2sign, make_phoenix
from helpers import TIMINGS


@pytest.fixture(scope="session")
def phoenix_release(tmp_path_factory):
    """PHOENIX-2014-T release of :data:`flallm_plugin.synthetic.DEFAULT_SPLITS` (``--data-root``)."""
    return make_phoenix(str(tmp_path_factory.mktemp("phoenix_release")))


@pytest.fixture(scope="session")
def how2sign_release(tmp_path_factory):
    """How2Sign release (splits train / val / test) of the same sentences."""
    return make_how2sign(str(tmp_path_factory.mktemp("how2sign_release")))


@pytest.fixture(scope="session")
def csl_daily_release(tmp_path_factory):
    """CSL-Daily release of the same sentences, in Chinese."""
    return make_csl_daily(str(tmp_path_factory.mktemp("csl_daily_release")))


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("timings of labelled subprocess runs")
        for label, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {label}")
