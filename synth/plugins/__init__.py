"""Plugin registry: the built-in plugins plus any that other packages declare under the entry point
group `synth.plugins` (each entry point names a Plugin subclass)."""

from __future__ import annotations

from importlib.metadata import entry_points

from synth.errors import SynthError
from synth.plugins.additive import Additive
from synth.plugins.audio_input import AudioInput
from synth.plugins.decoder import NeuralDecoder
from synth.plugins.base import EFFECT, INSTRUMENT, SOURCE, Instrument, Plugin
from synth.plugins.delay import Delay
from synth.plugins.gain_pan import GainPan
from synth.plugins.lv2 import Lv2Plugin
from synth.plugins.noise import NoiseSource
from synth.plugins.oscillator import Oscillator
from synth.plugins.transfer import LiveTransfer
from synth.plugins.voice import Voice

ENTRY_POINT_GROUP = "synth.plugins"
BUILTIN_PLUGINS: tuple[type[Plugin], ...] = (Oscillator, Additive, NeuralDecoder, LiveTransfer, Voice, NoiseSource,
                                                  AudioInput, GainPan, Delay, Lv2Plugin)

_registry: dict[str, type[Plugin]] = {cls.name: cls for cls in BUILTIN_PLUGINS}
_entry_point_errors: list[str] = []
_discovered = False


def register(cls: type[Plugin]) -> type[Plugin]:
    """Add a plugin class to the registry (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Plugin)) or not cls.name:
        raise SynthError(f"{cls!r} is not a Plugin subclass with a name")
    if cls.kind not in (INSTRUMENT, SOURCE, EFFECT):
        raise SynthError(f"plugin {cls.name!r}: kind must be {INSTRUMENT!r}, {SOURCE!r} or {EFFECT!r}")
    _registry[cls.name] = cls
    return cls


def discover(refresh: bool = False) -> list[str]:
    """Load plugins declared under the entry point group; returns one message per failure."""
    global _discovered
    if _discovered and not refresh:
        return list(_entry_point_errors)
    _entry_point_errors.clear()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(entry.load())
        except Exception as error:  # a broken third-party plugin must not stop the host
            _entry_point_errors.append(f"entry point {entry.name!r} ({entry.value}): {error}")
    _discovered = True
    return list(_entry_point_errors)


def available() -> dict[str, type[Plugin]]:
    """Every registered plugin class by name."""
    discover()
    return dict(_registry)


def plugin_class(name: str) -> type[Plugin]:
    """The class registered as `name`; SynthError listing what exists otherwise."""
    registry = available()
    if name in registry:
        return registry[name]
    message = f"unknown plugin {name!r}; available: {', '.join(sorted(registry))}"
    if _entry_point_errors:
        message += "; plugins that failed to load: " + "; ".join(_entry_point_errors)
    raise SynthError(message)


__all__ = ["ENTRY_POINT_GROUP", "EFFECT", "INSTRUMENT", "SOURCE", "Instrument", "Plugin", "available",
           "discover", "plugin_class", "register"]
