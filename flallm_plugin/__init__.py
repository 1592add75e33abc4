"""FLa-LLM for gloss-free sign language translation, as a fairseq ``--user-dir`` plugin.

Importing this package (``import flallm_plugin`` or ``--user-dir flallm_plugin``)
registers the ``sign_translation`` task, the ``light_t`` / ``sign_mbart`` models and
their architectures, the ``sign_contrastive_ce`` criterion, and the ``rouge_l`` / ``sign_eval``
scorers, and allowlists for ``torch.load(weights_only=True)`` exactly the classes a fairseq
checkpoint pickles.
"""
__version__ = "0.1.0"

from flallm_plugin import checkpoint_safety  # noqa: F401  (first: allowlist before any load)
from flallm_plugin import criterions, data, models, optim, scoring, tasks  # noqa: F401


def __getattr__(name):
    # SignTranslator (flallm_plugin/hub.py) on first use: importing the plugin stays as light as before
    if name == "SignTranslator":
        from flallm_plugin.hub import SignTranslator

        return SignTranslator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
