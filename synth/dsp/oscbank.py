"""Additive oscillator bank: the sum of many sinusoidal partials, each with per-sample linear
frequency and amplitude ramps, for the realtime audio callback.

Design (about 75,000 partials per core in real time at 48 kHz, 256-sample blocks; bench/oscbank.py):
- Each partial is a complex phasor z = exp(i*phase), advanced each sample by z *= w_k, where
  w_k = exp(i*2*pi*f_k/sr) follows the linear frequency ramp: w_k = w_t + e_k, e_(k+1) = e_k + w_k*(r - 1),
  r = exp(i*2*pi*df/sr). Keeping the small difference e (not w itself) keeps w exact to float32
  precision instead of letting it random-walk. Sample k is amp_k * gain * Im(z_k).
- The inner loop runs over a chunk of CHUNK_PARTIALS partials in structure-of-arrays float32 (it
  stays in L1; LLVM vectorises it 16 wide with AVX-512), four samples per pass.
- Every RESYNC_SAMPLES samples the float32 phasors are rebuilt from float64 ones that advance a
  whole sub-block at a time (z *= A, A *= r^(S*S), w *= r^S: exact identities of the linear ramp).
  Once per block and partial, six float64 cos/sin pairs are evaluated by a branch-free polynomial
  (_cis) that vectorises. The phase handed back is never read from a phasor: it is the exact float64
  sum phase + sum_k 2*pi*f_k/sr over the block, wrapped to [-pi, pi).
- Nyquist: the gain is 1 while |f| <= 0.45*sr and falls smoothly (smoothstep, evaluated per sample)
  to 0 at 0.5*sr and above, so a glide through Nyquist neither clicks nor aliases. Partials whose
  whole segment lies at or above Nyquist, or whose amplitude is 0 at both ends, cost only their
  phase update; partials below 0.45*sr throughout skip the gain.

Accuracy (tests/test_oscbank.py checks it): against a float64 reference, plain sin of the exactly
integrated phase with the same interpolation, the error of each partial is below 1e-5 times its
amplitude (measured worst 4e-6, 20 Hz .. 24 kHz, glides up and down, blocks of 1 .. 4096), so the
error of the sum is below 1e-5 times the sum of the amplitudes. Phases handed back are exact to
~1e-12 rad per block, so rendering in blocks of any size gives the same signal to float32 rounding.
"""

import math

import numpy as np
from numba import njit

from synth.errors import SynthError

CHUNK_PARTIALS = 256  # partials rendered together; their float32/float64 state stays in L1
RESYNC_SAMPLES = 64  # float32 phasors are rebuilt from float64 ones this often (samples)
FADE_START = 0.45  # Nyquist fade: gain 1 below this fraction of the sample rate ...
FADE_END = 0.5  # ... falling to 0 here (smoothstep in between)

_TWO_PI_HI = 6.283185307179586  # 2*pi split in two for an exact range reduction
_TWO_PI_LO = 2.4492935982947064e-16
_INV_TWO_PI = 1.0 / (2.0 * math.pi)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_FAST = {"reassoc", "contract", "nsz"}  # vectorisable sums; no assumptions about NaN or inf

# Workspace layout: each array is rows of CHUNK_PARTIALS, one row per field, in ONE flat array,
# indexed at constant offsets; LLVM then sees that the rows cannot overlap and vectorises the loops
# (separate arrays, or rows of a 2-D array, need alias checks it gives up on). A chunk's partials are
# sorted: plain ones at positions 0..plain, Nyquist-faded ones at CHUNK_PARTIALS-faded..CHUNK_PARTIALS;
# the faded group goes to the same loops as a view starting at its first position (loop indices
# then start at 0, which LLVM needs to prove them non-negative).
_C = CHUNK_PARTIALS
# float64 rows: the block's inputs (start phase, Hz at both ends, amplitude at both ends), phasor z,
# frequency phasor w, A (z's advance over a sub-block of S samples), Q = r^(S*S) (A's advance),
# r^S (w's advance), amplitude and its per-sample step, frequency (fraction of sr) and its step
(_PH, _F0, _F1, _AMP0, _AMP1, _ZR, _ZI, _WR, _WI, _AR, _AI, _QR, _QI, _SR, _SI, _A0, _DA, _U0,
 _DU) = [row * _C for row in range(19)]
