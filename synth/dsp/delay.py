"""Feedback delay line with a fractional, per-sample-smoothed delay time and damped feedback."""

from numba import njit


@njit(nogil=True, cache=True)
def feedback_delay(bus, n, line, write_index, damp_state, delay_start, delay_end, feedback_start,
                   feedback_end, mix_start, mix_end, damping):
    """Run bus[:, :n] through one delay line per channel, in place; returns the new write index.

    line: float32 [channels, length] ring buffers. delay_*: delay in samples (fractional, at most
    length - 2), linearly interpolated across the segment as are feedback (0..<1) and mix (0..1, the
    wet share; dry is 1 - mix). damping 0..1: one-pole lowpass in the feedback path.
    damp_state: float64 [channels] lowpass memory.
    """
    length = line.shape[1]
    inv = 1.0 / n if n > 1 else 0.0
    w = write_index
    for i in range(n):
        frac_i = i * inv
        delay = delay_start + (delay_end - delay_start) * frac_i
        feedback = feedback_start + (feedback_end - feedback_start) * frac_i
        mix = mix_start + (mix_end - mix_start) * frac_i
        read = w - delay
        if read < 0.0:
            read += length
        r0 = int(read)
        frac = read - r0
        r1 = r0 + 1
        if r1 >= length:
            r1 = 0
        for c in range(bus.shape[0]):
            delayed = line[c, r0] + (line[c, r1] - line[c, r0]) * frac
            damp_state[c] = delayed + (damp_state[c] - delayed) * damping
            dry = bus[c, i]
            line[c, w] = dry + damp_state[c] * feedback
            bus[c, i] = dry * (1.0 - mix) + delayed * mix
        w += 1
        if w >= length:
            w = 0
    return w
