"""The error types the project raises for bad input (presets, scores, parameters, files)."""


class SynthError(Exception):
    """Bad input from a user, a file or a remote message; the text says what and where."""


class UnknownName(SynthError):
    """A name that does not exist: a chain slot, a plugin's parameter, or a message address (the
    OSC server counts these as unknown rather than invalid; `render --skip-unknown` skips them)."""
