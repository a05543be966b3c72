"""Oscillators in real time on one core: synth.dsp.oscbank against Csound's adsynt2.

For each partial count, renders `--seconds` of audio at 48 kHz in `--block`-sample blocks with
per-partial frequency and amplitude targets that change every block (per-sample linear
interpolation of both), and prints osc_in_realtime = partials * audio_seconds / cpu_seconds.
In the same run it renders the same partial count, sample rate, block (ksmps) and duration with
Csound's adsynt2 (`csound -n`: no output file; a temporary .csd whose frequency and amplitude
ftables, GEN23, hold the same partials; kcps and kamp are k-rate LFOs, so every partial's frequency
and amplitude change every k-cycle) and prints the ratio ours / Csound's.

Csound's CPU time is the child's user+system time (getrusage) minus that of a trivial orchestra:
the same .csd, tables and score with the adsynt2 line replaced by silence, which measures start-up,
table loading and the k-loop, everything but the oscillators. Both sides are pinned to one core
(os.sched_setaffinity, inherited by csound); numba runs single-threaded. Each figure is the best of
`--repeat` runs. adsynt2 interpolates amplitude per sample but holds frequency for a k-cycle, so it
does less work per partial-sample than we do.

Two more lines say where the figures stand on this CPU: the target numba compiled for and the width
of the vector registers our partial loop runs on (xmm 128, ymm 256, zmm 512 bits: a loop left on xmm
by an unrecognised CPU is several times slower), and a rotation probe, near the floor of any phasor bank:
z *= w and a sum of Im z per sample, no ramps, in the same chunks of float32 (best of three runs).

Usage: .venv/bin/python bench/oscbank.py [--partials 100 1000 10000 40000] [--seconds 10]
                                          [--block 256] [--repeat 1] [--cpu N] [--no-csound]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit, types

from synth.dsp import oscbank
from synth.dsp.oscbank import compile_oscbank, make_workspace, render_partials

SAMPLE_RATE = 48000
FRAMES = 8  # distinct target frames, cycled so targets change every block
CSOUND_SINE_TABLE = 16384


def partial_set(partials: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Base frequencies (Hz, 50 .. 15000 log-uniform) and amplitudes (summing to 0.5) [partials]."""
    rng = np.random.default_rng(seed)
    freq_hz = np.exp(rng.uniform(np.log(50.0), np.log(15000.0), partials))
    amp = rng.uniform(0.0, 1.0, partials)
    return freq_hz, amp * (0.5 / amp.sum())


def ours_cpu_seconds(partials: int, seconds: float, block: int) -> float:
    """CPU seconds (process time) to render `seconds` of audio with render_partials."""
    freq_hz, amp = partial_set(partials)
    rng = np.random.default_rng(2)
    frames_f = [(freq_hz * (1.0 + 0.01 * rng.standard_normal(partials))).astype(np.float32)
                for _ in range(FRAMES)]
    frames_a = [(amp * rng.uniform(0.5, 1.0, partials)).astype(np.float32) for _ in range(FRAMES)]
    workspace = make_workspace(partials)
    phase = np.zeros(partials)
    out = np.zeros(block, dtype=np.float32)
    blocks = int(round(seconds * SAMPLE_RATE / block))
    render_partials(out, block, frames_f[0], frames_f[1], frames_a[0], frames_a[1], phase, SAMPLE_RATE,
                    workspace)
    start = time.process_time()
    for b in range(blocks):
        i, j = b % FRAMES, (b + 1) % FRAMES
        out.fill(0.0)
        render_partials(out, block, frames_f[i], frames_f[j], frames_a[i], frames_a[j], phase, SAMPLE_RATE,
                        workspace)
    return time.process_time() - start


@njit(nogil=True, cache=True, fastmath=oscbank._FAST)
def _rotate(out, zr, zi, wr, wi):
    """out[k] += sum_j Im(z_j * w_j^(k+1)): the rotation probe's loop, z and w float32 [chunk]."""
    for k in range(out.shape[0]):
        acc = np.float32(0.0)
        for j in range(zr.shape[0]):
            xr = zr[j] * wr[j] - zi[j] * wi[j]
            xi = zr[j] * wi[j] + zi[j] * wr[j]
            zr[j] = xr
            zi[j] = xi
            acc += xi
        out[k] += acc


def rotation_probe_ns(seconds: float = 0.5) -> float:
    """CPU ns per oscillator-sample of _rotate over one chunk of oscbank.CHUNK_PARTIALS partials,
    the best of three runs of `seconds` of audio."""
    chunk = oscbank.CHUNK_PARTIALS
    angle = np.random.default_rng(3).uniform(0.01, 1.0, chunk)
    zr, zi = np.ones(chunk, np.float32), np.zeros(chunk, np.float32)
    wr, wi = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    out = np.zeros(64, dtype=np.float32)  # samples per call: the bank's resync interval
    _rotate(out, zr, zi, wr, wi)
    calls = int(seconds * SAMPLE_RATE / out.size)
    best_s = math.inf
    for _ in range(3):
        start = time.process_time()
        for _ in range(calls):
            _rotate(out, zr, zi, wr, wi)
        best_s = min(best_s, time.process_time() - start)
    return best_s / (calls * out.size * chunk) * 1e9


