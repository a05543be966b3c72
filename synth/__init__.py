"""synth-host: a realtime audio synthesis engine and plugin host."""

from synth.errors import SynthError

__version__ = "0.1.0"
__all__ = ["SynthError", "__version__"]
