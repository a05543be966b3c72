"""A ring of samples between a producer that works in frames and a consumer that works in blocks.

The producer writes whole frames at increasing positions, the consumer reads at its own positions;
positions are absolute sample counts (int64) and the ring index is position modulo its length. The
caller keeps the positions and guarantees the producer stays less than one ring ahead.
"""

from numba import njit


@njit(nogil=True, cache=True)
def ring_write(ring, position, source, n):
    """ring[(position + i) % len(ring)] = source[i] for i in 0..n-1 (float32 arrays)."""
    size = ring.shape[0]
    for i in range(n):
        ring[(position + i) % size] = source[i]


@njit(nogil=True, cache=True)
def ring_read(ring, position, out, n, written_until):
    """out[i] = ring[(position + i) % len(ring)] for i in 0..n-1 where position + i < written_until,
    else 0.0 (not written yet). Returns how many samples were not written yet."""
    size = ring.shape[0]
    missing = 0
    for i in range(n):
        if position + i < written_until:
            out[i] = ring[(position + i) % size]
        else:
            out[i] = 0.0
            missing += 1
    return missing


@njit(nogil=True, cache=True)
def gather_channel(frames, start, n, channel, out):
    """out[i] = frames[start + i, channel] for i in 0..n-1 (frames: float32 [frames, channels] as
    PortAudio delivers them); zeros when channel is not among them."""
    present = channel < frames.shape[1]
    for i in range(n):
        out[i] = frames[start + i, channel] if present else 0.0
