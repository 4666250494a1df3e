"""One review attempt, engine-neutral: what the local loop and the Ray actors both run.

``batch`` plans the jobs and records the outcomes; an engine (``local_engine`` here, ``distributed.ray_engine``)
turns each :class:`Job` into an :class:`Attempt`. Both engines import this module, never each other.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.qa.metadata import CallMetadata
from copilot.qa.store import ReviewLike

ReviewOne = Callable[[Path], ReviewLike]


@dataclass(frozen=True)
class Job:
    """One input to review, planned by the driver."""

    path: str
    content_hash: str
    meta: CallMetadata


@dataclass(frozen=True)
class Attempt:
    """What reviewing one job gave: a review, or an error message (one line) with its traceback."""

    result: Any | None
    error: str = ""
    detail: str = ""  # traceback of an unexpected (non-CopilotError) exception
    seconds: float = 0.0
    bad_input: bool = False  # a CopilotError: the file is at fault (retrying will not help), not the machine


def attempt(review_one: ReviewOne, path: Path) -> Attempt:
    """Review one file, turning any exception into a one-line reason (the batch must go on)."""
    started = time.perf_counter()
    try:
        result = review_one(path)
    except CopilotError as e:
        return Attempt(None, f"{type(e).__name__}: {e}", "", time.perf_counter() - started, bad_input=True)
    except Exception as e:  # a bug or an unexpected library error: keep its traceback for the log
        return Attempt(
            None, f"{type(e).__name__}: {e}", traceback.format_exc(), time.perf_counter() - started
        )
    return Attempt(result, "", "", time.perf_counter() - started)


def warm(review_one: ReviewOne) -> None:
    """Load models before the first call when the reviewer can (see :class:`PipelineReviewer`)."""
    load = getattr(review_one, "warm", None)
    if callable(load):
        load()


def local_engine(
    jobs: Sequence[Job], review_one: ReviewOne, stop: threading.Event
) -> Iterator[tuple[Job, Attempt]]:
    warm(review_one)
    for job in jobs:
        if stop.is_set():
            return
        yield job, attempt(review_one, Path(job.path))
