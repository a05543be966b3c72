"""Offline rendering: an Engine plus timed events -> audio, faster than realtime, to WAV.

The engine runs exactly as in realtime (same block splitting at events), so a render given the
same events and block size is sample-for-sample what a live run produces. A preset load in the
score switches engines at a block boundary, as the audio plane does live.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synth.engine import Engine, EngineCounters, dbfs
from synth.events import Event, PresetLoad
from synth.errors import SynthError
from synth.io.audiofile import read_audio, wav_writer, write_wav
from synth.io.loudness import integrated_lufs, true_peak_dbtp
from synth.presets import PresetSpec
from synth.scores import load_score

DEFAULT_BLOCK = 256
DEFAULT_TAIL_S = 2.0
_PROGRESS_DELAY_S = 2.0  # the bar appears only for renders that take longer than this


@dataclass
class RenderSummary:
    """What a render produced; `lines()` is the report printed at the end."""

    path: Path | None
    sample_rate: int
    frames: int
    peak: float
    wall_s: float
    counters: EngineCounters = field(default_factory=EngineCounters)
    max_voices: int = 0
    loudness_lufs: float = -math.inf  # integrated (ITU-R BS.1770)
    true_peak_dbtp: float = -math.inf
    gain_db: float | None = None  # what --normalize applied
    target_lufs: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # --skip-unknown: lines left out, by address

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio rendered per second of wall time."""
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")

    def lines(self) -> list[str]:
        c = self.counters
        return [
            f"wrote {self.path}" if self.path else "rendered to memory",
            f"  duration {self.duration_s:.2f} s at {self.sample_rate} Hz, peak {dbfs(self.peak):.1f} dBFS, "
            f"{self.realtime_factor:.0f}x realtime",
            f"  loudness {self.loudness_lufs:.1f} LUFS, true peak {self.true_peak_dbtp:.1f} dBTP"
            + self._normalized(),
            f"  voices at most {self.max_voices}, stolen {c.stolen_voices}, non-finite blocks {c.nonfinite_blocks}, "
            f"clamped samples {c.clamped_samples}, late events {c.late_events}",
        ] + ([f"  skipped {sum(self.skipped.values())} lines at addresses this preset does not have: "
              + ", ".join(f"{address} ({count})" for address, count in sorted(self.skipped.items()))]
             if self.skipped else [])

    def _normalized(self) -> str:
        if self.gain_db is None:
            return ""
        held = "" if abs(self.loudness_lufs - self.target_lufs) < 0.05 else ", held below the target by the ceiling"
        return f" (normalised by {self.gain_db:+.1f} dB towards {self.target_lufs:.1f} LUFS{held})"


def total_frames(events: list[Event], sample_rate: int, tail_s: float) -> int:
    """Frames to render: up to the last event, then `tail_s` seconds for releases to ring."""
    last = max((event.time_samples for event in events), default=0)
    return last + round(tail_s * sample_rate)


def render_blocks(engine: Engine, events: Iterable[Event | PresetLoad], frames: int,
                  block_size: int = DEFAULT_BLOCK) -> Iterator[tuple[Engine, np.ndarray]]:
    """Play `events` (in time order) on a prepared `engine`; yield (the engine playing, its next
    float32 [n, channels] block) for each block.

    A PresetLoad takes over at the first block that starts at or after its time (its engine is
    prepared then, and the events after it in time are its). The yielded array is reused for the
    next block: copy it to keep it.
    """
    sections: list[tuple[int, Engine, list[Event]]] = [(0, engine, [])]
    for event in events:
        if isinstance(event, PresetLoad):
            sections.append((event.time_samples, event.engine, []))
        else:
            sections[-1][2].append(event)
    for event in sections[0][2]:
        engine.schedule(event)
    following = iter(sections[1:])
    upcoming = next(following, None)
    buffer = np.zeros((block_size, engine.channels), dtype=np.float32)
    for start in range(0, frames, block_size):
        while upcoming is not None and upcoming[0] <= start:
            _, loaded, loaded_events = upcoming
            loaded.prepare()
            loaded.take_over_from(engine)
            engine = loaded
            for event in loaded_events:
                engine.schedule(event)
            upcoming = next(following, None)
        out = buffer[: min(block_size, frames - start)]
        engine.process(out)
        yield engine, out


def render_array(engine: Engine, events: Iterable[Event], frames: int, block_size: int = DEFAULT_BLOCK,
                 progress: bool = False) -> np.ndarray:
    """Prepare `engine` and return the whole render as one float32 [frames, channels] array.
    progress: a tqdm bar over the frames on stderr."""
    engine.prepare()
    result = np.empty((frames, engine.channels), dtype=np.float32)
    position = 0
    with tqdm(total=frames, unit="frames", unit_scale=True, desc="render", disable=not progress, leave=False) as bar:
        for _, block in render_blocks(engine, events, frames, block_size):
            result[position : position + len(block)] = block
            position += len(block)
            bar.update(len(block))
    return result


