"""synth.dsp.oscbank against a float64 reference (plain sin of the exactly integrated phase), at odd
block sizes; phase continuity across blocks; the Nyquist fade; no allocation in render_partials."""

import numpy as np
import pytest
from scipy.signal.windows import blackmanharris

from conftest import traced_allocation_bytes
from synth.dsp.oscbank import compile_oscbank, make_workspace, render_partials
from synth.errors import SynthError

SR = 48000.0
BLOCKS = (1, 63, 64, 65, 257, 4096)


def smoothstep_gain(freq_hz):
    """The documented Nyquist gain: 1 up to 0.45*sr, smoothstep to 0 at 0.5*sr (written here anew)."""
    x = np.clip((0.5 - np.abs(freq_hz) / SR) / 0.05, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def reference_block(f0, f1, a0, a1, phase0, n):
    """float64 render of one block: samples [n] and the phase at sample n [partials]."""
    f0, f1, a0, a1 = (np.asarray(x, dtype=np.float64) for x in (f0, f1, a0, a1))
    k = (np.arange(n, dtype=np.float64) / n)[:, None]
    freq = f0 + (f1 - f0) * k
    amp = a0 + (a1 - a0) * k
    inc = 2.0 * np.pi * freq / SR
    phase = phase0 + np.cumsum(inc, axis=0) - inc
    return (amp * smoothstep_gain(freq) * np.sin(phase)).sum(axis=1), phase0 + inc.sum(axis=0)


def render_sequence(frames_f, frames_a, sizes, phase0):
    """Render consecutive blocks (block b ramps from frame b to frame b+1) with the kernel and the
    reference; returns (ours float32, reference float64, our final phase, reference final phase)."""
    partials = phase0.shape[0]
    workspace = make_workspace(partials)
    phase = phase0.copy()
    ref_phase = phase0.copy()
    ours, ref = [], []
    for b, n in enumerate(sizes):
        out = np.zeros(n + 3, dtype=np.float32)  # longer than n: the kernel must stop at n
        render_partials(out, n, frames_f[b], frames_f[b + 1], frames_a[b], frames_a[b + 1], phase, SR,
                        workspace)
        assert np.all(out[n:] == 0.0)
        ours.append(out[:n])
        y, ref_phase = reference_block(frames_f[b], frames_f[b + 1], frames_a[b], frames_a[b + 1], ref_phase,
                                       n)
        ref.append(y)
    return np.concatenate(ours), np.concatenate(ref), phase, ref_phase


def wrapped_difference(a, b):
    return np.abs(np.angle(np.exp(1j * (a - b))))


def test_matches_float64_reference_in_odd_blocks():
    """1000 random partials (20 Hz .. 0.6*sr, so all three paths run), targets changing every
    block, some partials silent in some blocks, blocks of 1..4096 samples, 2 s: the error stays
    below the documented 1e-5 times the sum of the amplitudes."""
    rng = np.random.default_rng(7)
    partials = 1000
    sizes = [BLOCKS[i % len(BLOCKS)] for i in range(6 * 21)]  # 95,466 samples, about 2 s
    log_f = rng.uniform(np.log(20.0), np.log(0.6 * SR), partials)
    frames_f, frames_a = [], []
    for _ in range(len(sizes) + 1):
        log_f = np.clip(log_f + rng.normal(0.0, 0.05, partials), np.log(20.0), np.log(0.6 * SR))
        amp = rng.uniform(0.0, 1.0, partials) * (rng.uniform(size=partials) > 0.1)
        frames_f.append(np.exp(log_f).astype(np.float32))
        frames_a.append(amp.astype(np.float32))
    phase0 = rng.uniform(-np.pi, np.pi, partials)
    ours, ref, phase, ref_phase = render_sequence(frames_f, frames_a, sizes, phase0)
    amp_sum = max(float(np.sum(a)) for a in frames_a)
    error = np.max(np.abs(ours - ref))
    assert error < 1e-5 * amp_sum, (error, amp_sum)
    assert np.max(wrapped_difference(phase, ref_phase)) < 1e-8


@pytest.mark.parametrize("f0_hz, f1_hz, a0, a1", [
    (20.0, 20.0, 1.0, 1.0), (1000.0, 1000.0, 0.5, 1.0), (21000.0, 21500.0, 1.0, 1.0),
    (100.0, 15000.0, 1.0, 0.25), (15000.0, 300.0, 1.0, 1.0), (21500.0, 23000.0, 1.0, 1.0)])
def test_single_partial_error_below_bound(f0_hz, f1_hz, a0, a1):
    """Each partial alone, 4096-sample blocks (the longest float32 runs), glides up and down and
    into the Nyquist fade, 1 s: |error| < 1e-5 times its amplitude, the bound the docstring states."""
    sizes = [4096] * 12
    frames_f = [np.array([f0_hz if b % 2 == 0 else f1_hz], dtype=np.float32) for b in range(13)]
    frames_a = [np.array([a0 if b % 2 == 0 else a1], dtype=np.float32) for b in range(13)]
    ours, ref, _, _ = render_sequence(frames_f, frames_a, sizes, np.array([0.3]))
    assert np.max(np.abs(ours - ref)) < 1e-5 * max(a0, a1)


def test_one_call_equals_odd_blocks():
    """Linear ramps split at any sample give the same ramps (the split points are exact in float32:
    dyadic slopes), so 8192 samples in one call must equal the same samples in odd-sized blocks."""
    partials = 300
    rng = np.random.default_rng(3)
    f0 = np.round(rng.uniform(30.0, 20000.0, partials)).astype(np.float64)
    slope_hz = rng.integers(-64, 64, partials) / 64.0  # Hz per sample, exact in float32
    a0 = rng.integers(1, 64, partials) / 64.0 / partials
    slope_amp = rng.integers(-4, 4, partials) / 2.0**24 / partials
    phase0 = rng.uniform(-np.pi, np.pi, partials)
    total = 8192

    def at(s):
        return (f0 + slope_hz * s).astype(np.float32), (a0 + slope_amp * s).astype(np.float32)

    workspace = make_workspace(partials)
    whole = np.zeros(total, dtype=np.float32)
    phase_whole = phase0.copy()
    render_partials(whole, total, at(0)[0], at(total)[0], at(0)[1], at(total)[1], phase_whole, SR, workspace)
    split = np.zeros(total, dtype=np.float32)
    phase_split = phase0.copy()
    start = 0
    for i in range(10000):
        n = min(BLOCKS[i % len(BLOCKS)], total - start)
        if n == 0:
            break
        block = np.zeros(n, dtype=np.float32)
        render_partials(block, n, at(start)[0], at(start + n)[0], at(start)[1], at(start + n)[1],
                        phase_split, SR, workspace)
        split[start:start + n] = block
        start += n
    assert start == total
    assert np.max(wrapped_difference(phase_whole, phase_split)) < 1e-9
    # the two runs differ only by float32 rounding of their phasors (each well inside the 1e-5 bound)
    assert np.max(np.abs(whole - split)) < 2e-6 * np.sum(a0)


def test_frequency_jump_between_blocks_keeps_the_waveform_continuous():
    """Targets that jump every block (440 -> 880 -> 220 Hz ...) change the slope, never the phase:
    the output follows the reference, and no step between adjacent samples exceeds what the
    fastest frequency in play can produce (2*pi*f/sr per sample at amplitude 1)."""
    sizes = [65, 257, 63, 4096, 1, 64, 257]
    targets_hz = [440.0, 880.0, 220.0, 3000.0, 110.0, 110.0, 5000.0, 440.0]
    frames_f = [np.array([f], dtype=np.float32) for f in targets_hz]
    frames_a = [np.array([1.0], dtype=np.float32)] * len(targets_hz)
    ours, ref, _, _ = render_sequence(frames_f, frames_a, sizes, np.array([1.0]))
    assert np.max(np.abs(ours - ref)) < 1e-5
    max_step = 2.0 * np.pi * max(targets_hz) / SR
    assert np.max(np.abs(np.diff(ours))) <= max_step * 1.0001
    # and a silent partial (amplitude 0) keeps its phase running: it re-enters on the reference
    frames_a = [np.array([a], dtype=np.float32) for a in (1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0)]
    ours, ref, _, _ = render_sequence(frames_f, frames_a, sizes, np.array([1.0]))
    assert np.max(np.abs(ours - ref)) < 1e-5


def render_one(f0_hz, f1_hz, n, amp=1.0, block=257):
    """One partial gliding f0 -> f1 over n samples, rendered in blocks of `block`."""
    workspace = make_workspace(1)
    out = np.zeros(n, dtype=np.float32)
    phase = np.zeros(1)
    for start in range(0, n, block):
        m = min(block, n - start)
        seg = np.zeros(m, dtype=np.float32)
        fa = np.float32(f0_hz + (f1_hz - f0_hz) * start / n)
        fb = np.float32(f0_hz + (f1_hz - f0_hz) * (start + m) / n)
        a = np.full(1, amp, dtype=np.float32)
        render_partials(seg, m, np.array([fa]), np.array([fb]), a, a, phase, SR, workspace)
        out[start:start + m] = seg
    return out


def test_glide_through_nyquist_fades_to_silence():
    """0.4*sr -> 0.6*sr over 1 s: full level below 0.45*sr, nothing at all once above 0.5*sr, and
    the fade between is smooth (no sample-to-sample step larger than the signal's own slope)."""
    n = 48000
    out = render_one(0.4 * SR, 0.6 * SR, n)
    freq = 0.4 * SR + 0.2 * SR * np.arange(n) / n
    below = out[freq < 0.44 * SR]
    above = out[freq >= 0.5 * SR]
    assert np.max(np.abs(below)) > 0.99
    assert np.all(above == 0.0)
    # the fade band carries less and less energy towards Nyquist
    band = [np.sqrt(np.mean(out[(freq >= lo * SR) & (freq < (lo + 0.0125) * SR)] ** 2))
            for lo in (0.45, 0.4625, 0.475, 0.4875)]
    assert all(a > b for a, b in zip(band, band[1:])), band


def test_partial_above_nyquist_is_silent_and_nothing_folds_back():
    """A partial at 0.55*sr renders exact silence; beside a 0.3*sr reference partial, the spectrum
    at 0.45*sr (where its alias would land) and everywhere below 0.47*sr away from the reference stays
    more than 80 dB down, also while a third partial glides 0.48*sr -> 0.7*sr."""
    n = 32768
    assert np.all(render_one(0.55 * SR, 0.55 * SR, n) == 0.0)
    # the glide in one call, so the per-sample fade (not the per-block sorting) must silence it
    mix = render_one(0.3 * SR, 0.3 * SR, n) + render_one(0.55 * SR, 0.55 * SR, n) \
        + render_one(0.48 * SR, 0.7 * SR, n, block=n)
    spectrum = np.abs(np.fft.rfft(mix * blackmanharris(n)))
    freq_hz = np.fft.rfftfreq(n, 1.0 / SR)
    reference_db = 20.0 * np.log10(spectrum.max())
    away = (np.abs(freq_hz - 0.3 * SR) > 200.0) & (freq_hz < 0.47 * SR)
    alias = np.abs(freq_hz - 0.45 * SR) < 50.0
    assert 20.0 * np.log10(spectrum[alias].max()) < reference_db - 80.0
    assert 20.0 * np.log10(spectrum[away].max()) < reference_db - 80.0


def test_render_partials_does_not_allocate():
    """200 calls (2000 partials, 1024-sample blocks, all three paths) leave no memory behind and
    never hold more than 1 kB extra at once: any array per call (>= 4 kB here) would show."""
    partials, n = 2000, 1024
    rng = np.random.default_rng(0)
    f0 = rng.uniform(20.0, 30000.0, partials).astype(np.float32)
    f1 = (f0 * 1.01).astype(np.float32)
    amp = np.full(partials, 1e-3, dtype=np.float32)
    phase = np.zeros(partials)
    workspace = make_workspace(partials)
    out = np.zeros(n, dtype=np.float32)
    render_partials(out, n, f0, f1, amp, amp, phase, SR, workspace)
    kept, peak = traced_allocation_bytes(
        lambda: render_partials(out, n, f0, f1, amp, amp, phase, SR, workspace), 200)
    assert kept <= 0
    assert peak < 1024


def test_non_finite_input_does_not_stick_in_the_phase():
    """A NaN frequency for one block leaves the phase at 0, so the partial sounds again afterwards."""
    workspace = make_workspace(1)
    phase = np.array([1.0])
    out = np.zeros(64, dtype=np.float32)
    nan = np.array([np.nan], dtype=np.float32)
    one = np.ones(1, dtype=np.float32)
    render_partials(out, 64, nan, nan, one, one, phase, SR, workspace)
    assert phase[0] == 0.0
    out[:] = 0.0
    f = np.array([1000.0], dtype=np.float32)
    render_partials(out, 64, f, f, one, one, phase, SR, workspace)
    expected = np.sin(2.0 * np.pi * 1000.0 * np.arange(64) / SR)
    assert np.max(np.abs(out - expected)) < 1e-5


def test_compile_oscbank_and_empty_calls():
    compile_oscbank()
    workspace = make_workspace(0)
    out = np.ones(4, dtype=np.float32)
    empty32 = np.zeros(0, dtype=np.float32)
    render_partials(out, 4, empty32, empty32, empty32, empty32, np.zeros(0), SR, workspace)
    assert np.all(out == 1.0)
    workspace = make_workspace(1)
    phase = np.array([0.5])
    f = np.array([1000.0], dtype=np.float32)
    render_partials(out, 0, f, f, f, f, phase, SR, workspace)
    assert np.all(out == 1.0) and phase[0] == 0.5


def bad_call(**changes):
    args = dict(out=np.zeros(16, dtype=np.float32), n=16, freq_start_hz=np.ones(3, dtype=np.float32),
                freq_end_hz=np.ones(3, dtype=np.float32), amp_start=np.ones(3, dtype=np.float32),
                amp_end=np.ones(3, dtype=np.float32), phase_rad=np.zeros(3), sample_rate=SR,
                workspace=make_workspace(3))
    args.update(changes)
    render_partials(**args)


@pytest.mark.parametrize("changes, message", [
    (dict(n=17), r"n=17 samples must be within 0\.\.16"),
    (dict(n=-1), r"n=-1 samples"),
    (dict(sample_rate=0.0), r"sample_rate=0\.0 Hz must be > 0"),
    (dict(workspace=make_workspace(2)), r"3 partials exceed the workspace's max_partials=2"),
    (dict(amp_end=np.ones(4, dtype=np.float32)), r"amp_end must be a contiguous float32 array of 3"),
    (dict(freq_start_hz=np.ones(3)), r"freq_start_hz must be a contiguous float32 array.*float64"),
    (dict(freq_end_hz=np.ones(6, dtype=np.float32)[::2]), r"freq_end_hz must be a contiguous"),
    (dict(phase_rad=np.zeros(3, dtype=np.float32)), r"phase_rad must be a contiguous 1-D float64"),
    (dict(out=np.zeros(16)), r"out must be a contiguous 1-D float32 array, got float64"),
])
def test_bad_input_raises_synth_error(changes, message):
    with pytest.raises(SynthError, match=message):
        bad_call(**changes)


@pytest.mark.parametrize("value", [-1, 2.5, True, "8"])
def test_make_workspace_rejects_bad_counts(value):
    with pytest.raises(SynthError, match=r"max_partials=.* must be an integer >= 0"):
        make_workspace(value)