_N64 = 19
# float32 rows: z, w at the sub-block start (w_t), e = w_k - w_t (small, so exact to float32
# relative precision: w_k = w_t + e_k carries no accumulated rounding), r - 1, amplitude and its
# step, frequency (fraction of sr) and its step
(_ZR32, _ZI32, _WR32, _WI32, _ER32, _EI32, _RR32, _RI32, _AMP32, _DA32, _U32,
 _DU32) = [row * _C for row in range(12)]
_N32 = 12


class OscBankWorkspace:
    """Scratch for render_partials, allocated once by make_workspace: float64 [19 * CHUNK_PARTIALS],
    float32 [12 * CHUNK_PARTIALS], and the largest partial count the owner promised to render
    (max_partials)."""

    __slots__ = ("max_partials", "f64", "f32")

    def __init__(self, max_partials: int):
        self.max_partials = max_partials
        self.f64 = np.zeros(_N64 * _C, dtype=np.float64)
        self.f32 = np.zeros(_N32 * _C, dtype=np.float32)


def make_workspace(max_partials: int) -> OscBankWorkspace:
    """Workspace for render_partials with up to `max_partials` partials (an int >= 0). The scratch
    is a fixed few tens of kB whatever the count, because partials are rendered in chunks."""
    if isinstance(max_partials, bool) or not isinstance(max_partials, (int, np.integer)) or max_partials < 0:
        raise SynthError(f"oscbank: max_partials={max_partials!r} must be an integer >= 0")
    return OscBankWorkspace(int(max_partials))


def render_partials(out, n, freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad, sample_rate,
                    workspace):
    """Add (+=) the sum of all partials into out[0:n] (float32 [>= n]).

    freq_start_hz/freq_end_hz: float32 [partials] frequency (Hz) at the segment's first sample and
    the value it reaches at sample n (linear per-sample interpolation between them: sample k,
    0 <= k < n, sounds at f_start + (f_end - f_start) * k / n).
    amp_start/amp_end: float32 [partials] linear amplitude, interpolated likewise.
    phase_rad: float64 [partials] phase (radians) at the first sample; updated in place to the phase
    at sample n (wrapped to [-pi, pi)), so the next call continues it exactly (state in, state out).
    Sample k of a partial is amp_k * gain(f_k) * sin(phase_k).
    sample_rate: Hz (> 0). workspace: made by make_workspace(max_partials), max_partials >= partials.
    Partials at or above Nyquist fade out: gain 1 for |f| <= 0.45*sr, smoothstep down to 0 at 0.5*sr.
    Allocates nothing; raises SynthError on wrong shapes, dtypes or values (checked before any work).
    """
    shape = phase_rad.shape
    # one fast test for the good case (the audio callback pays it every block), details only on failure
    if not (out.ndim == 1 and 0 <= n <= out.shape[0] and sample_rate > 0.0 and len(shape) == 1
            and shape[0] <= workspace.max_partials
            and freq_start_hz.shape == shape and freq_end_hz.shape == shape
            and amp_start.shape == shape and amp_end.shape == shape
            and out.dtype is _F32 and freq_start_hz.dtype is _F32 and freq_end_hz.dtype is _F32
            and amp_start.dtype is _F32 and amp_end.dtype is _F32 and phase_rad.dtype is _F64
            and out.flags.c_contiguous and phase_rad.flags.c_contiguous
            and freq_start_hz.flags.c_contiguous and freq_end_hz.flags.c_contiguous
            and amp_start.flags.c_contiguous and amp_end.flags.c_contiguous):
        _check_inputs(out, n, freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad, sample_rate,
                      workspace)
    _render_kernel(out, int(n), freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad,
                   float(sample_rate), workspace.f64, workspace.f32)


