"""Realtime tests on a real PortAudio stream through JACK's dummy backend (paced like a sound card)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from synth.events import NoteOff, NoteOn, seconds_to_samples
from synth.host import Host
from synth.presets import load_preset
from synth.render import render_array


from conftest import JACK_PERIOD as PERIOD, JACK_RATE as SAMPLE_RATE, as_in_a_terminal, realtime_trials


def chord_events(seconds: float, voices: int = 32) -> list:
    """`voices` notes held together all along, each retaken once a second (staggered)."""
    events = []
    for voice in range(voices):
        note = 36 + voice * 2
        start = voice * 0.03
        while start < seconds - 1.0:
            events.append(NoteOn(seconds_to_samples(start, SAMPLE_RATE), note, 100))
            events.append(NoteOff(seconds_to_samples(start + 0.95, SAMPLE_RATE), note))
            start += 1.0
    return events


def test_32_voices_for_20_seconds_without_a_glitch_and_equal_to_offline(jack):
    seconds = 20.0
    frames = round(seconds * SAMPLE_RATE)
    preset = load_preset("strings-32")
    events = chord_events(seconds)

    def trial():
        host = Host(preset, SAMPLE_RATE, PERIOD, device=jack, capture_frames=frames)
        host.start(events)
        deadline = time.monotonic() + seconds + 10
        peak_voices = 0
        while host.captured_frames < frames and time.monotonic() < deadline:
            time.sleep(0.2)
            peak_voices = max(peak_voices, host.active_voices)
        host.stop()
        status = host.status()
        print(f"\n32 voices, 20 s: {status.underflows} underflows, "
              f"callback p99 {status.callback_p99_ms:.2f} ms, max {status.callback_max_ms:.2f} ms of {status.block_period_ms:.2f}")
        assert status.underflows < 256
        return host.underflow_times(), (host, peak_voices)

    host, peak_voices = realtime_trials(trial)
    live = host.capture()
    assert len(live) == frames
    assert host.scheduling == ("realtime" if os.geteuid() == 0 else "normal")
    assert peak_voices == 32
    offline = render_array(preset.build_engine(SAMPLE_RATE, PERIOD), events, frames, PERIOD)
    assert np.max(np.abs(live)) > 0.05
    assert np.array_equal(live, offline)


def test_the_audio_plane_is_a_process_of_its_own(jack):
    """The stream and engine live in a spawned child; this process keeps its garbage collector
    (a collection here no longer holds any lock the callback needs), and the child is gone after stop."""
    import gc
    import multiprocessing

    host = Host(load_preset("warm-pad"), SAMPLE_RATE, PERIOD, device=jack)
    with host:
        (child,) = multiprocessing.active_children()
        assert child.name == "synth-audio-plane" and gc.isenabled()
        time.sleep(0.1)
        assert host.scheduling == ("realtime" if os.geteuid() == 0 else "normal")
    assert not multiprocessing.active_children()


def test_synth_serve_twenty_times_leaks_no_process_thread_file_or_segment(jack, tmp_path, capsys):
    """`synth serve` as the command line runs it (OSC over UDP and TCP, a session recorder, the host
    and its audio plane), started and stopped 20 times in this process."""
    from synth.cli import main

    def serve(run: int) -> None:
        session = tmp_path / f"session{run}.jsonl"
        assert main(["serve", "warm-pad", "--device", str(jack), "--osc-port", "0", "--osc-tcp",
                     "--duration", "0.3", "--record", str(session)]) == 0
        assert session.is_file()
        summary = capsys.readouterr().err
        assert "OSC on udp://127.0.0.1:" in summary and "tcp://127.0.0.1:" in summary
        assert float(summary.split("callback p50 ")[1].split(" ms")[0]) > 0.0  # the stream ran

    def children():
        return set(subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split())

    serve(0)  # the first start makes the lasting things (multiprocessing's resource tracker)
    threads, files, segments = threading.active_count(), len(os.listdir("/proc/self/fd")), set(os.listdir("/dev/shm"))
    processes = children()
    for run in range(1, 21):
        serve(run)
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == files
    assert set(os.listdir("/dev/shm")) <= segments  # every shared-memory segment removed
    assert children() <= processes  # every audio plane gone


def test_duplex_stream_with_live_input(jack):
    def trial():
        with Host(load_preset("warm-pad"), SAMPLE_RATE, PERIOD, input_channels=2, device=jack) as host:
            time.sleep(1.0)
        return host.underflow_times(), host

    assert realtime_trials(trial).callbacks > 150


def _synth(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "synth", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_in_a_terminal, **kwargs)


def _started(process) -> None:
    """Read the process's stderr until it says it is playing."""
    deadline = time.monotonic() + 60
    line = ""
    while "playing" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()


