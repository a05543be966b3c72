"""Shared machinery of polyphonic instruments: a voice pool, ADSR parameters, output level."""

from __future__ import annotations

import numpy as np

from synth.dsp.envelopes import attack_increment, fall_coefficient
from synth.dsp.mix import add_mono
from synth.params import LOG, float_param
from synth.plugins.base import Instrument
from synth.voices import VoicePool

DEFAULT_VOICE_LIMIT = 16


def envelope_params(attack_ms=5.0, decay_ms=300.0, sustain=0.7, release_ms=400.0, level_db=-12.0):
    """ADSR and level parameter specs with the given defaults."""
    return (
        float_param("attack_ms", 0.1, 10000, attack_ms, "ms", LOG, 0, "linear rise to full level"),
        float_param("decay_ms", 1, 20000, decay_ms, "ms", LOG, 0, "time to fall 60 dB towards sustain"),
        float_param("sustain", 0, 1, sustain, "", smoothing_ms=0, doc="level held while the key is down"),
        float_param("release_ms", 1, 20000, release_ms, "ms", LOG, 0, "time to fall 60 dB after note off"),
        float_param("level_db", -60, 6, level_db, "dB", doc="output level of the instrument"),
    )


def velocity_gain(velocity: int) -> float:
    """Amplitude (0..1) for a MIDI velocity 1..127: a square law, so 64 is about -12 dB."""
    return (min(max(velocity, 0), 127) / 127.0) ** 2


class PolyInstrument(Instrument):
    """An instrument whose voices share one envelope shape; subclasses render the voices.

    Subclasses implement `render_voices(mono, n, envelope)` (fill mono[:n] with the voice sum),
    `start_voice(v, was_idle)` and `clear_voice_state()`.
    """

    def __init__(self, voice_limit: int = DEFAULT_VOICE_LIMIT, **values: object):
        super().__init__(**values)
        self.voices = VoicePool(voice_limit)
        self._mono = np.zeros(0, dtype=np.float32)

    def allocate(self) -> None:
        self._mono = np.zeros(self.max_block, dtype=np.float32)

    def warm_up(self) -> None:
        self.note_on(60, 100)
        super().warm_up()
        self.voices.warm_up()

    def note_on(self, note: int, velocity: int) -> bool:
        v, was_idle, stolen = self.voices.start(note, velocity_gain(velocity))
        self.start_voice(v, was_idle)
        return stolen

    def note_off(self, note: int) -> None:
        self.voices.release(note)

    def all_notes_off(self) -> None:
        self.voices.release_all()

    @property
    def active_voices(self) -> int:
        return self.voices.active_count

    def envelope(self) -> tuple[float, float, float, float]:
        """(attack increment, decay coefficient, sustain level, release coefficient) per sample."""
        p, sr = self.params, self.sample_rate
        return (
            attack_increment(p["attack_ms"].target, sr),
            fall_coefficient(p["decay_ms"].target, sr),
            p["sustain"].target,
            fall_coefficient(p["release_ms"].target, sr),
        )

    def process(self, bus: np.ndarray, n: int) -> None:
        level_start, level_end = self.params["level_db"].ramp(n)
        self.render_voices(self._mono, n, self.envelope())
        add_mono(bus, self._mono, n, level_start, level_end)

    def reset(self) -> None:
        super().reset()
        self.voices.silence()
        self.clear_voice_state()

    def render_voices(self, mono: np.ndarray, n: int, envelope: tuple) -> None:
        raise NotImplementedError

    def start_voice(self, v: int, was_idle: bool) -> None:
        raise NotImplementedError

    def clear_voice_state(self) -> None:
        raise NotImplementedError