def _check_inputs(out, n, freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad, sample_rate, workspace):
    """Raise SynthError naming the first argument of render_partials that is wrong, and how (the
    slow path, taken only when the fast test fails: e.g. an equal but not identical dtype passes)."""
    if out.dtype != np.float32 or out.ndim != 1 or not out.flags.c_contiguous:
        raise SynthError(f"oscbank: out must be a contiguous 1-D float32 array, got {out.dtype} "
                         f"shape {out.shape}")
    if not (0 <= n <= out.shape[0]):
        raise SynthError(f"oscbank: n={n} samples must be within 0..{out.shape[0]} (the length of out)")
    if not sample_rate > 0.0:
        raise SynthError(f"oscbank: sample_rate={sample_rate} Hz must be > 0")
    if phase_rad.dtype != np.float64 or phase_rad.ndim != 1 or not phase_rad.flags.c_contiguous:
        raise SynthError(f"oscbank: phase_rad must be a contiguous 1-D float64 array, got {phase_rad.dtype} "
                         f"shape {phase_rad.shape}")
    partials = phase_rad.shape[0]
    if partials > workspace.max_partials:
        raise SynthError(f"oscbank: {partials} partials exceed the workspace's max_partials="
                         f"{workspace.max_partials}; make one with make_workspace({partials})")
    for name, arr in (("freq_start_hz", freq_start_hz), ("freq_end_hz", freq_end_hz),
                      ("amp_start", amp_start), ("amp_end", amp_end)):
        if arr.dtype != np.float32 or arr.shape != (partials,) or not arr.flags.c_contiguous:
            raise SynthError(f"oscbank: {name} must be a contiguous float32 array of {partials} partials "
                             f"(the length of phase_rad), got {arr.dtype} shape {arr.shape}")


def compile_oscbank() -> None:
    """Compile (or load from numba's cache) every kernel here by rendering a few tiny blocks that
    take each path (plain, Nyquist fade, silent). Call before the audio stream starts."""
    workspace = make_workspace(4)
    out = np.zeros(8, dtype=np.float32)
    freq = np.array([440.0, 21000.0, 30000.0, 100.0], dtype=np.float32)
    amp = np.full(4, 0.1, dtype=np.float32)
    phase = np.zeros(4, dtype=np.float64)
    render_partials(out, 8, freq, freq, amp, amp, phase, 48000.0, workspace)


@njit(nogil=True, cache=True, inline="always")
def _reduce(x):
    """x (radians, any size up to ~1e9) wrapped to [-pi, pi), with 2*pi in two parts."""
    k = np.floor(x * _INV_TWO_PI + 0.5)
    return (x - k * _TWO_PI_HI) - k * _TWO_PI_LO


@njit(nogil=True, cache=True, inline="always")
def _cis(x):
    """(cos x, sin x) in float64 to ~1e-15, for any x: Taylor series on x/4 (|x/4| <= pi/4, terms
    to x^16, truncation < 1e-16) then two angle doublings. Branch-free, so loops over it vectorise."""
    y = 0.25 * _reduce(x)
    y2 = y * y
    s = y * (1.0 + y2 * (-1.0 / 6.0 + y2 * (1.0 / 120.0 + y2 * (-1.0 / 5040.0 + y2 * (1.0 / 362880.0 + y2 * (
        -1.0 / 39916800.0 + y2 * (1.0 / 6227020800.0 + y2 * (-1.0 / 1307674368000.0))))))))
    c = 1.0 + y2 * (-0.5 + y2 * (1.0 / 24.0 + y2 * (-1.0 / 720.0 + y2 * (1.0 / 40320.0 + y2 * (
        -1.0 / 3628800.0 + y2 * (1.0 / 479001600.0 + y2 * (-1.0 / 87178291200.0 + y2 / 20922789888000.0)))))))
    c, s = c * c - s * s, 2.0 * c * s
    return c * c - s * s, 2.0 * c * s


