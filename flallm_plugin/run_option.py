"""Reading an option of the run's other groups that a config interpolates (``II``)."""
from omegaconf.errors import InterpolationResolutionError


def run_option(cfg, key):
    """An option of the run's other groups that the config interpolates (``II``); ``None``
    where it is not known: a config built from an argparse namespace without it, or
    one set up on its own."""
    try:
        value = getattr(cfg, key, None)
    except InterpolationResolutionError:
        return None
    if isinstance(value, str) and value.startswith("${"):
        return None
    return value
