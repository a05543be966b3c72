"""Frame-rate conditioning of the decoder instrument's voices: note pitch with glide and vibrato,
loudness from velocity and the envelope, and the partial controls the model's output becomes.

Kernels keep no state; the instrument owns every array. Frame k covers one hop of samples and its
values are the ones reached at the hop's end (the convention of the decoder model).
"""

import math

from numba import njit

from synth.dsp.envelopes import IDLE, adsr_step
from synth.dsp.filtered_noise import filtered_noise_kernel
from synth.dsp.noise import white_noise
from synth.dsp.oscillators import midi_to_hz

SILENT_DB = -120.0


@njit(nogil=True, cache=True)
def advance_envelopes(stage, level, samples, attack_inc, decay_coef, sustain, release_coef, voices):
    """Advance the ADSR of each voice v with voices[v] (bool) by `samples` samples (arrays [voices],
    in place)."""
    for v in range(stage.shape[0]):
        if not voices[v]:
            continue
        st, lev = stage[v], level[v]
        for _ in range(samples):
            if st == IDLE:
                break
            st, lev = adsr_step(st, lev, attack_inc, decay_coef, sustain, release_coef)
        stage[v] = st
        level[v] = lev


@njit(nogil=True, cache=True)
def voice_conditioning(stage, level, velocity, note, pitch_hz, vibrato_phase, frame_s, glide_coef,
                       tune_ratio, vibrato_rate_hz, vibrato_cents, loudness_max_db, loudness_min_db,
                       f0_out, loudness_out, active_out, voices):
    """Conditioning for the next frame (frame_s seconds long) of each voice v with voices[v] (bool);
    arrays [voices], the others left as they are.

    pitch_hz glides (exponentially in log frequency, glide_coef per frame: 0 = at once) towards the
    note's equal-tempered frequency times tune_ratio; vibrato adds vibrato_cents (peak) at
    vibrato_rate_hz, its phase (cycles) advancing frame_s seconds a frame. Loudness is
    loudness_max_db plus the level of velocity gain times envelope, floored at loudness_min_db.
    """
    for v in range(stage.shape[0]):
        if not voices[v]:
            continue
        active_out[v] = stage[v] != IDLE
        if not active_out[v]:
            loudness_out[v] = loudness_min_db
            continue
        target = midi_to_hz(note[v]) * tune_ratio
        if pitch_hz[v] <= 0.0:
            pitch_hz[v] = target
        else:
            pitch_hz[v] = target * (pitch_hz[v] / target) ** glide_coef
        vibrato_phase[v] = (vibrato_phase[v] + vibrato_rate_hz * frame_s) % 1.0
        cents = vibrato_cents * math.sin(2.0 * math.pi * vibrato_phase[v])
        f0_out[v] = pitch_hz[v] * 2.0 ** (cents / 1200.0)
        gain = level[v] * velocity[v]
        db = 20.0 * math.log10(gain) if gain > 1e-6 else SILENT_DB
        loudness_out[v] = max(loudness_max_db + db, loudness_min_db)


@njit(nogil=True, cache=True)
def harmonic_partials(f0_hz, amplitude, harmonics, active, harmonic_gain, freq_start, amp_start, freq_end, amp_end):
    """The frame's partial controls [voices * H] from the model's output: harmonic h of voice v
    ends the frame at (h+1) * f0_hz[v] Hz with amplitude[v] * harmonics[v, h] * harmonic_gain
    (silent voices: 0). A harmonic that was silent at the frame's start starts at its end
    frequency, so a new note fades in at its own pitch instead of sweeping from an old one."""
    count = harmonics.shape[1]
    for v in range(harmonics.shape[0]):
        for h in range(count):
            i = v * count + h
            freq_end[i] = (h + 1) * f0_hz[v]
            amp_end[i] = amplitude[v] * harmonics[v, h] * harmonic_gain if active[v] else 0.0
            if amp_start[i] == 0.0:
                freq_start[i] = freq_end[i]


@njit(nogil=True, cache=True)
def fill_rows(matrix, row):
    """matrix[r, :] = row for every row r (matrix [R, C], row [C])."""
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            matrix[r, c] = row[c]


@njit(nogil=True, cache=True)
def take_voice_partials(voice, harmonics, freq_start, freq_end, amp_start, amp_end, phase_rad,
                        one_freq_start, one_freq_end, one_amp_start, one_amp_end, one_phase_rad):
    """Copy voice `voice`'s partials (entries voice * harmonics onwards of the [voices * harmonics]
    arrays) into the one-voice arrays [harmonics], so the oscillator bank can render that voice alone."""
    first = voice * harmonics
    for h in range(harmonics):
        one_freq_start[h] = freq_start[first + h]
        one_freq_end[h] = freq_end[first + h]
        one_amp_start[h] = amp_start[first + h]
        one_amp_end[h] = amp_end[first + h]
        one_phase_rad[h] = phase_rad[first + h]


@njit(nogil=True, cache=True)
def settle_voice_partials(voice, harmonics, freq_start, amp_start, phase_rad, one_freq_end, one_amp_end, one_phase_rad):
    """After rendering a voice alone (take_voice_partials): its next segment starts where this one
    ended (frequency, amplitude and phase back into the [voices * harmonics] arrays)."""
    first = voice * harmonics
    for h in range(harmonics):
        freq_start[first + h] = one_freq_end[h]
        amp_start[first + h] = one_amp_end[h]
        phase_rad[first + h] = one_phase_rad[h]


@njit(nogil=True, cache=True)
def add_samples(destination, destination_start, source, source_start, count):
    """destination[destination_start : +count] += source[source_start : +count] (no views made)."""
    for i in range(count):
        destination[destination_start + i] += source[source_start + i]


@njit(nogil=True, cache=True)
def copy_samples(destination, destination_start, source, source_start, count):
    """destination[destination_start : +count] = source[source_start : +count] (no views made)."""
    for i in range(count):
        destination[destination_start + i] = source[source_start + i]


@njit(nogil=True, cache=True)
def noise_voices(out, n, rng_states, white, magnitudes, gain, active, band_scratch, taps_scratch, overlap_state):
    """Add every active voice's filtered noise for one frame into out[0:n] (float32).

    Per voice v: n samples of its own seeded white noise (rng_states[v], advanced) shaped by
    magnitudes[v] * gain (float32 [voices, NB], linear) through synth.dsp.filtered_noise, with its
    own convolution tail overlap_state[v] (float64 [voices, L - 1]) and scratch taps_scratch[v].
    white: float32 [>= n] and band_scratch: float32 [NB] are scratch."""
    for v in range(magnitudes.shape[0]):
        if not active[v]:
            continue
        for i in range(n):
            white[i] = white_noise(rng_states, v)
        for b in range(magnitudes.shape[1]):
            band_scratch[b] = magnitudes[v, b] * gain
        filtered_noise_kernel(out, n, white, band_scratch, taps_scratch[v], overlap_state[v])


@njit(nogil=True, cache=True)
def silence_voice(phase_rad, voice, harmonics, overlap_state):
    """Zero voice `voice`'s harmonic phases (phase_rad [voices * harmonics]) and noise tail."""
    for h in range(harmonics):
        phase_rad[voice * harmonics + h] = 0.0
    for i in range(overlap_state.shape[1]):
        overlap_state[voice, i] = 0.0
