"""The cost of an LV2 slot against the same job done by our own plugin, in one run.

Chains of a held saw note (our oscillator) plus one slot each: nothing, our gain_pan, LV2 eg-amp
(lv2-examples), our delay, LV2 swh delay_l. Each chain's Engine.process is timed over --blocks
blocks of 256 frames, stereo, 48 kHz (median of 5 runs); a slot's cost is its chain's time per
block minus the bare chain's. The host's overhead per LV2 slot is the slot's cost minus the time of
the plugin's own run() calls for the same frames (timed apart, straight through ctypes): what the
parameter writes, channel routing and atom-buffer resets around them add.

Usage: .venv/bin/python bench/lv2.py [--blocks 4000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synth.events import NoteOn
from synth.presets import parse_preset

SAMPLE_RATE, BLOCK = 48000, 256
AMP, DELAY = "http://lv2plug.in/plugins/eg-amp", "http://plugin.org.uk/swh-plugins/delay_l"
CHAINS = {
    "bare chain": [],
    "gain_pan (ours)": [{"plugin": "gain_pan", "params": {"gain_db": -6.0}}],
    "eg-amp (LV2)": [{"plugin": "lv2", "id": "amp", "settings": {"uri": AMP}, "params": {"gain": -6.0}}],
    "delay (ours)": [{"plugin": "delay", "params": {"time_ms": 250.0, "feedback": 0.0, "mix": 0.5}}],
    "delay_l (LV2)": [{"plugin": "lv2", "id": "dl", "settings": {"uri": DELAY}, "params": {"delay_time": 0.25}}],
}


def engine_for(slots: list[dict]):
    chain = [{"plugin": "oscillator", "id": "osc", "params": {"waveform": "saw"}}, *slots]
    engine = parse_preset({"format_version": 1, "name": "bench", "chain": chain}).build_engine(SAMPLE_RATE, BLOCK, 2)
    engine.prepare()
    engine.schedule(NoteOn(0, 57, 100))
    return engine


def seconds_per_block(engine, blocks: int) -> float:
    out = np.zeros((BLOCK, 2), np.float32)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(blocks):
            engine.process(out)
        runs.append((time.perf_counter() - started) / blocks)
    return float(np.median(runs))


def run_calls_per_block(engine, slot_id: str, blocks: int) -> float:
    """The plugin's own run() for one block (each of its instances), straight through ctypes."""
    instances = engine.slot(slot_id).plugin._instances
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(blocks):
            for instance in instances:
                instance.run(BLOCK)
        runs.append((time.perf_counter() - started) / blocks)
    return float(np.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=4000, help="blocks per timing run (default 4000)")
    args = parser.parse_args()
    engines = {name: engine_for(slots) for name, slots in CHAINS.items()}
    per_block = {name: seconds_per_block(engine, args.blocks) for name, engine in engines.items()}
    bare = per_block["bare chain"]
    print(f"per block of {BLOCK} frames, stereo, {SAMPLE_RATE} Hz (bare chain: {1e6 * bare:.1f} µs)")
    for name in list(CHAINS)[1:]:
        print(f"  {name:18} slot cost {1e6 * (per_block[name] - bare):7.1f} µs")
    for ours, theirs, slot_id in (("gain_pan (ours)", "eg-amp (LV2)", "amp"), ("delay (ours)", "delay_l (LV2)", "dl")):
        lv2_cost = per_block[theirs] - bare
        own = run_calls_per_block(engines[theirs], slot_id, args.blocks)
        print(f"  {theirs} / {ours}: {lv2_cost / max(per_block[ours] - bare, 1e-9):.2f}x; "
              f"host overhead of the LV2 slot {1e6 * (lv2_cost - own):.1f} µs per block "
              f"(its run() calls {1e6 * own:.1f} µs)")


if __name__ == "__main__":
    main()
