"""Partial controls for the additive instrument: an analysis played back per voice, transformed.

Each voice has a playhead, a fractional frame position in an analysis table. Once per block the
kernel here reads the table at the playhead's start and end positions (linear interpolation between
frames, and between the analysis and a morph target), applies the transformations (transposition
with or without the spectral envelope, harmonic filtering, odd/even balance, brightness tilt) and
writes the partials' frequencies and amplitudes at the block's first and last sample. The oscillator
bank (synth.dsp.oscbank) then interpolates them per sample. Kernels keep no state: the playheads,
directions and envelopes live in the caller's arrays.

Table arrays, all [frames, tracks]: freq_a/amp_a the analysis (Hz, linear amplitude; 0 where a track
is silent), freq_b/amp_b the morph target on the same frame grid, transposed to the same root and
padded to the same tracks (the analysis itself when there is none), harmonic (int16) the harmonic
number of each track in each frame, 0 where it is not a harmonic.
"""

import math

import numpy as np
from numba import njit

from synth.dsp.envelopes import ATTACK, DECAY, IDLE, adsr_step

MIN_DB = -120.0
_TILT_OCTAVES = (-4.0, 8.0)  # the brightness tilt is applied over this many octaves around the root


@njit(nogil=True, cache=True)
def read_frame(position, morph, freq_a, amp_a, freq_b, amp_b, harmonic, out_freq, out_amp, out_harmonic):
    """The table at fractional frame `position` (clamped to the table), morphed `morph` (0..1) of
    the way from the analysis to the target: frequencies (Hz) interpolate geometrically, amplitudes
    linearly; a track silent on one side takes its frequency from the other. Writes out_* [tracks]."""
    last = freq_a.shape[0] - 1
    position = min(max(position, 0.0), float(last))
    i = min(int(position), max(last - 1, 0))
    w = position - i
    j = min(i + 1, last)
    for k in range(freq_a.shape[1]):
        fa, aa = _lerp_track(freq_a[i, k], amp_a[i, k], freq_a[j, k], amp_a[j, k], w)
        fb, ab = _lerp_track(freq_b[i, k], amp_b[i, k], freq_b[j, k], amp_b[j, k], w)
        out_freq[k], out_amp[k] = _lerp_track_geometric(fa, aa, fb, ab, morph)
        out_harmonic[k] = harmonic[i, k] if w < 0.5 else harmonic[j, k]


@njit(nogil=True, cache=True, inline="always")
def _lerp_track(f0, a0, f1, a1, w):
    """One track between two frames: amplitude linear, frequency linear where both sound."""
    if a0 <= 0.0 or f0 <= 0.0:
        return f1, a1 * w
    if a1 <= 0.0 or f1 <= 0.0:
        return f0, a0 * (1.0 - w)
    return f0 + (f1 - f0) * w, a0 + (a1 - a0) * w


@njit(nogil=True, cache=True, inline="always")
def _lerp_track_geometric(fa, aa, fb, ab, t):
    if t <= 0.0:
        return fa, aa
    if aa <= 0.0 or fa <= 0.0:
        return fb, ab * t
    if ab <= 0.0 or fb <= 0.0:
        return fa, aa * (1.0 - t)
    return fa * (fb / fa) ** t, aa + (ab - aa) * t


@njit(nogil=True, cache=True)
def envelope_amplitude(freq_hz, freq, amp, order):
    """The frame's spectral envelope at `freq_hz`: partial amplitudes interpolated linearly in dB
    over frequency (`order` lists the sounding partials by rising frequency); the lowest partial's
    level below it, silence above the highest."""
    count = order.shape[0]
    if count == 0:
        return 0.0
    first = order[0]
    if freq_hz <= freq[first]:
        return amp[first]
    for m in range(1, count):
        hi = order[m]
        if freq_hz <= freq[hi]:
            lo = order[m - 1]
            w = (freq_hz - freq[lo]) / max(freq[hi] - freq[lo], 1e-9)
            db_lo = 20.0 * math.log10(max(amp[lo], 1e-6))
            db_hi = 20.0 * math.log10(max(amp[hi], 1e-6))
            return 10.0 ** ((db_lo + (db_hi - db_lo) * w) / 20.0)
    return 0.0


@njit(nogil=True, cache=True)
def sounding_order(freq, amp, order):
    """Fill order[:count] with the indices of sounding partials sorted by frequency; returns count."""
    count = 0
    for k in range(freq.shape[0]):
        if amp[k] > 0.0 and freq[k] > 0.0:
            m = count
            while m > 0 and freq[order[m - 1]] > freq[k]:
                order[m] = order[m - 1]
                m -= 1
            order[m] = k
            count += 1
    return count


@njit(nogil=True, cache=True)
def shape_partials(freq, amp, harmonic, ratio, keep_formants, harmonics_only, odd_gain, even_gain,
                   tilt_db_per_octave, root_hz, gain, order, out_freq, out_amp):
    """Transpose one frame's partials by `ratio` and shape their amplitudes into out_* [tracks].

    keep_formants: amplitudes follow the original frame's spectral envelope at the new frequencies.
    harmonics_only: partials that are not harmonics fall silent. odd_gain/even_gain: linear gains of
    odd and even harmonics. tilt_db_per_octave: gain in dB per octave above root_hz (Hz) of the
    untransposed partial. gain: linear gain of everything (velocity and envelope).
    """
    count = sounding_order(freq, amp, order) if keep_formants else 0
    log2_root = math.log2(root_hz)
    for k in range(freq.shape[0]):
        a = amp[k]
        f = freq[k]
        out_freq[k] = f * ratio
        if a <= 0.0 or f <= 0.0:
            out_amp[k] = 0.0
            continue
        h = harmonic[k]
        if harmonics_only and h == 0:
            out_amp[k] = 0.0
            continue
        if keep_formants and ratio != 1.0:
            a = envelope_amplitude(f * ratio, freq, amp, order[:count])
        if h > 0:
            a *= odd_gain if h % 2 == 1 else even_gain
        octaves = min(max(math.log2(f) - log2_root, _TILT_OCTAVES[0]), _TILT_OCTAVES[1])
        out_amp[k] = a * gain * 10.0 ** (tilt_db_per_octave * octaves / 20.0)


