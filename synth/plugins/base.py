"""The plugin API: declared parameters, prepare / process / reset, and note handling for instruments.

Contract for `process(bus, n)` (it runs on the audio thread, see synth/engine.py):
- bus is float32 [channels, max_block]; only the first n samples (n <= max_block) count.
- instruments and sources ADD their output into the bus; effects transform it in place.
- no allocation, I/O, locks or logging; state lives in arrays made by `prepare`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from synth.errors import SynthError, UnknownName
from synth.params import ParamSpec, SmoothedParam

INSTRUMENT = "instrument"  # plays notes; its output sums into the bus
SOURCE = "source"  # sums into the bus but takes no notes (live input)
EFFECT = "effect"  # transforms the bus in place
_WARM_UP_SAMPLES = 16


class Plugin:
    """Base of every plugin. Subclasses set `name`, `kind`, `param_specs` and write the DSP.

    Keyword arguments set initial parameter values in native units (choice names for choices).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = EFFECT
    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()
    file_keys: ClassVar[tuple[str, ...]] = ()  # data files the plugin reads (keyword arguments; preset `files`)
    setting_keys: ClassVar[tuple[str, ...]] = ()  # fixed construction choices (keyword arguments; preset `settings`)
    reads_block_input: ClassVar[bool] = False  # the engine calls begin_input() before each block is rendered

    def __init__(self, **values: object):
        self.params = {spec.name: SmoothedParam(spec) for spec in self.param_specs}
        for key, value in values.items():
            self.params[self._spec(key).name].set(self._spec(key).coerce(value, where=key))
        self.sample_rate = 0.0
        self.max_block = 0
        self.channels = 0

    @classmethod
    def _spec(cls, name: str) -> ParamSpec:
        for spec in cls.param_specs:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in cls.param_specs) or "none"
        raise UnknownName(f"plugin {cls.name!r} has no parameter {name!r} (it has: {known})")

    @classmethod
    def specialize(cls, settings: dict) -> type[Plugin]:
        """The class that a slot with these construction settings instantiates: this one, except for
        plugins whose parameters depend on a setting (an LV2 plugin's URI names its ports)."""
        return cls

    @classmethod
    def param_spec(cls, name: str) -> ParamSpec:
        """The spec of parameter `name`; SynthError naming the known ones if there is none."""
        return cls._spec(name)

    def set_param(self, name: str, value: float) -> None:
        """Glide parameter `name` to a native value (clamped into its range)."""
        self.params[name].set(value)

    def set_normalized(self, name: str, position: float) -> None:
        """Set parameter `name` from a 0..1 control position."""
        param = self.params[name]
        param.set(param.spec.from_normalized(position))

    def set_tempo(self, bpm: float) -> None:
        """The song's tempo changed (beats per minute); plugins with tempo-synced parameters follow it."""

    def get_param(self, name: str) -> float:
        """The value parameter `name` is heading to (native units)."""
        return self.params[name].target

    def param_values(self) -> dict[str, float | str]:
        """Every parameter as a preset would write it."""
        return {name: p.spec.display(p.target) for name, p in self.params.items()}

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        """Make every buffer for this rate and block size, then compile and run the kernels once."""
        self.sample_rate = float(sample_rate)
        self.max_block = int(max_block)
        self.channels = int(channels)
        for param in self.params.values():
            param.prepare(self.sample_rate)
        self.allocate()
        self.warm_up()
        self.reset()

    def allocate(self) -> None:
        """Make state arrays (called by prepare). Default: none."""

    def warm_up(self) -> None:
        """Run process once so every kernel is compiled before audio starts."""
        scratch = np.zeros((self.channels, self.max_block), dtype=np.float32)
        self.process(scratch, min(_WARM_UP_SAMPLES, self.max_block))

    def process(self, bus: np.ndarray, n: int) -> None:
        raise NotImplementedError

    @property
    def latency_samples(self) -> int:
        """How many samples this plugin's output lags the live input that drives it (0: none)."""
        return 0

    def latency_detail(self) -> str:
        """What latency_samples is made of, for people (empty: nothing to add)."""
        return ""

    def begin_input(self, live_input: np.ndarray | None, start: int, n: int) -> None:
        """Plugins with `reads_block_input`: the live input of the next n frames, rows start..start+n
        of live_input (float32 [frames, input channels], as the stream delivers it; None: silence),
        before any of those frames is rendered, however the engine then splits them at events.
        Runs on the audio thread (same rules as process)."""

    def reset(self) -> None:
        """Clear DSP state (voices, delay lines, filters); parameter values stay, glides finish."""
        for param in self.params.values():
            param.jump()


class Instrument(Plugin):
    """A sound source that plays notes."""

    kind: ClassVar[str] = INSTRUMENT

    def note_on(self, note: int, velocity: int) -> bool:
        """Start `note` (MIDI 0..127) at `velocity` (1..127); True when a sounding note was stolen."""
        raise NotImplementedError

    def note_off(self, note: int) -> None:
        raise NotImplementedError

    def all_notes_off(self) -> None:
        raise NotImplementedError

    @property
    def active_voices(self) -> int:
        return 0
