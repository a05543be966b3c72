"""The error and warning types the project raises for bad input (presets, scores, parameters, files)."""


class SynthError(Exception):
    """Bad input from a user, a file or a remote message; the text says what and where."""


class UnknownName(SynthError):
    """A name that does not exist: a chain slot, a plugin's parameter, or a message address (the
    OSC server counts these as unknown rather than invalid; `render --skip-unknown` skips them)."""


class SynthWarning(UserWarning):
    """Something about the input the user should know that does not stop the work (a syllable
    count that does not match the notes, tokens a model never saw); `synth` prints it as one
    line, `synth: warning: <sentence>`."""
