"""The LV2 worker extension: a plugin hands slow jobs (loading files, rebuilding tables) to the
host, which runs them off the audio thread and hands the results back before a later run.

Offline (`synth render`) each job runs at once, on the thread that scheduled it, and its response
is delivered before the next run: renders repeat. In the audio plane (`threaded = True`, set by
synth.plane.audio_process) jobs run on one worker thread per instance: the audio thread only
queues the request (a copy) and writes a byte to a pipe; the thread waits in a system call, runs
the plugin's `work` in C with the interpreter lock free, and queues the response. The thread runs
at normal priority, and its Python is a few lines a job: it holds the interpreter lock only while it
takes a request and queues a response.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import deque

from synth.lv2.lilv import LV2_WORKER_INTERFACE, RESPOND_FUNCTION, SCHEDULE_FUNCTION, WorkerInterface, WorkerSchedule

threaded = False  # the audio plane sets this: jobs then run on a thread of their own
WORKER_SUCCESS, WORKER_ERR_NO_SPACE = 0, 2
MAX_PENDING = 64  # queued requests (or responses) per instance


class Worker:
    """The host side of one instance's worker: its `schedule` feature and the response queue."""

    def __init__(self):
        self._requests: deque[bytes] = deque()
        self._responses: deque[bytes] = deque()
        self._schedule = SCHEDULE_FUNCTION(self._on_schedule)
        self._respond = RESPOND_FUNCTION(self._on_respond)
        self.feature_data = WorkerSchedule(None, self._schedule)
        self._interface: WorkerInterface | None = None
        self._handle = None
        self._wake_read = self._wake_write = -1
        self._thread: threading.Thread | None = None
        self._busy = False  # the thread is inside the plugin's work()

    def attach(self, handle, extension_data) -> None:
        """Bind to the instantiated plugin (its handle and descriptor's extension_data)."""
        pointer = extension_data(LV2_WORKER_INTERFACE.encode()) if extension_data else None
        self._handle = handle
        self._interface = ctypes.cast(pointer, ctypes.POINTER(WorkerInterface)).contents if pointer else None
        if self._interface is not None:  # the function pointers, read once (each read makes an object)
            self._work_call = self._interface.work
            self._response_call = self._interface.work_response
            self._end_run_call = self._interface.end_run if self._interface.end_run else None
        if threaded and self._interface is not None:
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_write, False)
            self._thread = threading.Thread(target=self._serve, name="lv2-worker", daemon=True)
            self._thread.start()

    @property
    def attached(self) -> bool:
        """Whether the plugin has a worker interface (else schedule requests are refused)."""
        return self._interface is not None

    def _on_schedule(self, _handle, size: int, data) -> int:
        if self._interface is None or len(self._requests) >= MAX_PENDING:
            return WORKER_ERR_NO_SPACE
        request = ctypes.string_at(data, size)
        if self._thread is None:
            self._work(request)
        else:
            self._requests.append(request)
            try:
                os.write(self._wake_write, b"w")
            except BlockingIOError:  # the pipe already holds wake-ups the thread has not read
                pass
        return WORKER_SUCCESS

    def _work(self, request: bytes) -> None:
        self._work_call(self._handle, self._respond, None, len(request), request)

    def _on_respond(self, _handle, size: int, data) -> int:
        if len(self._responses) >= MAX_PENDING:
            return WORKER_ERR_NO_SPACE
        self._responses.append(ctypes.string_at(data, size))
        return WORKER_SUCCESS

    def _serve(self) -> None:
        while os.read(self._wake_read, 64):  # b"" once close() has closed the other end
            while self._requests:
                self._busy = True
                self._work(self._requests.popleft())
                self._busy = False

    def drain(self) -> None:
        """Wait (not on the audio thread) until no job is queued or running, then drop the
        responses: the instance is about to be restarted, and they belong to its old run."""
        while self._thread is not None and (self._requests or self._busy):
            time.sleep(0.001)
        self._responses.clear()

    def deliver(self) -> None:
        """Before a run (audio thread): hand the plugin the responses that came back."""
        while self._responses:
            response = self._responses.popleft()
            self._response_call(self._handle, len(response), response)

    def end_run(self) -> None:
        """After a run (audio thread)."""
        if self._end_run_call is not None:
            self._end_run_call(self._handle)

    def close(self) -> None:
        """Stop the thread (not on the audio thread)."""
        if self._thread is not None:
            os.close(self._wake_write)  # the thread reads b"" after its last job, and ends
            self._thread.join()  # no timeout: the instance must not be freed under a running job
            os.close(self._wake_read)
            self._thread = None
