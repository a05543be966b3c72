"""Recording a live session: every event the engine applied, with the sample it took effect on,
and every preset load, written as a JSON Lines score (synth.scores) that `synth render` plays back
sample for sample."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from synth.control.addresses import event_to_message

FLUSH_INTERVAL_S = 0.2


class SessionRecorder:
    """Drains `host.take_applied()` (a Host made with recording=True) on its own thread into
    `path`, appending as it goes, so a crash keeps what was played. Times are written as
    sample / sample_rate seconds, which the score reader turns back into the same sample.
    Re-render with the same block size as the session."""

    def __init__(self, host, path: str | Path):
        self.path = Path(path)
        self.host = host
        self.sample_rate = host.sample_rate
        self._file = open(self.path, "w", encoding="utf-8")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self.written = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self._drain()

    def _drain(self) -> None:
        for sample, applied in self.host.take_applied():
            address, args = ("/preset/load", [applied]) if isinstance(applied, str) else event_to_message(applied)
            self._file.write(json.dumps({"time": sample / self.sample_rate, "address": address, "args": args}) + "\n")
            self.written += 1
        self._file.flush()

    def stop(self) -> None:
        """Stop and write what is left (call it after the host stopped, to have every event)."""
        self._stop.set()
        self._thread.join()
        self._drain()
        self._file.close()
