"""`synth batch JOBS.jsonl -o OUTDIR`: many renders at once on a Ray cluster, each one byte for byte
what `synth render` writes for the same preset, score, rate and format.

The job file is JSON Lines, one render a line:
    {"preset": NAME_OR_PATH, "score": PATH, "out": PATH, "sample_rate": 48000, "format": "float32",
     "tail": 2.0, "params": {"slot/param": value}}
preset, score and out are required. A preset given by name is a shipped one; a path (preset
file or score) is relative to the job file's folder and may not leave it, and `out` is relative
to OUTDIR and may not leave it: nothing a job file says reads or writes anywhere else. params set
parameters as a preset would (native units, choice names), for that job only.

Ray: by default an embedded local cluster with `workers` actors (one per CPU), nothing to start by
hand; `address` joins a running cluster instead (its nodes need synth-host installed and the two
folders at the same paths). Each worker keeps the engines it built, one per (preset file, rate),
and plays each again for the next job of that preset (parameters set back, prepared afresh), so
models load and kernels compile once per worker.

OUTDIR/manifest.jsonl gets a line per finished job, appended as it finishes: line, out, status
(done or failed), inputs_sha256 (the job, the preset file and its data files, the score, the
synth-host version), sha256 of the output, duration_s, wall_s, peak_dbfs, loudness_lufs,
true_peak_dbtp, or error. A failing job fails alone. A re-run skips every job whose inputs hash
matches a done line whose output is still there unchanged. Ctrl-C or SIGTERM stops the workers
and removes any half-written output.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from synth import __version__
from synth.engine import dbfs
from synth.cluster import ray_cluster
from synth.errors import SynthError
from synth.io.audiofile import FORMATS, check_format
from synth.io.json_lines import read_json_lines
from synth.limits import MAX_SAMPLE_RATE, MAX_TAIL_S, MIN_SAMPLE_RATE

MANIFEST = "manifest.jsonl"
JOB_KEYS = ("preset", "score", "out", "sample_rate", "format", "tail", "params")
REQUIRED_KEYS = ("preset", "score", "out")
CHANNELS = 2


@dataclass(frozen=True)
class Job:
    """One render of a job file: line (1-based), the preset (a shipped name, or a file inside the
    job file's folder), the score file, out (relative to OUTDIR), sample_rate (Hz), fmt, tail_s, params."""

    line: int
    preset: str
    score: Path
    out: str
    sample_rate: int = 48000
    fmt: str = "float32"
    tail_s: float = 2.0
    params: dict = field(default_factory=dict)

    def description(self) -> dict:
        """The job as the manifest and the inputs hash read it."""
        return {"preset": self.preset, "score": str(self.score), "out": self.out, "sample_rate": self.sample_rate,
                "format": self.fmt, "tail": self.tail_s, "params": self.params}


def _inside(path: Path, folder: Path, where: str, key: str) -> Path:
    """`path` (relative to `folder`) resolved; SynthError unless it stays inside `folder`."""
    if path.is_absolute():
        raise SynthError(f"{where}: key '{key}'={str(path)!r} must be a path relative to {folder}")
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise SynthError(f"{where}: key '{key}'={str(path)!r} leaves {folder}; it must stay inside it")
    return resolved


def _job(entry, where: str, line: int, inputs: Path, out_dir: Path) -> Job:
    if not isinstance(entry, dict):
        raise SynthError(f"{where}: expected a JSON object with {', '.join(REQUIRED_KEYS)}")
    for key in entry:
        if key not in JOB_KEYS:
            raise SynthError(f"{where}: unknown key {key!r} (a job has: {', '.join(JOB_KEYS)})")
    for key in REQUIRED_KEYS:
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise SynthError(f"{where}: key '{key}' must be given, as a string")
    preset = entry["preset"]
    if "/" in preset or preset.endswith(".toml"):
        preset = str(_inside(Path(preset), inputs, where, "preset"))
    score = _inside(Path(entry["score"]), inputs, where, "score")
    _inside(Path(entry["out"]), out_dir, where, "out")
    rate = entry.get("sample_rate", 48000)
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise SynthError(f"{where}: key 'sample_rate'={rate!r} must be an integer in "
                         f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    fmt = entry.get("format", "float32")
    if fmt not in FORMATS:
        raise SynthError(f"{where}: key 'format'={fmt!r} must be one of {', '.join(FORMATS)}")
    try:
        check_format(Path(entry["out"]), fmt)
    except SynthError as error:
        raise SynthError(f"{where}: key 'out': {error}") from None
    tail = entry.get("tail", 2.0)
    if isinstance(tail, bool) or not isinstance(tail, (int, float)) or not 0.0 <= tail <= MAX_TAIL_S:
        raise SynthError(f"{where}: key 'tail'={tail!r} must be a number in 0..{MAX_TAIL_S:g} s")
    params = entry.get("params", {})
    if not isinstance(params, dict) or not all(
            isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in params.values()):
        raise SynthError(f"{where}: key 'params' must be an object of \"slot/param\": number or choice name")
    return Job(line, preset, score, entry["out"], rate, fmt, float(tail), dict(params))


def read_jobs(jobs_path: Path, out_dir: Path, inputs: Path | None = None) -> list[Job]:
    """The jobs of a job file (see the module docstring); inputs: the folder its paths are
    relative to (default: the job file's). SynthError naming the file, line and key of the first
    problem; two jobs writing one output is one too."""
    jobs_path = Path(jobs_path)
    inputs = Path(inputs) if inputs is not None else jobs_path.parent
    jobs, outs = [], {}
    for number, where, entry in read_json_lines(jobs_path):
        job = _job(entry, where, number, inputs, out_dir)
        target = str((out_dir / job.out).resolve())
        if target in outs:
            raise SynthError(f"{where}: key 'out'={job.out!r} is also written by line {outs[target]}")
        outs[target] = number
        jobs.append(job)
    if not jobs:
        raise SynthError(f"{jobs_path}: the job file holds no jobs")
    return jobs


# ------------------------------------------------------------------------------- hashes and manifest

def _file_sha256(path: Path, digest=None):
    digest = digest or hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest


def inputs_sha256(job: Job, file_hashes: dict[Path, str]) -> str:
    """sha256 of everything a job's output depends on: the job, the synth-host version, the preset
    file and the data files it names, the score (a missing file counts as missing, so the job
    runs and fails with its own sentence). file_hashes: path -> sha256 of files hashed before in
    this batch (a preset's models are read once, not once a job)."""
    from synth.presets import load_preset, resolve_preset_path

    digest = hashlib.sha256(json.dumps([__version__, job.description()], sort_keys=True).encode())
    try:
        preset_path = resolve_preset_path(job.preset)
        preset = load_preset(preset_path)
        files = [preset_path] + [preset.folder / relative for entry in preset.chain for relative in entry.files.values()]
    except SynthError as error:
        digest.update(str(error).encode())
        files = []
    for path in files + [job.score]:
        path = Path(path)
        digest.update(str(path).encode())
        if path.is_file():
            if path not in file_hashes:
                file_hashes[path] = _file_sha256(path).hexdigest()
            digest.update(file_hashes[path].encode())
    return digest.hexdigest()


def finished_jobs(manifest: Path) -> dict[str, dict]:
    """out -> the last done line for it in a manifest (lines that do not parse are passed over: a
    run stopped mid-line leaves one)."""
    done = {}
    if not manifest.is_file():
        return done
    for raw in manifest.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("out"), str):
            if entry.get("status") == "done":
                done[entry["out"]] = entry
            else:
                done.pop(entry["out"], None)
    return done


def _still_done(job: Job, inputs_hash: str, done: dict[str, dict], out_dir: Path) -> bool:
    entry = done.get(job.out)
    output = out_dir / job.out
    return (entry is not None and entry.get("inputs_sha256") == inputs_hash and output.is_file()
            and _file_sha256(output).hexdigest() == entry.get("sha256"))


# ------------------------------------------------------------------------------- one job

def render_job(job: Job, out_dir: Path, engines: dict) -> dict:
    """Render one job into out_dir (atomically, as synth render does) and return its manifest
    line; a failure is that line's error, never an exception. engines: (preset file, rate) ->
    an engine kept from an earlier job of this worker, reused and added to."""
    from synth.presets import load_preset, resolve_preset_path
    from synth.render import DEFAULT_BLOCK, render_file

    started = time.perf_counter()
    line = {"line": job.line, "out": job.out}
    try:
        preset_path = resolve_preset_path(job.preset)
        preset = load_preset(preset_path).with_params(job.params, where=f"line {job.line}: params")
        key = (str(preset_path), job.sample_rate)
        if key not in engines:
            engines[key] = preset.build_engine(job.sample_rate, DEFAULT_BLOCK, CHANNELS)
        output = out_dir / job.out
        summary = render_file(preset, job.score, output, sample_rate=job.sample_rate, fmt=job.fmt,
                              tail_s=job.tail_s, progress=False, engine=engines[key])
    except SynthError as error:
        return {**line, "status": "failed", "error": str(error), "wall_s": time.perf_counter() - started}
    except Exception as error:  # a fault of ours in one job: reported in its line, the batch goes on
        return {**line, "status": "failed", "error": f"{type(error).__name__}: {error}",
                "wall_s": time.perf_counter() - started}
    return {**line, "status": "done", "sha256": _file_sha256(output).hexdigest(),
            "duration_s": summary.duration_s, "wall_s": time.perf_counter() - started,
            "peak_dbfs": _number(dbfs(summary.peak)), "loudness_lufs": _number(summary.loudness_lufs),
            "true_peak_dbtp": _number(summary.true_peak_dbtp)}


def _number(value: float) -> float | None:
    """A figure for JSON: None for -inf (silence)."""
    return round(value, 3) if math.isfinite(value) else None


class RenderWorker:
    """What one Ray actor holds: the output folder and the engines it built."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)
        self.engines: dict = {}

    def render(self, job: Job, inputs_hash: str) -> dict:
        return {**render_job(job, self.out_dir, self.engines), "inputs_sha256": inputs_hash}


# ------------------------------------------------------------------------------- the batch

@dataclass
class BatchResult:
    """Counts of one batch run, and where its manifest is."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    manifest: Path | None = None
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        ran = self.done + self.failed
        rate = f", {ran / self.wall_s:.2f} jobs/s" if ran and self.wall_s > 0 else ""
        return ([f"batch: {self.done} done, {self.failed} failed, {self.skipped} skipped (finished before, "
                 f"inputs unchanged) in {self.wall_s:.1f} s{rate}; manifest {self.manifest}"]
                + [f"  failed: {failure}" for failure in self.failures])


def _remove_partials(out_dir: Path, jobs: list[Job]) -> None:
    """Remove the temporary files (synth.io.atomic) that stopped workers left beside their outputs."""
    for job in jobs:
        target = out_dir / job.out
        for partial in target.parent.glob(f".{target.name}.*.partial"):
            partial.unlink(missing_ok=True)


def run_batch(jobs_path, out_dir, workers: int | None = None, address: str | None = None,
              inputs=None, progress: bool = True) -> BatchResult:
    """Run a job file on Ray into out_dir (made if missing; its parent must exist) and return the
    counts; the manifest is out_dir/manifest.jsonl. SynthError for a job file that does not parse."""
    import ray
    from ray.util import ActorPool
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise SynthError(f"-o {out_dir}: the folder {str(out_dir.parent)!r} does not exist (make it first)")
    jobs = read_jobs(Path(jobs_path), out_dir, inputs)
    out_dir.mkdir(exist_ok=True)
    manifest = out_dir / MANIFEST
    started = time.perf_counter()
    result = BatchResult(manifest=manifest)
    done = finished_jobs(manifest)
    todo, file_hashes = [], {}
    for job in jobs:
        inputs_hash = inputs_sha256(job, file_hashes)
        if _still_done(job, inputs_hash, done, out_dir):
            result.skipped += 1
        else:
            (out_dir / job.out).parent.mkdir(parents=True, exist_ok=True)
            todo.append((job, inputs_hash))
    if todo:
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        try:
            with ray_cluster(workers, address):
                actor = ray.remote(num_cpus=1)(RenderWorker)
                pool = ActorPool([actor.remote(str(out_dir.resolve())) for _ in range(workers)])
                results = pool.map_unordered(lambda worker, item: worker.render.remote(*item), todo)
                with open(manifest, "a", encoding="utf-8") as log, \
                        tqdm(total=len(todo), unit="job", desc="batch", disable=not progress) as bar:
                    for line in results:
                        log.write(json.dumps(line, sort_keys=True) + "\n")
                        log.flush()
                        if line["status"] == "done":
                            result.done += 1
                        else:
                            result.failed += 1
                            result.failures.append(f"line {line['line']} ({line['out']}): {line['error']}")
                        bar.update(1)
        except BaseException:
            _remove_partials(out_dir, [job for job, _ in todo])  # the workers have stopped: what they left
            raise
    result.wall_s = time.perf_counter() - started
    return result

