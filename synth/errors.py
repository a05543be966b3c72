"""The one error type the project raises for bad input (presets, scores, parameters, files)."""


class SynthError(Exception):
    """Bad input from a user, a file or a remote message; the text says what and where."""