def codegen_line() -> str:
    """numba's target CPU and the widest vector registers in the bank's partial loop."""
    from numba.core.registry import cpu_target

    codegen = cpu_target.target_context.codegen()
    # a fresh compilation of the loop: a kernel loaded from numba's cache carries no assembly
    fresh = njit(nogil=True, fastmath=oscbank._FAST)(oscbank._render_plain.py_func)
    # (out, t, m, count, ws32) as _render_kernel passes them
    signature = (types.float32[::1], types.int64, types.int64, types.int64, types.float32[::1])
    fresh.compile(signature)
    assembly = fresh.inspect_asm(signature)
    width = next((bits for name, bits in (("zmm", 512), ("ymm", 256), ("xmm", 128)) if f"%{name}" in assembly), 0)
    return f"numba target CPU {codegen._get_host_cpu_name()}; partial loop on {width}-bit vector registers"


def write_csd(folder: Path, partials: int, seconds: float, block: int, silent: bool) -> Path:
    """A .csd rendering the partial set with adsynt2 (or, if `silent`, the same minus adsynt2)."""
    freq_hz, amp = partial_set(partials)
    (folder / "freqs.txt").write_text("\n".join(f"{f:.6f}" for f in freq_hz) + "\n")
    (folder / "amps.txt").write_text("\n".join(f"{a:.9g}" for a in amp) + "\n")
    synth = "asig = 0" if silent else f"asig adsynt2 kamp, kcps, 1, 2, 3, {partials}"
    path = folder / ("silent.csd" if silent else "adsynt2.csd")
    path.write_text(f"""<CsoundSynthesizer>
<CsOptions>
-n -d -m0
</CsOptions>
<CsInstruments>
sr = {SAMPLE_RATE}
ksmps = {block}
nchnls = 1
0dbfs = 1
instr 1
  kcps = 1 + 0.01 * oscili:k(1, 5)
  kamp = 0.75 + 0.25 * oscili:k(1, 3)
  {synth}
  out asig
endin
</CsInstruments>
<CsScore>
f 1 0 {CSOUND_SINE_TABLE} 10 1
f 2 0 0 -23 "freqs.txt"
f 3 0 0 -23 "amps.txt"
i 1 0 {seconds}
</CsScore>
</CsoundSynthesizer>
""")
    return path


def child_cpu_seconds(command: list[str], cwd: Path) -> float:
    """User + system CPU seconds of one child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    messages = result.stdout + result.stderr
    if result.returncode != 0 or "INIT ERROR" in messages or "PERF ERROR" in messages \
            or re.search(r"[1-9][0-9]* errors? in performance", messages):
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def csound_cpu_seconds(csound: str, partials: int, seconds: float, block: int,
                       repeat: int) -> tuple[float, float]:
    """(net adsynt2 CPU seconds, trivial-orchestra CPU seconds), each the best of `repeat` runs."""
    with tempfile.TemporaryDirectory(prefix="bench_oscbank_") as tmp:
        folder = Path(tmp)
        full = write_csd(folder, partials, seconds, block, silent=False)
        silent = write_csd(folder, partials, seconds, block, silent=True)
        base = min(child_cpu_seconds([csound, silent.name], folder) for _ in range(repeat))
        total = min(child_cpu_seconds([csound, full.name], folder) for _ in range(repeat))
    return max(total - base, 1e-9), base


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partials", type=int, nargs="+", default=[100, 1000, 10000, 40000])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per measurement")
    parser.add_argument("--block", type=int, default=256, help="block size = Csound ksmps (samples)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the best is kept")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed)")
    parser.add_argument("--no-csound", action="store_true", help="skip the Csound comparison")
    args = parser.parse_args(argv)

    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    compile_oscbank()
    csound = None if args.no_csound else shutil.which("csound")
    print(f"oscillator bank, {SAMPLE_RATE} Hz, {args.block}-sample blocks, {args.seconds:g} s of audio, "
          f"core {cpu}; csound: {csound or 'not run'}")
    print(f"{codegen_line()}; rotation probe {rotation_probe_ns():.3f} ns/osc-smp")
    print(f"{'partials':>9} {'ours cpu s':>11} {'ours osc RT':>12} {'ns/osc-smp':>11} "
          f"{'csound net s':>13} {'(startup s)':>11} {'csound osc RT':>14} {'ratio':>7}")
    for partials in args.partials:
        cpu_s = min(ours_cpu_seconds(partials, args.seconds, args.block) for _ in range(args.repeat))
        ours_rt = partials * args.seconds / cpu_s
        ns = cpu_s / (partials * args.seconds * SAMPLE_RATE) * 1e9
        line = f"{partials:>9} {cpu_s:>11.3f} {ours_rt:>12,.0f} {ns:>11.3f}"
        if csound:
            net_s, base_s = csound_cpu_seconds(csound, partials, args.seconds, args.block, args.repeat)
            cs_rt = partials * args.seconds / net_s
            line += f" {net_s:>13.3f} {base_s:>11.3f} {cs_rt:>14,.0f} {ours_rt / cs_rt:>7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
