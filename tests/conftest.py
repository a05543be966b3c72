"""Shared fixtures: test-only plugins whose output is known exactly, and engine helpers."""

from __future__ import annotations

import signal
import time
import tracemalloc

import numpy as np
import pytest

from synth.dsp.partials import Partials
from synth.errors import SynthError
from synth.io.stall_probe import LOST_WINDOW_BLOCKS, StallProbe

from synth.engine import Engine, Slot
from synth.params import float_param
from synth.plugins import Instrument, Plugin, register


class ImpulseInstrument(Instrument):
    """Writes `level` on the first sample of each note-on, nothing else: timing is then exact."""

    name = "test_impulse"
    param_specs = (float_param("level", 0, 1, 0.5),)
    setting_keys = ("polarity",)

    def __init__(self, voice_limit=16, polarity="positive", **values):
        super().__init__(**values)
        if polarity not in ("positive", "negative"):
            raise SynthError(f"settings.polarity: expected 'positive' or 'negative', got {polarity!r}")
        self.sign = 1.0 if polarity == "positive" else -1.0

    def allocate(self):
        self.pending = 0

    def note_on(self, note, velocity):
        self.pending += 1
        return False

    def note_off(self, note):
        pass

    def all_notes_off(self):
        pass

    def process(self, bus, n):
        if self.pending:
            bus[:, 0] += self.sign * self.pending * self.params["level"].target
            self.pending = 0

    def reset(self):
        super().reset()
        self.pending = 0


class ConstantInstrument(Instrument):
    """A constant (DC) signal of `level` while any note is held; for gain and ceiling tests."""

    name = "test_constant"
    param_specs = (float_param("level", 0, 100, 0.5, smoothing_ms=0),)

    def allocate(self):
        self.held = 0

    def note_on(self, note, velocity):
        self.held += 1
        return False

    def note_off(self, note):
        self.held = max(0, self.held - 1)

    def all_notes_off(self):
        self.held = 0

    def process(self, bus, n):
        if self.held:
            bus[:, :n] += self.params["level"].target

    def reset(self):
        super().reset()
        self.held = 0


class NanEffect(Plugin):
    """Turns its input into NaN while `broken` is 1."""

    name = "test_nan"
    param_specs = (float_param("broken", 0, 1, 1, smoothing_ms=0),)
    resets = 0

    def process(self, bus, n):
        if self.params["broken"].target >= 0.5:
            bus[:, :n] = np.nan

    def reset(self):
        super().reset()
        self.resets += 1


for _cls in (ImpulseInstrument, ConstantInstrument, NanEffect):
    register(_cls)


def make_engine(*plugins, sample_rate=48000, max_block=256, channels=2) -> Engine:
    """A prepared engine whose slots are named after the plugins."""
    engine = Engine([Slot(p.name, p) for p in plugins], sample_rate, max_block, channels)
    engine.prepare()
    return engine


def run(engine: Engine, frames: int, block: int) -> np.ndarray:
    """Process `frames` frames in blocks of `block`; returns float32 [frames, channels]."""
    out = np.zeros((frames, engine.channels), dtype=np.float32)
    for start in range(0, frames, block):
        engine.process(out[start : start + block])
    return out


def traced_allocation_bytes(call, calls: int, trials: int = 3) -> tuple[int, int]:
    """(kept, peak): the bytes that `calls` calls of `call()` leave allocated and the most they held
    at once above the start, each the least over `trials` runs under tracemalloc. tracemalloc counts
    every thread of the test process (Ray's, a server's, the garbage collector running on them), so one
    run can see another thread's objects; an allocation made by `call` itself shows in every run."""
    kept_bytes, peak_bytes = [], []
    for _ in range(trials):
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for _ in range(calls):
                call()
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        kept_bytes.append(after - before)
        peak_bytes.append(peak - before)
    return min(kept_bytes), min(peak_bytes)


def assert_process_allocates_nothing(engine: Engine, out: np.ndarray, calls: int, limit_bytes: int = 4096,
                                     live_input: np.ndarray | None = None) -> None:
    """Run engine.process(out, live_input) `calls` times under tracemalloc: neither the peak nor what
    stays allocated may reach `limit_bytes` (one stray block-sized array would)."""
    kept, peak = traced_allocation_bytes(lambda: engine.process(out, live_input), calls)
    assert peak < limit_bytes, f"process allocated up to {peak} bytes"
    assert kept < limit_bytes, f"process kept {kept} bytes"


JACK_RATE, JACK_PERIOD = 48000, 256


@pytest.fixture(scope="session")
def jack():
    """PortAudio's device index of a JACK dummy server (48 kHz, 256-frame period) started for the
    session and stopped by its own process id; skipped only where jackd cannot be installed."""
    from synth.errors import SynthError
    from synth.io.jackserver import JackDummyServer

    server = JackDummyServer(JACK_RATE, JACK_PERIOD)
    try:
        device = server.start()
    except SynthError as error:
        if "not installed" in str(error):
            pytest.skip(f"{error}: realtime tests need its dummy backend")
        raise
    yield device
    server.stop()


