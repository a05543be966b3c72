"""Bus arithmetic and the master safety stage. Buses are float32 [channels, max_block]."""

import math

from numba import njit


@njit(nogil=True, cache=True)
def clear(bus, n):
    """Zero the first n samples of every channel."""
    for c in range(bus.shape[0]):
        for i in range(n):
            bus[c, i] = 0.0


@njit(nogil=True, cache=True)
def add_into(bus, source, n):
    """bus[:, :n] += source[:, :n]."""
    for c in range(bus.shape[0]):
        for i in range(n):
            bus[c, i] += source[c, i]


@njit(nogil=True, cache=True)
def add_mono(bus, mono, n, gain_db_start, gain_db_end):
    """Add a mono signal to every channel with a gain ramp (dB, interpolated per sample)."""
    step = (gain_db_end - gain_db_start) / n if n > 1 else 0.0
    for i in range(n):
        gain = 10.0 ** ((gain_db_start + step * i) / 20.0)
        x = mono[i] * gain
        for c in range(bus.shape[0]):
            bus[c, i] += x


@njit(nogil=True, cache=True)
def all_finite(bus, n):
    """True when no sample in bus[:, :n] is NaN or infinite."""
    for c in range(bus.shape[0]):
        for i in range(n):
            if not math.isfinite(bus[c, i]):
                return False
    return True


@njit(nogil=True, cache=True)
def write_output(bus, out, offset, n, ceiling):
    """Copy bus[:, :n] into the interleaved out[offset:offset+n, :], clamped to +-ceiling.

    Returns how many samples had to be clamped. out: float32 [frames, channels].
    """
    clamped = 0
    for i in range(n):
        for c in range(bus.shape[0]):
            x = bus[c, i]
            if x > ceiling:
                x = ceiling
                clamped += 1
            elif x < -ceiling:
                x = -ceiling
                clamped += 1
            out[offset + i, c] = x
    return clamped


@njit(nogil=True, cache=True)
def gain_pan(bus, n, gain_db_start, gain_db_end, pan_start, pan_end):
    """Gain (dB) and constant-power pan (-1 left .. +1 right; centre leaves both channels at unity).

    Both are interpolated per sample across the segment. A mono bus only gets the gain.
    """
    gain_step = (gain_db_end - gain_db_start) / n if n > 1 else 0.0
    pan_step = (pan_end - pan_start) / n if n > 1 else 0.0
    stereo = bus.shape[0] == 2
    for i in range(n):
        gain = 10.0 ** ((gain_db_start + gain_step * i) / 20.0)
        if stereo:
            angle = (pan_start + pan_step * i + 1.0) * 0.25 * math.pi
            bus[0, i] *= gain * math.cos(angle) * math.sqrt(2.0)
            bus[1, i] *= gain * math.sin(angle) * math.sqrt(2.0)
        else:
            for c in range(bus.shape[0]):
                bus[c, i] *= gain


@njit(nogil=True, cache=True)
def deinterleave(frames, offset, n, planar):
    """planar[c, :n] = frames[offset:offset+n, c] for the channels both have; the rest are zeroed.
    frames: float32 [frames, channels] (as PortAudio delivers); planar: float32 [channels, max_block]."""
    shared = min(frames.shape[1], planar.shape[0])
    for c in range(planar.shape[0]):
        for i in range(n):
            planar[c, i] = frames[offset + i, c] if c < shared else 0.0


@njit(nogil=True, cache=True)
def add_input(bus, planar_input, n, gain_db_start, gain_db_end):
    """Add live input to the bus with a gain ramp (dB): a mono input feeds every bus channel,
    otherwise input channel c feeds bus channel c."""
    step = (gain_db_end - gain_db_start) / n if n > 1 else 0.0
    mono = planar_input.shape[0] == 1
    for i in range(n):
        gain = 10.0 ** ((gain_db_start + step * i) / 20.0)
        for c in range(bus.shape[0]):
            if mono:
                bus[c, i] += planar_input[0, i] * gain
            elif c < planar_input.shape[0]:
                bus[c, i] += planar_input[c, i] * gain


@njit(nogil=True, cache=True)
def mix_rows(source, weights, target, n, accumulate):
    """target[j, :n] (+)= sum over i of weights[j, i] * source[i, :n]: routes channels between a bus
    and a plugin's ports (copies, mono sums, duplicates). accumulate: add to target, else replace."""
    for j in range(target.shape[0]):
        for t in range(n):
            total = 0.0
            for i in range(source.shape[0]):
                total += weights[j, i] * source[i, t]
            target[j, t] = target[j, t] + total if accumulate else total
