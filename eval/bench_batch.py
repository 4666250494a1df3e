"""Batch throughput: call-minutes reviewed per wall-clock minute, local engine vs Ray with 1 and 2 workers.

    .venv/bin/python eval/bench_batch.py [--copies 12] [--audio] [--no-reports]

The shared calls (../shared/calls, JSON transcripts by default; ``--audio`` the stereo recordings through
ASR) are copied ``--copies`` times with distinct content so nothing is skipped, and each engine reviews
them into a fresh SQLite database with the real pipeline (``PipelineReviewer``).

Prediction for a cluster: a batch has a parallel part (reviewing, on workers: mean ``w`` seconds per
call) and a serial part on the driver (storing + report: mean ``d`` seconds per call). With ``N`` workers
the steady-state rate is ``min(N / w, 1 / d)`` calls per second (Amdahl: the driver caps it), times the
mean call length for call-minutes. Startup (Ray cluster, loading models once per worker) is a fixed cost
that a long batch amortises; it is printed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from copilot.qa.batch import Engine

REPO = Path(__file__).resolve().parent.parent
SHARED_CALLS = REPO.parent / "shared" / "calls"
CALL_NAMES = ("good_call", "bad_call")
MACHINES = 10  # the cluster to predict for
CORES_PER_MACHINE = 2  # like this one; one worker per core for JSON, fewer for audio (ASR threads)


def make_inputs(folder: Path, copies: int, audio: bool) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        for name in CALL_NAMES:
            if audio:
                # Distinct content hash, same sound: one byte after the data chunk, which decoders ignore.
                target = folder / f"{name}_{i:03d}.wav"
                shutil.copy(SHARED_CALLS / f"{name}.wav", target)
                with target.open("ab") as handle:
                    handle.write(bytes([i % 256]))
            else:
                data = json.loads((SHARED_CALLS / f"{name}.json").read_text(encoding="utf-8"))
                data["name"] = f"{name}_{i:03d}"
                (folder / f"{name}_{i:03d}.json").write_text(
                    json.dumps(data, ensure_ascii=False), encoding="utf-8"
                )
    return [str(folder)]


def bench(
    label: str, inputs: list[str], engine: Engine, workers: int, work: Path, reports: bool
) -> dict[str, float]:
    from copilot.config import load_config
    from copilot.qa.batch import BatchOptions, PipelineReviewer, run

    os.environ["COPILOT_DB"] = f"sqlite:///{work / (label + '.db')}"
    config = load_config()
    options = BatchOptions(
        out_dir=work / label,
        engine=engine,
        workers=workers,
        progress=False,
        reports=reports,
    )
    reviewer = PipelineReviewer(config)
    started = time.perf_counter()
    if engine == "local":
        reviewer.warm()  # the local engine would warm inside the timed loop; count it as startup too
    summary = run(inputs, reviewer, options, config)
    total = time.perf_counter() - started
    done = [o for o in summary.outcomes if o.status == "reviewed"]
    assert summary.failed == 0, [o.reason for o in summary.outcomes if o.status == "failed"]
    minutes = sum(o.duration for o in done) / 60.0
    w = statistics.fmean(o.seconds for o in done)
    d = statistics.fmean(o.write_seconds for o in done)
    # Steady state: the busy time of the slowest resource, workers (parallel) or the driver (serial).
    parallel = max(workers, 1) if engine == "ray" else 1
    steady_per_call = max(w / parallel, d) if engine == "ray" else w + d
    return {
        "calls": len(done),
        "call_minutes": minutes,
        "wall_s": total,
        "startup_s": max(0.0, total - steady_per_call * len(done)),
        "throughput": minutes / (total / 60.0),
        "steady_throughput": (minutes / len(done)) / (steady_per_call / 60.0),
        "review_s_per_call": w,
        "driver_s_per_call": d,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=12, help="copies of each shared call (default 12)")
    parser.add_argument("--audio", action="store_true", help="review the stereo recordings through ASR")
    parser.add_argument("--no-reports", action="store_true", help="store only, no HTML reports")
    parser.add_argument("--engines", default="local,ray1,ray2", help="comma-separated: local, ray1, ray2")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        work = Path(tmp)
        inputs = make_inputs(work / "in", args.copies, args.audio)
        for label in args.engines.split(","):
            engine: Engine = "local" if label == "local" else "ray"
            workers = 0 if label == "local" else int(label.removeprefix("ray"))
            results[label] = bench(label, inputs, engine, workers, work, not args.no_reports)
            r = results[label]
            print(
                f"{label:6s} {r['calls']:.0f} calls, {r['call_minutes']:.1f} call-min in {r['wall_s']:.1f} s "
                f"(startup ~{r['startup_s']:.1f} s): {r['throughput']:.0f} call-min/min overall, "
                f"{r['steady_throughput']:.0f} steady; review {r['review_s_per_call'] * 1000:.0f} ms/call on a worker, "
                f"driver {r['driver_s_per_call'] * 1000:.0f} ms/call",
                flush=True,
            )
    if "ray1" in results:
        base = results["ray1"]
        w, d = base["review_s_per_call"], base["driver_s_per_call"]
        minutes_per_call = base["call_minutes"] / base["calls"]
        workers = MACHINES * CORES_PER_MACHINE
        calls_per_s = min(workers / w, 1.0 / d)
        bound = "driver (store + reports)" if workers / w > 1.0 / d else "workers"
        print(
            f"prediction, {MACHINES} machines x {CORES_PER_MACHINE} workers: min({workers}/{w:.3f} s, 1/{d:.3f} s) = "
            f"{calls_per_s:.1f} calls/s = {calls_per_s * minutes_per_call * 60:.0f} call-min/min, bound by the {bound}"
        )
    print(json.dumps({"mode": "audio" if args.audio else "json", "reports": not args.no_reports, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
