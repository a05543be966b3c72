"""Synthesis of a decoder runtime's output, one frame at a time, for all its voices.

After `DecoderRuntime.step` has turned one frame of conditioning into controls (amplitude,
harmonic distribution, noise band magnitudes per voice), `DecoderSynth.render_frame` renders the
hop they describe: the harmonics through the oscillator bank, gliding linearly from the previous
frame's frequencies and amplitudes to these, and each voice's own seeded white noise through the
frame's filter (synth.dsp.filtered_noise, which lags its frame by noise_bands - 1 samples).

The note-playing instrument (synth.plugins.decoder), live timbre transfer
(synth.plugins.transfer) and offline transfer (synth.transfer) all render through this class, so
the three sound the same for the same conditioning. Everything is allocated at construction;
render_frame and restart_voice allocate nothing.
"""

from __future__ import annotations

import numpy as np

from synth.dsp.decoder_runtime import DecoderRuntime
from synth.dsp.decoder_voices import (harmonic_partials, noise_voices, settle_voice_partials, silence_voice,
                                      take_voice_partials)
from synth.dsp.filtered_noise import make_noise_state
from synth.dsp.noise import seed_states
from synth.dsp.oscbank import make_workspace, render_partials


class DecoderSynth:
    """Oscillator-bank and filtered-noise state for every voice of `runtime`.

    seed: the white noise's seed (each voice draws its own stream from it).
    """

    def __init__(self, runtime: DecoderRuntime, seed: int = 0):
        config = runtime.config
        self.runtime = runtime
        self.hop = int(config["hop_samples"])
        self.sample_rate = float(config["sample_rate"])
        self.harmonics = int(config["harmonics"])
        voices, bands = runtime.voices, int(config["noise_bands"])
        count = voices * self.harmonics
        self._freq_start = np.zeros(count, dtype=np.float32)
        self._freq_end = np.zeros(count, dtype=np.float32)
        self._amp_start = np.zeros(count, dtype=np.float32)
        self._amp_end = np.zeros(count, dtype=np.float32)
        self._phase = np.zeros(count)
        self._workspace = make_workspace(count)
        harmonics = self.harmonics
        self._one_voice = (np.zeros(harmonics, np.float32), np.zeros(harmonics, np.float32),
                           np.zeros(harmonics, np.float32), np.zeros(harmonics, np.float32), np.zeros(harmonics))
        self._white = np.zeros(self.hop, dtype=np.float32)
        self._bands = np.zeros(bands, dtype=np.float32)
        self._rng = seed_states(int(seed), voices)
        states = [make_noise_state(bands) for _ in range(voices)]
        self._taps = np.stack([s[0] for s in states])
        self._overlap = np.stack([s[1] for s in states])

    def restart_voice(self, voice: int) -> None:
        """Voice `voice` starts afresh: its recurrent state, harmonic phases and noise tail are zeroed."""
        self.runtime.reset_voice(voice)
        silence_voice(self._phase, voice, self.harmonics, self._overlap)

    def reset(self) -> None:
        """Every voice silent and afresh (the noise streams go on where they are). Allocates nothing."""
        self.runtime.reset()
        for array in (self._phase, self._amp_start, self._amp_end, self._overlap):
            array[...] = 0.0

    def render_frame(self, harmonic_out: np.ndarray, noise_out: np.ndarray, f0_hz: np.ndarray,
                     active: np.ndarray, harmonic_gain: float, noise_gain: float, controls: tuple | None = None) -> None:
        """Add one hop of the runtime's last step into harmonic_out[0:hop] and noise_out[0:hop]
        (float32; the same array for a mix). f0_hz: float32 [voices] (Hz) the step was given;
        active: bool [voices] (inactive voices glide to silence); harmonic_gain, noise_gain: linear;
        controls: (amplitude [voices], harmonics [voices, H], noise [voices, NB]) to render instead
        of the runtime's last step (a frame of DecoderRuntime.run_sequence)."""
        amplitude, harmonics, noise = controls or (self.runtime.amplitude, self.runtime.harmonics, self.runtime.noise)
        harmonic_partials(f0_hz, amplitude, harmonics, active, harmonic_gain,
                          self._freq_start, self._amp_start, self._freq_end, self._amp_end)
        render_partials(harmonic_out, self.hop, self._freq_start, self._freq_end, self._amp_start, self._amp_end,
                        self._phase, self.sample_rate, self._workspace)
        np.copyto(self._freq_start, self._freq_end)
        np.copyto(self._amp_start, self._amp_end)
        noise_voices(noise_out, self.hop, self._rng, self._white, noise, noise_gain, active, self._bands,
                     self._taps, self._overlap)

    def render_onsets(self, out: np.ndarray, n: int, f0_hz: np.ndarray, starting: np.ndarray, harmonic_gain: float,
                      noise_gain: float) -> None:
        """Add into out[0:n] (float32) the first frame of each voice v with starting[v] (bool
        [voices]): a note that began n samples (0 < n < hop) before the end of the frame in
        progress, whose other voices are already rendered. The runtime's last step (taken for
        those voices alone) is reached over those n samples instead of a hop, the harmonics
        fading in from silence at their own pitch; from the next frame on the voice keeps the
        frame grid with the others, so its note sounds from its own sample. Allocates nothing."""
        harmonic_partials(f0_hz, self.runtime.amplitude, self.runtime.harmonics, starting, harmonic_gain,
                          self._freq_start, self._amp_start, self._freq_end, self._amp_end)
        freq_start, freq_end, amp_start, amp_end, phase = self._one_voice
        for v in range(self.runtime.voices):
            if starting[v]:
                take_voice_partials(v, self.harmonics, self._freq_start, self._freq_end, self._amp_start,
                                    self._amp_end, self._phase, freq_start, freq_end, amp_start, amp_end, phase)
                render_partials(out, n, freq_start, freq_end, amp_start, amp_end, phase, self.sample_rate,
                                self._workspace)
                settle_voice_partials(v, self.harmonics, self._freq_start, self._amp_start, self._phase, freq_end,
                                      amp_end, phase)
        noise_voices(out, n, self._rng, self._white, self.runtime.noise, noise_gain, starting, self._bands,
                     self._taps, self._overlap)
