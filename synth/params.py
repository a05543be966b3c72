"""Parameter specs (range, unit, scale, smoothing, 0..1 normalisation) and per-block smoothing.

A `ParamSpec` describes one parameter of a plugin. Numeric parameters have a native range and unit
(Hz, ms, dB, ...), a linear or logarithmic scale that decides how 0..1 maps onto that range, and a
smoothing time. Choice parameters hold one of a few named options (stored as its index).

A `SmoothedParam` holds a parameter's value while the engine runs. Changes glide linearly (in the
scaled domain: dB or log-Hz, so sweeps sound even) over the smoothing time; the plugin asks for the
value at the start and end of each block segment and interpolates per sample in its kernel, so a
change never makes a step (zipper noise) and the result does not depend on how blocks are split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synth.errors import SynthError

LINEAR = "linear"
LOG = "log"


@dataclass(frozen=True)
class ParamSpec:
    """One plugin parameter.

    name: identifier with a unit suffix where it has one (`cutoff_hz`, `attack_ms`, `gain_db`).
    minimum, maximum: native range, inclusive. default: native value (a choice name for choices).
    unit: shown to people and controllers ("Hz", "ms", "dB", "" for plain ratios).
    scale: "linear" or "log" (log needs minimum > 0); decides normalisation and smoothing domain.
    smoothing_ms: glide time of a change; 0 applies changes at once.
    choices: option names for a choice parameter (then minimum/maximum are 0 and len-1).
    """

    name: str
    minimum: float
    maximum: float
    default: float | str
    unit: str = ""
    scale: str = LINEAR
    smoothing_ms: float = 20.0
    choices: tuple[str, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if self.scale not in (LINEAR, LOG):
            raise ValueError(f"{self.name}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == LOG and self.minimum <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs minimum > 0")
        if not self.minimum < self.maximum:
            raise ValueError(f"{self.name}: minimum must be below maximum")

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    @property
    def default_value(self) -> float:
        """The default as a native number (a choice's index)."""
        return self.coerce(self.default, where=self.name)

    def describe(self) -> str:
        """What a valid value looks like, for error messages and listings."""
        if self.is_choice:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        unit = f" {self.unit}" if self.unit else ""
        return f"a number in {self.minimum:g}..{self.maximum:g}{unit}"

    def check(self, value: object) -> float:
        """A value from a file or message as a native float; SynthError saying what was expected."""
        if self.is_choice:
            if isinstance(value, str) and value in self.choices:
                return float(self.choices.index(value))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if float(value).is_integer() and 0 <= value < len(self.choices):
                    return float(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum <= float(value) <= self.maximum:  # also refuses NaN
                return float(value)
        raise SynthError(f"expected {self.describe()}, got {value!r}")

    def coerce(self, value: object, where: str) -> float:
        """Like check, with `where` (file and key, or address) leading the error message."""
        try:
            return self.check(value)
        except SynthError as error:
            raise SynthError(f"{where}: {error}") from None

    def clamp(self, value: float) -> float:
        """Native value forced into range (NaN becomes the default)."""
        if value != value:
            return self.default_value
        value = min(max(float(value), self.minimum), self.maximum)
        return float(round(value)) if self.is_choice else value

    def to_normalized(self, value: float) -> float:
        """Native value -> 0..1 position on the control's travel."""
        value = self.clamp(value)
        if self.scale == LOG:
            return math.log(value / self.minimum) / math.log(self.maximum / self.minimum)
        return (value - self.minimum) / (self.maximum - self.minimum)

    def from_normalized(self, position: float) -> float:
        """0..1 position (clamped) -> native value."""
        if position != position:
            return self.default_value
        position = min(max(float(position), 0.0), 1.0)
        if self.scale == LOG:
            value = self.minimum * (self.maximum / self.minimum) ** position
        else:
            value = self.minimum + position * (self.maximum - self.minimum)
        return self.clamp(value)

    def display(self, value: float) -> float | str:
        """Native value as people write it in presets (choice names for choices)."""
        return self.choices[int(value)] if self.is_choice else float(value)


def float_param(name, minimum, maximum, default, unit="", scale=LINEAR, smoothing_ms=20.0, doc=""):
    """A numeric parameter; see ParamSpec for the fields."""
    return ParamSpec(name, float(minimum), float(maximum), float(default), unit, scale, smoothing_ms, (), doc)


def choice_param(name, choices, default, doc=""):
    """A parameter that holds one of `choices` (names); changes apply at once."""
    return ParamSpec(name, 0.0, float(len(choices) - 1), default, "", LINEAR, 0.0, tuple(choices), doc)


class SmoothedParam:
    """The live value of one parameter: a target and a linear glide towards it.

    `prepare(sample_rate)` before use; `set(value)` from the event path (a validated native value);
    `ramp(n)` once per segment returns (start, end) native values for the next n samples.
    The segment in which a glide reaches its goal interpolates to the goal over the whole segment,
    so a glide can end up to one segment later than the smoothing time.
    """

    __slots__ = ("spec", "target", "_current", "_goal", "_step", "_glide_samples")

    def __init__(self, spec: ParamSpec, value: float | None = None):
        self.spec = spec
        self.target = spec.default_value if value is None else spec.clamp(value)
        self._goal = self._to_internal(self.target)
        self._current = self._goal
        self._step = 0.0
        self._glide_samples = 1

    def _to_internal(self, value: float) -> float:
        return math.log(value) if self.spec.scale == LOG else value

    def _to_native(self, internal: float) -> float:
        return math.exp(internal) if self.spec.scale == LOG else internal

    def prepare(self, sample_rate: float) -> None:
        """Set the glide length for this sample rate and jump to the target."""
        self._glide_samples = max(1, round(self.spec.smoothing_ms * sample_rate / 1000.0))
        self.jump()

    def jump(self) -> None:
        """Finish any glide at once."""
        self._current = self._goal
        self._step = 0.0

    def set(self, value: float) -> None:
        """Glide to `value` (native units, clamped into range) over the smoothing time."""
        self.target = self.spec.clamp(value)
        self._goal = self._to_internal(self.target)
        if self.spec.smoothing_ms <= 0.0:
            self.jump()
        else:
            self._step = (self._goal - self._current) / self._glide_samples

    @property
    def value(self) -> float:
        """The current (possibly mid-glide) native value."""
        return self._to_native(self._current)

    def ramp(self, n: int) -> tuple[float, float]:
        """Advance n samples; return the native values at the segment's start and end."""
        start = self._current
        if self._step != 0.0:
            end = start + self._step * n
            if (self._step > 0.0 and end >= self._goal) or (self._step < 0.0 and end <= self._goal):
                end = self._goal
                self._step = 0.0
            self._current = end
        return self._to_native(start), self._to_native(self._current)