QUIET_STALLS_PER_S = 2.0  # a machine whose CPUs stall more often than this cannot judge a realtime run
REALTIME_TRIES = 3


def realtime_trials(trial, tries: int = REALTIME_TRIES):
    """Judge a realtime run: `trial()` plays a stream and returns (its underflow times, anything
    the test checks next); it runs inside a StallProbe. A trial with no underflow passes, and its
    result is returned; so does one whose every underflow the machine explains: a stall, or small
    delays adding up to a loss that is rare in the run (synth.io.stall_probe: LOST_FRACTIONS,
    MAX_EXCUSED_SHARE). A trial with unexplained underflows counts against
    the engine when the machine was quiet through it (at most QUIET_STALLS_PER_S stalls a second);
    on a noisier machine it is inconclusive. Trials go on until one passes, or two count against the engine (a fault of ours
    repeats; a shared machine's rare hiccup does not), or `tries` are spent: the test then fails if
    any trial counted against the engine, and is skipped, naming the stall rates, if none did."""
    rates, against = [], []
    period_s = JACK_PERIOD / JACK_RATE
    for _ in range(tries):
        with StallProbe() as probe:
            started_s = time.monotonic()
            underflow_times, result = trial()
            elapsed_s = time.monotonic() - started_s
        if not len(underflow_times):
            return result
        unexplained = probe.unexplained(underflow_times, block_period_s=period_s)
        if not unexplained:
            return result
        excused = probe.excused_share(period_s)
        rate = len(probe.stalls) / elapsed_s
        rates.append(f"{rate:.1f} stalls/s, stalls or small delays would excuse {excused:.0%} of instants")
        if rate <= QUIET_STALLS_PER_S:
            window_s = LOST_WINDOW_BLOCKS * period_s
            at = ", ".join(f"{t - started_s:.2f} s (CPUs lost {probe.lost_s(t - window_s, t) * 1e3:.1f} ms before it)"
                           for t in unexplained[:3])
            against.append(f"{len(unexplained)} of {len(underflow_times)} underflows no machine stall explains, "
                           f"on a quiet machine ({len(probe.stalls)} stalls in {elapsed_s:.1f} s), at {at}")
            if len(against) == 2:
                break
    assert not against, "; ".join(against)
    pytest.skip(f"every one of {tries} tries underflowed on a machine too noisy to judge a realtime run "
                f"({'; '.join(rates)})")


def harmonic_analysis(seconds=1.0, harmonics=12, f0_hz=220.0, decay_s=None, inharmonic_hz=None,
                      sample_rate=48000, hop=256) -> Partials:
    """An analysis whose content is known: a steady harmonic tone (harmonic k at amplitude 0.3/k),
    optionally decaying exponentially (time constant decay_s) and with one extra inharmonic partial
    (0.1 at inharmonic_hz, in the last track)."""
    frames = int(seconds * sample_rate / hop) + 1
    k = np.arange(1, harmonics + 1)
    freq = np.tile(f0_hz * k, (frames, 1)).astype(np.float32)
    amp = np.tile(0.3 / k, (frames, 1)).astype(np.float32)
    if decay_s:
        amp *= np.exp(-np.arange(frames) * hop / sample_rate / decay_s)[:, None].astype(np.float32)
    harmonic = inharmonic_hz is None
    if inharmonic_hz is not None:
        freq = np.hstack([freq, np.full((frames, 1), inharmonic_hz, np.float32)])
        amp = np.hstack([amp, np.full((frames, 1), 0.1, np.float32)])
    edges = np.array([0, 1000, 4000, 24000], dtype=np.float32)
    return Partials(sample_rate, hop, (frames - 1) * hop, freq, amp, None, np.full(frames, f0_hz, np.float32),
                    harmonic, edges, np.full((frames, 3), -120, np.float32))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A decoder data set of four TimGM6mb notes (violin and flute, two pitches), half held out."""
    from models.data import build_dataset  # deferred: it imports torch

    folder = tmp_path_factory.mktemp("data")
    build_dataset(folder, instruments=["violin", "flute"], soundfont="timgm6mb", pitches=[69, 76], velocities=(100,),
                  seconds=1.0, release_s=0.2, test_fraction=0.5, progress=False)
    return folder


def as_in_a_terminal() -> None:
    """A Popen preexec_fn: SIGINT back to its default in the child, as a program started from a
    terminal has it (a test run from a non-interactive shell's background job inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt on Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train_in_one_and_in_two_processes(arguments: list[str], folder) -> tuple[dict, dict, str]:
    """`synth <arguments> -o folder/one` in this machine's one process, then the same with `-o
    folder/two --ddp` under torchrun with 2 processes; the "training" record of each model's JSON,
    and what torchrun's processes printed."""
    import json
    import subprocess
    import sys

    one = subprocess.run([sys.executable, "-m", "synth", *arguments, "-o", str(folder / "one")], capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "synth", *arguments, "-o", str(folder / "two"), "--ddp"], capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stderr
    one_meta, two_meta = (json.loads((folder / f"{name}.json").read_text())["training"] for name in ("one", "two"))
    return one_meta, two_meta, two.stdout