def _audio_planes(pid: int) -> list[int]:
    """The audio plane processes `pid` spawned (not multiprocessing's resource tracker)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_sigterm_and_ctrl_c_stop_both_planes_within_two_seconds(jack):
    segments = set(os.listdir("/dev/shm"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = _synth("play", "warm-pad")
        _started(process)
        time.sleep(0.5)
        planes = _audio_planes(process.pid)
        assert planes, "no audio plane process"
        signalled = time.monotonic()
        if sig == signal.SIGINT:  # Ctrl-C in a terminal reaches the whole process group
            for pid in [process.pid] + planes:
                os.kill(pid, sig)
        else:
            process.send_signal(sig)
        _, err = process.communicate(timeout=20)
        assert time.monotonic() - signalled < 2.0
        assert process.returncode == 0, err
        assert "Traceback" not in err and "underflows" in err
        assert f"audio thread scheduling: {'realtime' if os.geteuid() == 0 else 'normal'}" in err
        assert not any(Path(f"/proc/{pid}").exists() for pid in planes)
    assert set(os.listdir("/dev/shm")) <= segments


def test_a_dead_audio_plane_is_reported_in_one_sentence(jack):
    process = _synth("play", "warm-pad")
    _started(process)
    (plane,) = _audio_planes(process.pid)
    os.kill(plane, signal.SIGKILL)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "the audio plane process stopped unexpectedly (exit code -9); the stream stopped." in err
    assert "Traceback" not in err


def test_the_audio_plane_stops_when_its_control_plane_is_killed(jack):
    """No signal handler runs on SIGKILL: the audio plane sees its pipe close and stops by itself."""
    process = _synth("play", "warm-pad")
    _started(process)
    (plane,) = _audio_planes(process.pid)
    process.kill()
    process.communicate(timeout=20)
    deadline = time.monotonic() + 2.0
    while _running(plane) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(plane)


def _running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (an orphan's zombie waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("args, sentence", [
    (["--device", "no-such-card"], "No output device matches 'no-such-card'; `synth devices` lists them."),
    (["--sample-rate", "44100"], "cannot play 2 channels at 44100 Hz"),
    (["--block-size", "0"], "argument --block-size: expected an integer in 1..8192 frames, got '0'"),
    (["--capture", "x.wav"], "--capture needs a score or --duration"),
    (["--input-channels", "8"], "Device 'system' has 2 input channels, not 8."),
])
def test_bad_device_settings_give_one_sentence(jack, args, sentence, tmp_path):
    process = _synth("play", "warm-pad", "--duration", "1", *args, cwd=tmp_path) if "--capture" not in args \
        else _synth("play", "warm-pad", *args, cwd=tmp_path)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert sentence in err and "Traceback" not in err


def test_status_line_refreshes_in_a_terminal(jack):
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "synth", "play", "warm-pad", "--duration", "2"],
                               stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert process.wait(timeout=30) == 0
    updates = screen.decode().count("\rDSP ")
    assert updates >= 4, screen  # about four a second for two seconds
    assert "voices" in screen.decode() and "underflows" in screen.decode()


def test_devices_lists_the_jack_device(jack):
    process = _synth("devices")
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "JACK Audio Connection Kit" in out and "out  2" in out


def test_play_records_what_it_played(jack, tmp_path):
    score = tmp_path / "score.jsonl"
    score.write_text('{"time": 0.0, "address": "/note/on", "args": [60, 100]}\n'
                     '{"time": 0.1, "address": "/param/osc/cutoff_hz", "args": [800.0]}\n'
                     '{"time": 0.2, "address": "/note/off", "args": [60]}\n')
    session = tmp_path / "session.jsonl"
    process = _synth("play", "warm-pad", str(score), "--record", str(session), "--tail", "0.3")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"recorded 3 events to {session}" in err and "lost" not in err
    recorded = [line for line in session.read_text().splitlines() if line]
    assert [json.loads(line)["address"] for line in recorded] == ["/note/on", "/param/osc/cutoff_hz", "/note/off"]
    assert [json.loads(line)["time"] for line in recorded] == [0.0, 0.1, 0.2]
