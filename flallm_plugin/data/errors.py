"""Errors of the sign data pipeline (preprocessing, manifests, video decoding)."""


class SignDataError(ValueError):
    """Bad input: names the file (and, where known, the manifest row)."""