@njit(nogil=True, cache=True)
def _render_kernel(out, n, freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad, sample_rate,
                   ws64, ws32):
    """render_partials without the checks, one chunk of CHUNK_PARTIALS partials at a time."""
    if n <= 0:
        return
    partials = phase_rad.shape[0]
    rad_per_hz = 2.0 * math.pi / sample_rate
    inv_n = 1.0 / n
    for base in range(0, partials, _C):
        count = min(_C, partials - base)
        plain, faded = _sort_chunk(base, count, freq_start_hz, freq_end_hz, amp_start, amp_end,
                                   phase_rad, sample_rate, ws64)
        lo = _C - faded
        _setup(plain, n, rad_per_hz, sample_rate, ws64, ws32)
        _setup(faded, n, rad_per_hz, sample_rate, ws64[lo:], ws32[lo:])
        for t in range(0, n, RESYNC_SAMPLES):
            m = min(RESYNC_SAMPLES, n - t)
            _resync(plain, t, t + m < n, ws64, ws32)
            _render_plain(out, t, m, plain, ws32)
            if faded > 0:
                _resync(faded, t, t + m < n, ws64[lo:], ws32[lo:])
                _render_faded(out, t, m, faded, ws32[lo:])
        for p in range(base, base + count):
            f0 = float(freq_start_hz[p])
            step_rad = rad_per_hz * (float(freq_end_hz[p]) - f0) * inv_n
            # exact phase at sample n: the sum over k < n of (rad_per_hz * f0 + step_rad * k)
            end = _reduce(phase_rad[p] + n * rad_per_hz * f0 + 0.5 * n * (n - 1.0) * step_rad)
            phase_rad[p] = end if abs(end) <= 4.0 else 0.0  # NaN/inf input: restart at 0, not stuck


@njit(nogil=True, cache=True)
def _sort_chunk(base, count, freq_start_hz, freq_end_hz, amp_start, amp_end, phase_rad, sample_rate,
                ws64):
    """Sort partials base..base+count into plain (gain 1 throughout: |f| <= FADE_START*sr), faded
    (some of the segment between) and skipped (silent: amplitude 0 at both ends, or |f| >= Nyquist
    throughout); copy the inputs of the first two groups to their positions in ws64's input rows.
    Returns (plain, faded) counts."""
    fade_start_hz = FADE_START * sample_rate
    fade_end_hz = FADE_END * sample_rate
    plain = 0
    faded = 0
    for q in range(count):
        p = base + q
        f0 = float(freq_start_hz[p])
        f1 = float(freq_end_hz[p])
        if amp_start[p] == 0.0 and amp_end[p] == 0.0:
            continue
        low_hz = 0.0 if f0 * f1 < 0.0 else min(abs(f0), abs(f1))
        if max(abs(f0), abs(f1)) <= fade_start_hz:
            j = plain
            plain += 1
        elif low_hz < fade_end_hz:
            faded += 1
            j = _C - faded
        else:
            continue
        ws64[_PH + j] = phase_rad[p]
        ws64[_F0 + j] = f0
        ws64[_F1 + j] = f1
        ws64[_AMP0 + j] = amp_start[p]
        ws64[_AMP1 + j] = amp_end[p]
    return plain, faded


