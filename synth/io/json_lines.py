"""JSON Lines files (scores, recorded sessions, batch job files): one JSON value a line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from synth.errors import SynthError


def read_json_lines(path: str | Path) -> Iterator[tuple[int, str, object]]:
    """(line number from 1, "path:line" for messages, the line's JSON value) of every line that is
    not blank. SynthError naming the file when it cannot be read, or the line that is not JSON."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SynthError(f"{path}: cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise SynthError(f"{where}: not valid JSON: {error.msg}") from None
        yield number, where, value
