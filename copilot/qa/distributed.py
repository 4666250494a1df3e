"""The Ray engine of a batch: the same review, on a local Ray cluster or an existing one.

Each worker is a Ray actor that receives the (picklable) ``review_one`` once and loads its models once
(``warm``), then reviews call after call; the driver keeps the database and the report files, so every
write still goes through one transaction per call on one machine. Paths must be readable by the workers:
on a multi-machine cluster put the calls on shared storage.

Install with ``pip install '.[ray]'`` (the product pins ``ray==2.60.0``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from copilot.errors import ConfigError, CopilotError, install_hint
from copilot.qa.jobs import Attempt, Job, ReviewOne, attempt, warm

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local cluster's shared memory; reviews are small
CPUS_PER_WORKER = 1  # one review at a time per actor; the models inside may use more threads


class RayError(CopilotError):
    """Ray is missing or the cluster cannot be reached."""

    exit_code = 7


class ReviewWorker:
    """A Ray actor body: models loaded once in ``__init__``, then one call per ``review``."""

    def __init__(self, review_one: ReviewOne) -> None:
        self.review_one = review_one
        warm(review_one)

    def review(self, job: Job) -> tuple[Job, Attempt]:
        return job, attempt(self.review_one, Path(job.path))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayError(f"--engine ray needs Ray; {install_hint('ray', 'ray')}") from e
    return ray


def _init(ray: Any, address: str, workers: int) -> bool:
    """Connect to ``address`` or start a local cluster; returns whether we started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network here; never phone home
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,  # worker errors come back as results; keep the progress bar readable
        "logging_level": logging.WARNING,
    }
    if address:
        # Ship this package to remote workers; their Python still needs the dependencies installed.
        kwargs["runtime_env"] = {
            "py_modules": [str(Path(__file__).resolve().parents[1])]
        }  # the copilot package
    else:
        kwargs["num_cpus"] = workers or os.cpu_count() or 1
        kwargs["object_store_memory"] = OBJECT_STORE_BYTES
    try:
        ray.init(address=address or None, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayError(f"cannot start or reach the Ray cluster {address or '(local)'}: {e}") from e
    return True


def ray_engine(
    jobs: Sequence[Job], review_one: ReviewOne, *, address: str = "", workers: int = 0, stop: threading.Event
) -> Iterator[tuple[Job, Attempt]]:
    """Yield (job, attempt) as workers finish them (any order). Setting ``stop`` stops yielding; calls
    under way on workers are dropped (nothing of them was written)."""
    if workers < 0:
        raise ConfigError("workers must be 0 (all CPUs) or more")
    if not jobs:
        return
    ray = _import_ray()
    from ray.util import ActorPool

    started = _init(ray, address, workers)
    actors: list[Any] = []
    try:
        available = int(ray.cluster_resources().get("CPU", 1))
        count = min(workers or available, len(jobs))
        actor_class = ray.remote(num_cpus=CPUS_PER_WORKER)(ReviewWorker)
        # The reviewer goes into the object store once and every actor reads it from there.
        shared = ray.put(review_one)
        actors = [actor_class.remote(shared) for _ in range(count)]
        pool = ActorPool(actors)
        for job in jobs:  # the pool dispatches as actors become free: at most `count` in flight
            pool.submit(lambda actor, item: actor.review.remote(item), job)
        while pool.has_next() and not stop.is_set():
            try:
                job, result = pool.get_next_unordered()
            except ray.exceptions.RayActorError as e:
                raise RayError(f"a Ray worker died: {e}") from e
            yield job, result
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