@njit(nogil=True, cache=True)
def _setup(count, n, rad_per_hz, sample_rate, ws64, ws32):
    """From the input rows of positions 0..count: float64 phasors z (start phase), w (start
    frequency) and, when the block has several sub-blocks, A, Q and r^S; float32 r - 1 (w's
    per-sample advance); amplitude and frequency ramps."""
    inv_n = 1.0 / n
    inv_sr = 1.0 / sample_rate  # multiplications only: a division in the loop stops vectorisation
    s = float(RESYNC_SAMPLES)
    for j in range(count):
        f0 = ws64[_F0 + j]
        step_rad = rad_per_hz * (ws64[_F1 + j] - f0) * inv_n
        ws64[_ZR + j], ws64[_ZI + j] = _cis(ws64[_PH + j])
        ws64[_WR + j], ws64[_WI + j] = _cis(rad_per_hz * f0)
        cr, ci = _cis(step_rad)
        ws32[_RR32 + j] = cr - 1.0  # exact to ~1e-16 absolute, all that matters here
        ws32[_RI32 + j] = ci
        a0 = ws64[_AMP0 + j]
        ws64[_A0 + j] = a0
        ws64[_DA + j] = (ws64[_AMP1 + j] - a0) * inv_n
        ws32[_DA32 + j] = ws64[_DA + j]
        ws64[_U0 + j] = f0 * inv_sr
        ws64[_DU + j] = (ws64[_F1 + j] - f0) * inv_n * inv_sr
        ws32[_DU32 + j] = ws64[_DU + j]
    if n > RESYNC_SAMPLES:
        for j in range(count):
            start_rad = rad_per_hz * ws64[_F0 + j]
            step_rad = rad_per_hz * (ws64[_F1 + j] - ws64[_F0 + j]) * inv_n
            ws64[_AR + j], ws64[_AI + j] = _cis(s * start_rad + 0.5 * s * (s - 1.0) * step_rad)
            ws64[_QR + j], ws64[_QI + j] = _cis(s * s * step_rad)
            ws64[_SR + j], ws64[_SI + j] = _cis(s * step_rad)


@njit(nogil=True, cache=True)
def _resync(count, t, advance, ws64, ws32):
    """float32 phasors, amplitudes and frequencies (fraction of sr) at sample t for positions
    0..count from the float64 ones; then, if `advance`, move the float64 phasors on one sub-block."""
    for j in range(count):
        ws32[_ZR32 + j] = ws64[_ZR + j]
        ws32[_ZI32 + j] = ws64[_ZI + j]
        ws32[_WR32 + j] = ws64[_WR + j]
        ws32[_WI32 + j] = ws64[_WI + j]
        ws32[_ER32 + j] = 0.0
        ws32[_EI32 + j] = 0.0
        ws32[_AMP32 + j] = ws64[_A0 + j] + ws64[_DA + j] * t
        ws32[_U32 + j] = ws64[_U0 + j] + ws64[_DU + j] * t
    if advance:
        for j in range(count):
            zr = ws64[_ZR + j]
            zi = ws64[_ZI + j]
            ar = ws64[_AR + j]
            ai = ws64[_AI + j]
            ws64[_ZR + j] = zr * ar - zi * ai
            ws64[_ZI + j] = zr * ai + zi * ar
            qr = ws64[_QR + j]
            qi = ws64[_QI + j]
            ws64[_AR + j] = ar * qr - ai * qi
            ws64[_AI + j] = ar * qi + ai * qr
            wr = ws64[_WR + j]
            wi = ws64[_WI + j]
            sr = ws64[_SR + j]
            si = ws64[_SI + j]
            ws64[_WR + j] = wr * sr - wi * si
            ws64[_WI + j] = wr * si + wi * sr


@njit(nogil=True, cache=True, inline="always")
def _step(xr, xi, er, ei, wr, wi, rr, ri):
    """One sample of a phasor: z *= w_t + e, then e += (w_t + e) * (r - 1). Returns the new z, e."""
    cr = wr + er
    ci = wi + ei
    return xr * cr - xi * ci, xr * ci + xi * cr, er + (cr * rr - ci * ri), ei + (cr * ri + ci * rr)


@njit(nogil=True, cache=True, inline="always")
def _gain(u):
    """Nyquist gain at frequency u (fraction of sr): 1 up to FADE_START, smoothstep to 0 at FADE_END."""
    x = (np.float32(FADE_END) - abs(u)) * np.float32(1.0 / (FADE_END - FADE_START))
    x = min(max(x, np.float32(0.0)), np.float32(1.0))
    return x * x * (np.float32(3.0) - np.float32(2.0) * x)


