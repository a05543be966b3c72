"""`synth batch`: job files, renders byte for byte `synth render`'s (engines reused), the manifest,
failures and re-runs, refusals, and Ctrl-C, on a real local Ray cluster."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth.batch import MANIFEST, read_jobs, render_job, run_batch
from synth.cli import main
from synth.errors import SynthError

SCORES = Path(__file__).resolve().parent.parent / "presets" / "scores"


def write_jobs(folder: Path, jobs: list[dict]) -> Path:
    path = folder / "jobs.jsonl"
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "demo.jsonl").write_text((SCORES / "demo.jsonl").read_text())
    (folder / "short.jsonl").write_text('{"time": 0, "address": "/note/on", "args": [60, 100]}\n'
                                        '{"time": 0.3, "address": "/note/off", "args": [60]}\n')
    return folder


def synth_render(preset, score, out, *extra):
    assert main(["render", preset, str(score), "-o", str(out), "--quiet", *extra]) == 0
    return out.read_bytes()


@pytest.mark.parametrize("presets", [("warm-pad", "pluck-hall"), ("decoder-flute",), ("piano-room",)])
def test_a_reused_engine_renders_byte_for_byte_what_synth_render_writes(presets, inputs, tmp_path, capsys):
    """One worker's engine plays a job with changed parameters, then the plain job: the plain
    job's file is synth render's, byte for byte (parameters set back, state reset)."""
    out = tmp_path / "out"
    out.mkdir()
    engines = {}
    for preset in presets:
        jobs = read_jobs(write_jobs(inputs, [
            {"preset": preset, "score": "short.jsonl", "out": f"{preset}-other.wav", "tail": 0.5,
             "params": {"out/gain_db": -1.5}},
            {"preset": preset, "score": "short.jsonl", "out": f"{preset}.flac", "format": "flac", "sample_rate": 48000,
             "tail": 0.5}]), out)
        for job in jobs:
            assert render_job(job, out, engines)["status"] == "done"
        expected = synth_render(preset, inputs / "short.jsonl", tmp_path / f"{preset}.flac", "--format", "flac",
                                "--tail", "0.5")
        assert (out / f"{preset}.flac").read_bytes() == expected
        assert (out / f"{preset}-other.wav").read_bytes() != synth_render(preset, inputs / "short.jsonl",
                                                                           tmp_path / "x.wav", "--tail", "0.5")
    assert len(engines) == len(presets)  # one engine per preset, kept


def test_a_batch_on_ray_writes_every_output_and_a_manifest_and_a_rerun_skips_what_is_done(inputs, tmp_path):
    jobs = write_jobs(inputs, [
        {"preset": "warm-pad", "score": "demo.jsonl", "out": "pads/warm.wav"},
        {"preset": "pluck-lead", "score": "short.jsonl", "out": "pluck.wav", "sample_rate": 44100},
        {"preset": "warm-pad", "score": "missing.jsonl", "out": "missing.wav"},
        {"preset": "warm-pad", "score": "short.jsonl", "out": "bad-param.wav", "params": {"osc/nothing": 1}},
    ])
    out = tmp_path / "out"
    first = run_batch(jobs, out, workers=2, progress=False)
    assert (first.done, first.failed, first.skipped) == (2, 2, 0)
    assert (out / "pads" / "warm.wav").read_bytes() == synth_render("warm-pad", inputs / "demo.jsonl",
                                                                      tmp_path / "ref.wav")
    lines = {line["out"]: line for line in map(json.loads, (out / MANIFEST).read_text().splitlines())}
    assert lines["pads/warm.wav"]["status"] == "done" and lines["pads/warm.wav"]["duration_s"] == pytest.approx(9.9)
    assert len(lines["pads/warm.wav"]["sha256"]) == 64 and lines["pads/warm.wav"]["loudness_lufs"] < -10
    assert "missing.jsonl: no such score file" in lines["missing.wav"]["error"]
    assert "has no parameter 'nothing'" in lines["bad-param.wav"]["error"]
    assert not (out / "missing.wav").exists()
    (inputs / "short.jsonl").write_text('{"time": 0, "address": "/note/on", "args": [64, 100]}\n')
    again = run_batch(jobs, out, workers=2, progress=False)
    assert (again.done, again.failed, again.skipped) == (1, 2, 1)  # the changed score renders again
    (out / "pads" / "warm.wav").write_bytes(b"damaged")
    third = run_batch(jobs, out, workers=1, progress=False)
    assert (third.done, third.skipped) == (1, 1) and (out / "pads" / "warm.wav").read_bytes()[:4] == b"RIFF"


@pytest.mark.parametrize("job, message", [
    ({"preset": "warm-pad", "score": "demo.jsonl", "out": "../escape.wav"}, r"key 'out'='\.\./escape\.wav' leaves"),
    ({"preset": "warm-pad", "score": "/etc/passwd", "out": "x.wav"}, r"key 'score'='/etc/passwd' must be a path relative"),
    ({"preset": "../../presets/warm-pad.toml", "score": "demo.jsonl", "out": "x.wav"}, r"key 'preset'=.* leaves"),
    ({"preset": "warm-pad", "score": "demo.jsonl", "out": "x.wav", "sample_rate": 5}, r"'sample_rate'=5 must be an integer in 8000\.\.192000 Hz"),
    ({"preset": "warm-pad", "score": "demo.jsonl", "out": "x.wav", "format": "flac"}, r"key 'out': x\.wav: the flac format writes files ending in \.flac"),
    ({"preset": "warm-pad", "score": "demo.jsonl", "out": "x.wav", "tail": -1}, r"'tail'=-1 must be a number in 0\.\.600 s"),
    ({"preset": "warm-pad", "score": "demo.jsonl"}, r"key 'out' must be given"),
    ({"preset": "warm-pad", "score": "demo.jsonl", "out": "x.wav", "volume": 3}, r"unknown key 'volume'"),
])
def test_a_bad_job_file_is_one_sentence_exit_2_and_nothing_written(job, message, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(write_jobs(inputs, [job])), "-o", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert __import__("re").search(message, error), error
    assert "jobs.jsonl:1: " in error and not out.exists()


def test_two_jobs_writing_one_file_and_a_missing_output_parent_are_refused(inputs, tmp_path):
    job = {"preset": "warm-pad", "score": "demo.jsonl", "out": "x.wav"}
    with pytest.raises(SynthError, match=r"jobs\.jsonl:2: key 'out'='x\.wav' is also written by line 1"):
        run_batch(write_jobs(inputs, [job, job]), tmp_path / "out", progress=False)
    with pytest.raises(SynthError, match=r"does not exist \(make it first\)"):
        run_batch(write_jobs(inputs, [job]), tmp_path / "no" / "out", progress=False)


def test_address_joins_a_running_cluster(inputs, tmp_path):
    """A cluster started by `ray start --head` (its own processes, 1 CPU) takes the batch through
    --address; it is stopped by `ray stop` afterwards."""
    import socket

    ray_cli = Path(sys.executable).parent / "ray"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = subprocess.run([str(ray_cli), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                              "--num-cpus", "1", "--include-dashboard", "false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        jobs = write_jobs(inputs, [{"preset": "pluck-lead", "score": "short.jsonl", "out": "pluck.wav"}])
        # the cluster asks for the token `ray start` wrote (~/.ray/auth_token), as Ray's token auth does
        joined = subprocess.run([sys.executable, "-m", "synth", "batch", str(jobs), "-o", str(tmp_path / "out"),
                                 "--address", f"127.0.0.1:{port}", "--quiet"], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "RAY_AUTH_MODE": "token"})
        assert joined.returncode == 0, joined.stderr
        assert joined.stdout.startswith("batch: 1 done, 0 failed")
        assert (tmp_path / "out" / "pluck.wav").read_bytes() == synth_render("pluck-lead", inputs / "short.jsonl",
                                                                             tmp_path / "ref.wav")
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120)


def test_ctrl_c_stops_the_workers_and_leaves_no_half_written_file(inputs, tmp_path):
    from conftest import as_in_a_terminal

    jobs = write_jobs(inputs, [{"preset": "strings-32", "score": "demo.jsonl", "out": f"long{i}.wav", "tail": 120}
                               for i in range(4)])
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "synth", "batch", str(jobs), "-o", str(out), "--workers", "2",
                                "--quiet"], stderr=subprocess.PIPE, text=True, preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not list(out.glob(".long*.partial")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(out.glob(".long*.partial")), "no render started"
    os.kill(process.pid, signal.SIGINT)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130, error
    time.sleep(1.0)  # a worker that outlived the driver would write on
    assert not list(out.glob(".*.partial")) and not list(out.glob("long*.wav"))
