"""`synth resynth`: an analysis back to audio, as it was or transformed, written to WAV.

Untransformed, the tracks are resynthesised phase-accurately (synth.dsp.resynth). Transformed, one
note of the `additive` instrument plays the analysis at its own pitch with the transformation as its
parameters, so offline and live transformations are the same code; the noise residual follows the
time-stretch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from synth.dsp.partials import Partials, frame_count, load_partials
from synth.dsp.resynth import resynthesize, synthesize_noise
from synth.engine import Engine, Slot
from synth.errors import SynthError
from synth.events import NoteOn
from synth.io.audiofile import write_wav
from synth.plugins.additive import Additive
from synth.render import render_array

RESYNTH_BLOCK = 256
_RELEASE_MS = 20.0


@dataclass(frozen=True)
class Transform:
    """Transformations of an analysis, as the additive instrument's parameters name them.
    stretch: duration factor 0.25..4; transpose_semitones: -24..24; keep_formants: keep the
    spectral envelope; morph: 0..1 towards a second analysis; freeze_position: None, or 0..1 of the
    duration to hold for the whole length; harmonics_only; odd_even: -1..1; tilt_db_per_octave."""

    stretch: float = 1.0
    transpose_semitones: float = 0.0
    keep_formants: bool = False
    morph: float = 0.0
    freeze_position: float | None = None
    harmonics_only: bool = False
    odd_even: float = 0.0
    tilt_db_per_octave: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self == Transform()

    def plugin_values(self) -> dict[str, object]:
        values: dict[str, object] = {
            "stretch": self.stretch, "transpose_semitones": self.transpose_semitones,
            "keep_formants": "on" if self.keep_formants else "off", "morph": self.morph,
            "harmonics_only": "on" if self.harmonics_only else "off", "odd_even": self.odd_even,
            "tilt_db_per_octave": self.tilt_db_per_octave}
        if self.freeze_position is not None:
            values.update(freeze="on", freeze_position=self.freeze_position)
        return values


def render_sines_transformed(partials: Partials, transform: Transform, morph_target: Partials | None = None,
                             progress: bool = False) -> np.ndarray:
    """The analysis' sinusoids, transformed: one additive-instrument note held for the analysis'
    duration times the stretch, at the analysis' own pitch. float32 mono [samples]. progress: a
    tqdm bar on stderr."""
    plugin = Additive(voice_limit=1, analysis=partials, morph_to=morph_target, loop="off", attack_ms=0.1,
                      sustain=1.0, release_ms=_RELEASE_MS, level_db=0.0, velocity_tilt_db=0.0,
                      **transform.plugin_values())
    note = round(plugin.table.root_note)
    # play the note that the analysis is, to the cent: the remainder joins the transposition
    plugin.set_param("transpose_semitones", transform.transpose_semitones + plugin.table.root_note - note)
    engine = Engine([Slot("additive", plugin)], sample_rate=partials.sample_rate, max_block=RESYNTH_BLOCK, channels=1)
    frames = math.ceil(partials.n_samples * transform.stretch)
    return render_array(engine, [NoteOn(0, note, 127)], frames, RESYNTH_BLOCK, progress)[:, 0]


def stretch_noise(partials: Partials, stretch: float) -> Partials:
    """The analysis with its noise envelope stretched in time by `stretch` (frames resampled)."""
    if stretch == 1.0:
        return partials
    frames = partials.noise_db.shape[0]
    n_samples = math.ceil(partials.n_samples * stretch)
    new_frames = frame_count(n_samples, partials.hop_samples)
    source = np.linspace(0.0, frames - 1, new_frames)
    noise_db = np.stack([np.interp(source, np.arange(frames), band) for band in partials.noise_db.T], axis=1)
    empty = np.zeros((new_frames, 0), dtype=np.float32)
    return replace(partials, n_samples=n_samples, freq_hz=empty, amp=empty,
                   phase_rad=None, f0_hz=np.zeros(new_frames, dtype=np.float32), harmonic=False,
                   noise_db=noise_db.astype(np.float32))


def resynthesize_analysis(partials: Partials, transform: Transform = Transform(), morph_target: Partials | None = None,
                          sines_only: bool = False, seed: int = 0, progress: bool = False) -> np.ndarray:
    """Audio (float32 mono, at the analysis' sample rate) from an analysis, transformed or not.
    progress: tqdm bars on stderr."""
    if transform.is_identity and morph_target is None:
        return resynthesize(partials, sines_only=sines_only, seed=seed, progress=progress)
    audio = render_sines_transformed(partials, transform, morph_target, progress)
    if not sines_only:
        noise = synthesize_noise(stretch_noise(partials, transform.stretch), seed=seed, progress=progress)
        length = min(len(audio), len(noise))
        audio[:length] += noise[:length]
    return audio


def resynthesize_file(in_path: str | Path, out_path: str | Path, transform: Transform = Transform(),
                      morph_to: str | Path | None = None, sines_only: bool = False, fmt: str = "float32",
                      seed: int = 0, progress: bool = False) -> tuple[Path, float]:
    """Read an analysis file, resynthesise it, write a mono WAV atomically; returns (path, seconds).
    progress: tqdm bars on stderr."""
    partials = load_partials(in_path)
    target = load_partials(morph_to) if morph_to is not None else None
    for path, analysis in ((in_path, partials), (morph_to, target)):
        if analysis is not None and not (analysis.amp > 0).any():
            raise SynthError(f"{path}: the analysis holds no sounding partial (was the sound silent?); "
                             f"there is nothing to resynthesize")
    audio = resynthesize_analysis(partials, transform, target, sines_only, seed, progress)
    out = write_wav(out_path, audio[:, None], partials.sample_rate, fmt)
    return out, len(audio) / partials.sample_rate