@njit(nogil=True, cache=True, fastmath=_FAST)
def _render_plain(out, t, m, count, ws32):
    """out[t:t+m] += sum over positions 0..count of amp_k * Im(z_k), advancing z and e (the
    amplitude rows hold the value at sample t; sample t+k uses amp + k*da, no running sum). Four
    samples per pass over the partials, so their state is loaded and stored once per four samples."""
    k = 0
    while k + 4 <= m:
        kf = np.float32(k)
        acc0 = np.float32(0.0)
        acc1 = np.float32(0.0)
        acc2 = np.float32(0.0)
        acc3 = np.float32(0.0)
        for j in range(count):
            da = ws32[_DA32 + j]
            a = ws32[_AMP32 + j] + kf * da
            xr = ws32[_ZR32 + j]
            xi = ws32[_ZI32 + j]
            er = ws32[_ER32 + j]
            ei = ws32[_EI32 + j]
            wr = ws32[_WR32 + j]
            wi = ws32[_WI32 + j]
            rr = ws32[_RR32 + j]
            ri = ws32[_RI32 + j]
            acc0 += a * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            acc1 += (a + da) * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            acc2 += (a + np.float32(2.0) * da) * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            acc3 += (a + np.float32(3.0) * da) * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            ws32[_ZR32 + j] = xr
            ws32[_ZI32 + j] = xi
            ws32[_ER32 + j] = er
            ws32[_EI32 + j] = ei
        out[t + k] += acc0
        out[t + k + 1] += acc1
        out[t + k + 2] += acc2
        out[t + k + 3] += acc3
        k += 4
    while k < m:
        kf = np.float32(k)
        acc0 = np.float32(0.0)
        for j in range(count):
            xi = ws32[_ZI32 + j]
            acc0 += (ws32[_AMP32 + j] + kf * ws32[_DA32 + j]) * xi
            ws32[_ZR32 + j], ws32[_ZI32 + j], ws32[_ER32 + j], ws32[_EI32 + j] = _step(
                ws32[_ZR32 + j], xi, ws32[_ER32 + j], ws32[_EI32 + j], ws32[_WR32 + j], ws32[_WI32 + j],
                ws32[_RR32 + j], ws32[_RI32 + j])
        out[t + k] += acc0
        k += 1


@njit(nogil=True, cache=True, fastmath=_FAST)
def _render_faded(out, t, m, count, ws32):
    """As _render_plain, each sample times the Nyquist gain at the partial's frequency (u + k*du,
    fraction of sr); two samples per pass."""
    k = 0
    while k + 2 <= m:
        kf = np.float32(k)
        acc0 = np.float32(0.0)
        acc1 = np.float32(0.0)
        for j in range(count):
            da = ws32[_DA32 + j]
            a = ws32[_AMP32 + j] + kf * da
            du = ws32[_DU32 + j]
            u = ws32[_U32 + j] + kf * du
            xr = ws32[_ZR32 + j]
            xi = ws32[_ZI32 + j]
            er = ws32[_ER32 + j]
            ei = ws32[_EI32 + j]
            wr = ws32[_WR32 + j]
            wi = ws32[_WI32 + j]
            rr = ws32[_RR32 + j]
            ri = ws32[_RI32 + j]
            acc0 += a * _gain(u) * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            acc1 += (a + da) * _gain(u + du) * xi
            xr, xi, er, ei = _step(xr, xi, er, ei, wr, wi, rr, ri)
            ws32[_ZR32 + j] = xr
            ws32[_ZI32 + j] = xi
            ws32[_ER32 + j] = er
            ws32[_EI32 + j] = ei
        out[t + k] += acc0
        out[t + k + 1] += acc1
        k += 2
    if k < m:
        kf = np.float32(k)
        acc0 = np.float32(0.0)
        for j in range(count):
            xi = ws32[_ZI32 + j]
            u = ws32[_U32 + j] + kf * ws32[_DU32 + j]
            acc0 += (ws32[_AMP32 + j] + kf * ws32[_DA32 + j]) * _gain(u) * xi
            ws32[_ZR32 + j], ws32[_ZI32 + j], ws32[_ER32 + j], ws32[_EI32 + j] = _step(
                ws32[_ZR32 + j], xi, ws32[_ER32 + j], ws32[_EI32 + j], ws32[_WR32 + j], ws32[_WI32 + j],
                ws32[_RR32 + j], ws32[_RI32 + j])
        out[t + k] += acc0