@njit(nogil=True, cache=True)
def advance_playhead(position, direction, step, last_frame, looping, loop_start, loop_end):
    """Move a playhead `step` frames along `direction` (+1/-1). While `looping`, it travels back
    and forth between loop_start and loop_end (frames), which never jumps; otherwise it stops at
    the last frame. Returns (position, direction, reached_end)."""
    if looping and loop_end - loop_start >= 1.0:
        position += direction * step
        for _ in range(64):  # reflections; a step is far shorter than a loop
            if position > loop_end:
                position = 2.0 * loop_end - position
                direction = -1.0
            elif position < loop_start:
                position = 2.0 * loop_start - position
                direction = 1.0
            else:
                break
        return position, direction, False
    position += step
    if position >= last_frame:
        return float(last_frame), 1.0, True
    return position, 1.0, False


@njit(nogil=True, cache=True)
def additive_block_controls(n, frames_per_sample, stage, level, velocity, note, position, direction,
                            freq_a, amp_a, freq_b, amp_b, harmonic, root_note, root_hz,
                            attack_inc, decay_coef, sustain, release_coef,
                            stretch, transpose_start, transpose_end, morph_start, morph_end,
                            keep_formants, freeze, freeze_frame, loop, loop_start, loop_end,
                            harmonics_only, odd_even_start, odd_even_end, tilt_start, tilt_end,
                            velocity_tilt_db, frame_freq, frame_amp, frame_harmonic, order,
                            freq_start, freq_end, amp_start, amp_end):
    """Partial controls of every voice for the next n samples, and the voices' state advanced.

    Per voice (arrays [voices]): stage/level (ADSR, advanced n samples), velocity (gain 0..1),
    note (MIDI), position (playhead, frames) and direction (+1/-1), advanced by
    n * frames_per_sample / stretch frames. Output arrays [voices * tracks]: voice v's partials
    are v*tracks..(v+1)*tracks-1; frequencies in Hz, amplitudes linear, at the block's first
    sample (*_start) and at sample n (*_end). Silent voices get amplitude 0. A voice that plays
    the analysis to its end without looping fades out over this block and becomes IDLE.
    *_start/*_end pairs are parameter values at the two ends of the block; odd_even is -1 (odd
    harmonics only) .. 1 (even only); tilt in dB per octave; velocity_tilt_db: extra darkening
    per octave at the softest velocity.
    """
    tracks = freq_a.shape[1]
    last = freq_a.shape[0] - 1
    for v in range(stage.shape[0]):
        base = v * tracks
        if stage[v] == IDLE:
            for k in range(tracks):
                amp_start[base + k] = 0.0
                amp_end[base + k] = 0.0
            continue
        env_start = level[v]
        st, lev = stage[v], level[v]
        for _ in range(n):
            st, lev = adsr_step(st, lev, attack_inc, decay_coef, sustain, release_coef)
            if st == IDLE:
                break
        held = st == ATTACK or st == DECAY
        p0 = position[v]
        if freeze:
            p0 = p1 = freeze_frame
            ended = False
        else:
            p1, direction[v], ended = advance_playhead(
                p0, direction[v], n * frames_per_sample / stretch, last, loop and held, loop_start, loop_end)
        position[v] = p1
        if ended:
            lev = 0.0
            st = IDLE
        darker = velocity_tilt_db * (1.0 - math.sqrt(velocity[v]))
        for end in range(2):
            p = p1 if end else p0
            transpose = transpose_end if end else transpose_start
            morph = morph_end if end else morph_start
            balance = odd_even_end if end else odd_even_start
            tilt = (tilt_end if end else tilt_start) - darker
            gain = velocity[v] * (lev if end else env_start)
            ratio = 2.0 ** ((note[v] - root_note + transpose) / 12.0)
            read_frame(p, morph, freq_a, amp_a, freq_b, amp_b, harmonic, frame_freq, frame_amp, frame_harmonic)
            out_f = freq_end[base : base + tracks] if end else freq_start[base : base + tracks]
            out_a = amp_end[base : base + tracks] if end else amp_start[base : base + tracks]
            shape_partials(frame_freq, frame_amp, frame_harmonic, ratio, keep_formants, harmonics_only,
                           min(1.0, 1.0 - balance), min(1.0, 1.0 + balance), tilt, root_hz, gain, order,
                           out_f, out_a)
        stage[v] = st
        level[v] = lev


def empty_scratch(tracks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scratch arrays additive_block_controls needs for `tracks` tracks (made once, in prepare)."""
    return (np.zeros(tracks, dtype=np.float32), np.zeros(tracks, dtype=np.float32),
            np.zeros(tracks, dtype=np.int16), np.zeros(tracks, dtype=np.int64))
