"""The README's two commands: CI runs the test one; the demo one works in a fresh clone."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_test_one():
    demo, test = readme_commands()
    assert (demo, test) == (".ci/bootstrap demo", ".ci/bootstrap test")
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [f"exec {test}"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_demo_command_works_in_a_fresh_clone(tmp_path):
    """Clones the committed tree and runs the README's demo command there. The virtualenv of this
    run is reused (SYNTH_VENV), so this checks the clone's files, not the package install; the
    install itself is what `.ci/run` does on every CI run."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    stamp = hashlib.sha1((clone / "pyproject.toml").read_bytes()).hexdigest()[:12]
    if not (Path(sys.prefix) / f".installed-{stamp}").exists():
        # the bootstrap would reinstall this very virtualenv from the temporary clone
        pytest.skip("this virtualenv was installed from another pyproject.toml; run `.ci/bootstrap test`")
    env = dict(os.environ, SYNTH_VENV=str(Path(sys.prefix)), PYTHONPATH=str(clone))
    demo = readme_commands()[0].split()
    result = subprocess.run(demo, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    wav = clone / "renders" / "demo.wav"
    assert f"demo file: {wav}" in result.stdout
    assert wav.stat().st_size > 100_000
    assert ("Played on" in result.stdout) or ("nothing was played" in result.stdout)