def render_file(preset: PresetSpec, score_path: str | Path, out_path: str | Path, *, sample_rate: int = 48000,
                fmt: str = "float32", tail_s: float = DEFAULT_TAIL_S, block_size: int = DEFAULT_BLOCK,
                channels: int = 2, progress: bool = True, normalize_lufs: float | None = None,
                skip_unknown: bool = False, engine: Engine | None = None) -> RenderSummary:
    """Render `score_path` with `preset` into an audio file at `out_path` (written atomically),
    and measure its loudness. normalize_lufs: scale the whole render to this integrated loudness
    (LUFS), as far as the master ceiling allows its true peak (the render is then held in memory
    until it is measured). skip_unknown: leave out score lines at addresses the preset does not
    have, and list them in the summary. engine: one built earlier from this preset's chain at this
    rate, block size and channels, to play again (its parameters are set back to the preset's and
    it is prepared afresh) instead of building one."""
    if normalize_lufs is not None:
        return _render_normalized(preset, score_path, out_path, normalize_lufs, sample_rate=sample_rate, fmt=fmt,
                                  tail_s=tail_s, block_size=block_size, channels=channels, progress=progress,
                                  skip_unknown=skip_unknown, engine=engine)
    skipped = Counter() if skip_unknown else None
    engine, frames, blocks = _score_blocks(preset, score_path, sample_rate, block_size, channels, tail_s, progress,
                                           skipped, engine)
    peak, max_voices, playing = 0.0, 0, engine
    started = time.perf_counter()
    with wav_writer(out_path, sample_rate, channels, fmt) as wav:
        for playing, block in blocks:
            wav.write(block)
            peak = max(peak, float(np.max(np.abs(block))))
            max_voices = max(max_voices, playing.active_voices)
    written, _ = read_audio(out_path)  # measured as written (a lossy format included)
    return RenderSummary(Path(out_path), sample_rate, frames, peak, time.perf_counter() - started,
                         playing.counters, max_voices, integrated_lufs(written, sample_rate), true_peak_dbtp(written),
                         skipped=dict(skipped or {}))


def _score_blocks(preset: PresetSpec, score_path, sample_rate: int, block_size: int, channels: int, tail_s: float,
                  progress: bool, skipped: Counter | None,
                  engine: Engine | None) -> tuple[Engine, int, Iterator[tuple[Engine, np.ndarray]]]:
    """(the prepared engine, the frames to render, the (playing engine, block) pairs with a
    progress bar over them)."""
    if engine is None:
        engine = preset.build_engine(sample_rate, block_size, channels)
    else:
        preset.restore_params(engine)
    events = load_score(score_path, engine, preset.osc_map, preset.midi_cc, skipped)
    frames = total_frames(events, sample_rate, tail_s)
    engine.prepare()

    def blocks():
        with tqdm(total=frames, unit="frames", unit_scale=True, desc="render", delay=_PROGRESS_DELAY_S,
                  disable=not progress, leave=False) as bar:
            for playing, block in render_blocks(engine, events, frames, block_size):
                yield playing, block
                bar.update(len(block))

    return engine, frames, blocks()


def _render_normalized(preset: PresetSpec, score_path, out_path, target_lufs: float, *, sample_rate: int, fmt: str,
                       tail_s: float, block_size: int, channels: int, progress: bool,
                       skip_unknown: bool, engine: Engine | None) -> RenderSummary:
    skipped = Counter() if skip_unknown else None
    engine, frames, blocks = _score_blocks(preset, score_path, sample_rate, block_size, channels, tail_s, progress,
                                           skipped, engine)
    audio, max_voices, playing = np.empty((frames, channels), dtype=np.float32), 0, engine
    started, position = time.perf_counter(), 0
    for playing, block in blocks:
        audio[position:position + len(block)] = block
        position += len(block)
        max_voices = max(max_voices, playing.active_voices)
    loudness = integrated_lufs(audio, sample_rate)
    if not math.isfinite(loudness):
        raise SynthError(f"{score_path}: the render is silent (or under 0.4 s), so it has no loudness to "
                         f"normalise to {target_lufs:g} LUFS")
    gain_db = min(target_lufs - loudness, engine.ceiling_db - true_peak_dbtp(audio))
    audio *= np.float32(10.0 ** (gain_db / 20.0))
    write_wav(out_path, audio, sample_rate, fmt)
    written, _ = read_audio(out_path)
    return RenderSummary(Path(out_path), sample_rate, frames, float(np.max(np.abs(audio))),
                         time.perf_counter() - started, playing.counters, max_voices,
                         integrated_lufs(written, sample_rate), true_peak_dbtp(written), gain_db, target_lufs,
                         dict(skipped or {}))
