"""Large event data (an utterance's audio, a lyric's table) in the shared payload pool, passed by
handle.

The control plane allocates (first fit, `PayloadPool`), copies the data in and writes the handle's
row of `payload_table` (offset and length in floats, lyric frames and syllables) before the event
record that names it. The audio plane reads views of the pool (`PayloadViews`: no copy) and sets
`released[handle]` once it holds the data no longer: when a later utterance (or lyric) for the
same slot replaces it, or its engine is replaced. The control plane then reclaims the space. So
at most one utterance and one lyric per voice slot, plus those on their way, occupy the pool.

A lyric is laid out as mel [frames, bands], loudness_db [frames], then start, vowel_start,
vowel_end and end [syllables] as exact float32 frame indices.
"""

from __future__ import annotations

import threading

import numpy as np

from synth.errors import SynthError
from synth.plugins.voice import LyricTable

UTTERANCE_KIND, LYRIC_KIND = 1, 2


class PayloadPool:
    """The control plane's side: allocate, fill and reclaim (thread-safe)."""

    def __init__(self, pool: np.ndarray, table: np.ndarray, released: np.ndarray):
        self.pool, self.table, self.released = pool, table, released
        self._live: dict[int, tuple[int, int]] = {}  # handle -> (offset, length) in floats
        self._lock = threading.Lock()

    def put_utterance(self, audio: np.ndarray) -> int:
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        handle, offset = self._allocate(audio.size, "an utterance")
        self.pool[offset : offset + audio.size] = audio
        self.table[handle] = (offset, audio.size, 0, 0)
        return handle

    def put_lyric(self, table: LyricTable) -> int:
        mel = np.ascontiguousarray(table.mel, dtype=np.float32)
        parts = [mel.reshape(-1), table.loudness_db, table.start, table.vowel_start, table.vowel_end, table.end]
        flat = np.concatenate([np.asarray(part, dtype=np.float32).reshape(-1) for part in parts])
        handle, offset = self._allocate(flat.size, "a lyric")
        self.pool[offset : offset + flat.size] = flat
        self.table[handle] = (offset, flat.size, mel.shape[0], table.syllables)
        return handle

    def release(self, handle: int) -> None:
        """Give back a handle whose event never reached the audio plane."""
        with self._lock:
            self._live.pop(handle, None)

    @property
    def live(self) -> int:
        """Payloads allocated and not yet reclaimed."""
        with self._lock:
            self._reclaim()
            return len(self._live)

    def _reclaim(self) -> None:
        for handle in list(self._live):
            if self.released[handle]:
                self.released[handle] = 0
                del self._live[handle]

    def _allocate(self, length: int, what: str) -> tuple[int, int]:
        with self._lock:
            self._reclaim()
            free_handles = [h for h in range(self.table.shape[0]) if h not in self._live]
            offset = 0
            for start, size in sorted(self._live.values()):
                if start - offset >= length:
                    break
                offset = max(offset, start + size)
            if not free_handles or offset + length > self.pool.size:
                raise SynthError(f"no room for {what} of {length / 48000:.1f} s in the audio plane's payload pool "
                                 f"({self.pool.size * 4 // 2**20} MiB, {len(self._live)} payloads in use)")
            handle = free_handles[0]
            self.released[handle] = 0
            self._live[handle] = (offset, length)
            return handle, offset


class PayloadViews:
    """The audio plane's side: what a handle holds, as views of the pool (nothing is copied)."""

    def __init__(self, pool: np.ndarray, table: np.ndarray, released: np.ndarray):
        self.pool, self.table, self.released = pool, table, released

    def utterance(self, handle: int) -> np.ndarray:
        offset, length = int(self.table[handle, 0]), int(self.table[handle, 1])
        return self.pool[offset : offset + length]

    def lyric(self, handle: int) -> LyricTable:
        offset, _, frames, syllables = (int(v) for v in self.table[handle])
        bands = 0
        mel_end = offset
        if frames:
            total = int(self.table[handle, 1])
            bands = (total - frames - 4 * syllables) // frames
            mel_end = offset + frames * bands
        mel = self.pool[offset:mel_end].reshape(frames, bands)
        loudness = self.pool[mel_end : mel_end + frames]
        marks = [self.pool[mel_end + frames + k * syllables : mel_end + frames + (k + 1) * syllables] for k in range(4)]
        return LyricTable("", mel, loudness, *marks)

    def release(self, handle: int) -> None:
        if handle >= 0:
            self.released[handle] = 1
