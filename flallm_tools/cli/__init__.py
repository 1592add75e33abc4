"""The command-line programs of the tooling (``flallm-experiment``)."""
