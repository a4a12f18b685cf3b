"""Typed errors of the toolchain; the CLI turns them into one-line messages and exit code 2."""


class ConversionError(ValueError):
    """The input model, calibration set or report request is unusable."""
