"""Ray for the length of a with-block: an embedded local cluster of `workers` CPUs, or a running
cluster joined at `address` (HOST:PORT). Shut down on the way out, however the block ends, so
that Ctrl-C leaves no worker process behind. Used by `synth batch` and the data-set builder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def ray_cluster(workers: int, address: str | None = None) -> Iterator[None]:
    import ray

    ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()
