"""Benchmark of the live transcriber under several calls at once, without the app or a browser.

Run from the repository root (models installed with ``copilot models install``):

    .venv/bin/python eval/bench_live_calls.py [--calls 4] [--workers 2 --threads 1]

Each call is one of the stereo recordings in ../shared/calls (good_call, bad_call, alternating), replayed at
real time through the same shared transcriber the app gives its live calls (``Services.live_transcriber``:
``AsrConfig.for_live``), one thread per call as in the app. For every committed segment the commit lag is the
wall time from the moment its audio end was played to its commit. ``--workers`` and ``--threads`` override
``[asr] live_workers`` and ``live_threads`` to compare decoder layouts. This isolates the transcriber:
``eval/bench_load.py`` measures the same calls through the app and real pages.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from copilot.config import Config, load_config  # noqa: E402
from copilot.evaluation.metrics import percentile  # noqa: E402
from copilot.session.engines import Services  # noqa: E402
from copilot.transcription.playback import ReplayOptions, replay  # noqa: E402
from copilot.types import Committed  # noqa: E402

CALLS = ("good_call", "bad_call")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def replay_call(services: Services, config: Config, name: str, speed: float, lags: list[float]) -> None:
    path = SHARED / "calls" / f"{name}.wav"
    started = time.monotonic()
    live = config.asr.for_live()
    for timed in replay(path, live, services.live_transcriber, ReplayOptions(speed=speed)):
        if isinstance(timed.event, Committed):
            lags.append(time.monotonic() - started - timed.event.segment.end / speed)


def run(calls: int, speed: float, workers: int | None, threads: int | None) -> int:
    config = load_config()
    asr = config.asr
    asr = dataclasses.replace(
        asr,
        live_workers=workers if workers is not None else asr.live_workers,
        live_threads=threads if threads is not None else asr.live_threads,
    )
    config = dataclasses.replace(config, asr=asr)
    services = Services(config)
    clock = time.monotonic()
    services.live_transcriber  # noqa: B018 - loaded before the clock starts
    print(f"live transcriber loaded in {time.monotonic() - clock:.1f} s")
    live = asr.for_live()
    print(
        f"{calls} call(s) at {speed:g}x; {live.backend}, {live.workers} worker(s) x {live.threads} thread(s), "
        f"beam {live.beam_size}; load average before {os.getloadavg()[0]:.2f}"
    )
    lags: list[list[float]] = [[] for _ in range(calls)]
    threads_ = [
        threading.Thread(target=replay_call, args=(services, config, CALLS[i % 2], speed, lags[i]))
        for i in range(calls)
    ]
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    for thread in threads_:
        thread.start()
    for thread in threads_:
        thread.join()
    wall = time.monotonic() - wall_before
    cores = (cpu_seconds() - cpu_before) / wall
    for i, call_lags in enumerate(lags):
        if call_lags:
            print(
                f"  call {i + 1} ({CALLS[i % 2]}): {len(call_lags)} commits, lag p50 {percentile(call_lags, 0.5):.2f} s"
                f" max {max(call_lags):.2f} s"
            )
    every = [lag for call_lags in lags for lag in call_lags]
    if not every:
        print("no segment was committed")
        return 1
    print(
        f"commit lag over {len(every)} commits: p50 {percentile(every, 0.5):.2f} s, p90 {percentile(every, 0.9):.2f} s,"
        f" max {max(every):.2f} s"
    )
    print(
        f"wall {wall:.1f} s, {cores:.2f} cores of {os.cpu_count()}; load average after {os.getloadavg()[0]:.2f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="calls replayed at once (default 4)")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (default 1)")
    parser.add_argument("--workers", type=int, help="decodes at once (default: [asr] live_workers)")
    parser.add_argument("--threads", type=int, help="threads per decode (default: [asr] live_threads)")
    args = parser.parse_args()
    if args.calls < 1 or args.speed <= 0 or min(args.workers or 1, args.threads or 1) < 1:
        parser.error("--calls, --workers and --threads must be at least 1, --speed positive")
    return run(args.calls, args.speed, args.workers, args.threads)


if __name__ == "__main__":
    sys.exit(main())
