"""Review many calls into the database and a report folder: resumable, atomic per call, interruptible.

``run()`` is the library function; ``add_batch_arguments()`` and ``run_batch()`` let ``copilot review``
grow a batch mode (``--out DIR``). The review itself is injected: ``review_one(path) -> review`` where the
review has the attributes of :class:`copilot.qa.store.ReviewLike` (``copilot.types.CallReview`` does).

Guarantees:
- resumable: a call whose content hash and configuration hash are stored already is skipped (its report
  is rewritten from the database if missing) unless ``force``;
- one bad file is reported (what, why) and the batch goes on; the exit status says whether any failed;
- nothing half-written: one database transaction per call, report files renamed into place;
- SIGTERM / Ctrl-C: the call under way is finished and stored, then the batch stops (a second signal
  aborts it at once; its transaction rolls back) and exits non-zero.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from copilot.config import Config, PrivacyConfig
from copilot.errors import ConfigError, CopilotError
from copilot.qa.archive import enforce_retention, save_review, shown_path
from copilot.qa.jobs import Attempt, Job, ReviewOne, local_engine
from copilot.qa.metadata import DEFAULT_NAME_PATTERN, MetadataSource, load_metadata
from copilot.qa.store import NO_SPEECH, Provenance, ReviewLike, Store, StoredCall, content_hash, provenance

Engine = Literal["local", "ray"]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac", ".wma", ".amr", ".webm", ".mp4")
CALL_SUFFIXES = (".json", *AUDIO_SUFFIXES)  # what a folder given as input is searched for
SIDECAR_MARK = ".meta."  # NAME.meta.json is metadata, not a call
EXIT_FAILED = 1  # some input could not be reviewed
EXIT_SIGNAL_BASE = 128  # shell convention: 128 + signal number
SECONDS_PER_MINUTE = 60.0
CALLS_DIR = "calls"
SUMMARY_FILE = "batch.json"
DASHBOARD_FILE = "index.html"
CSV_FILE = "reviews.csv"
JSON_FILE = "reviews.json"
LOCK_FILE = ".batch.lock"  # held while a batch writes into its output folder


class BatchAborted(BaseException):
    """A second signal: stop at once (BaseException so that per-call error handling lets it through)."""


@dataclass(frozen=True)
class BatchOptions:
    out_dir: Path
    force: bool = False  # review again even what is stored for this content and configuration
    engine: Engine = "local"
    address: str = ""  # Ray cluster address; "" starts a local cluster
    workers: int = 0  # Ray workers (one model-loading actor each); 0 = all CPUs of the cluster
    meta_file: str = ""  # sidecar CSV/JSON with agent/team/queue/date (see copilot.qa.metadata)
    meta_pattern: str = DEFAULT_NAME_PATTERN  # regex with named groups over the file name; "" = none
    progress: bool = True  # tqdm bar with ETA on stderr
    reports: bool = True  # write per-call HTML/JSON, the dashboard and exports
    privacy: PrivacyConfig = field(
        default_factory=PrivacyConfig
    )  # redaction, kept recordings, retention ([privacy])


@dataclass(frozen=True)
class CallOutcome:
    file: str
    status: Literal["reviewed", "skipped", "failed"]
    reason: str = ""  # why it failed or was skipped
    call_id: int | None = None
    call: str = ""
    score: float | None = None
    duration: float = 0.0  # seconds of call audio
    report: str = ""  # relative path of the HTML report inside the output folder
    seconds: float = 0.0  # wall time spent reviewing it (on a worker, for Ray)
    write_seconds: float = 0.0  # driver time to store it and write its report


@dataclass(frozen=True)
class BatchSummary:
    started_at: str
    finished_at: str
    engine: Engine
    workers: int
    database: str
    config_hash: str
    model_versions: dict[str, str]
    inputs: int
    reviewed: int
    skipped: int
    failed: int
    interrupted: str  # "" or the name of the signal that stopped the batch
    review_seconds: float  # wall time of the review phase
    call_minutes_reviewed: float
    throughput: float  # call-minutes reviewed per wall-clock minute
    outcomes: tuple[CallOutcome, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_SIGNAL_BASE + int(getattr(signal, self.interrupted, signal.SIGTERM))
        return EXIT_FAILED if self.failed else 0


# ---- inputs -------------------------------------------------------------------------------------


def _is_call(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in CALL_SUFFIXES and SIDECAR_MARK not in path.name


def expand_inputs(patterns: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named by paths, folders (searched recursively) and globs (``**`` allowed), de-duplicated
    in order; plus (pattern, reason) for each argument that names nothing."""
    files: dict[Path, None] = {}
    missing: list[tuple[str, str]] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if glob.has_magic(pattern):
            found = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
            found = [f for f in found if _is_call(f)]
        elif path.is_dir():
            found = sorted(f for f in path.rglob("*") if _is_call(f))
        elif path.exists() or path.is_symlink():
            found = [path]  # named explicitly: reviewed (or reported) whatever its suffix
        else:
            missing.append((pattern, "no such file"))
            continue
        if not found:
            missing.append((pattern, "matches no call files (" + ", ".join(CALL_SUFFIXES[:3]) + ", ...)"))
        for f in found:
            files.setdefault(f.resolve(), None)
    return list(files), missing


# ---- reviewing ----------------------------------------------------------------------------------


def preflight(path: Path) -> None:
    """Refuse, from its header or size, a file that cannot be a call, before hashing reads all of it
    (a 2-GB file of zeros named ``.wav`` would otherwise be read whole just to be refused)."""
    from copilot.qa.review import TRANSCRIPT_SUFFIXES

    if path.suffix.lower() in TRANSCRIPT_SUFFIXES:
        from copilot.transcription.transcript_files import check_size

        check_size(path)
    else:
        from copilot.transcription.audio import probe

        probe(path)


class PipelineReviewer:
    """``review_one`` for the real pipeline, loading the rule engine (and ASR for audio) once per process.

    Picklable: it carries only the configuration, so Ray ships it to each worker, where the models are
    loaded on first use (or by :meth:`warm`) and kept for every later call.
    """

    def __init__(self, config: Config, playbook: str | None = None) -> None:
        self.config = config
        self.playbook = playbook
        self._engine: Any = None
        self._transcribe: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "playbook": self.playbook, "_engine": None, "_transcribe": None}

    def warm(self) -> None:
        """Load the rule engine and, by reviewing a one-line call, the lexicons the checks load lazily."""
        from copilot.judgement import RuleEngine, load_playbook
        from copilot.qa.review import ReviewOptions, review_call
        from copilot.types import Segment, Transcript

        if self._engine is None:
            engine = RuleEngine(load_playbook(self.playbook))
            probe = Transcript("warm-up", 1.0, (Segment("customer", 0.0, 1.0, "你好"),))
            review_call(probe, engine=engine, options=ReviewOptions())
            self._engine = engine

    def _transcriber(self) -> Any:
        if self._transcribe is None:
            from copilot.transcription.asr import load_domain_transcriber
            from copilot.transcription.playback import transcribe_file

            transcriber = load_domain_transcriber(self.config.asr, Path(self.config.knowledge_dir))
            asr = self.config.asr
            self._transcribe = lambda path: transcribe_file(path, asr, transcriber)
        return self._transcribe

    def __call__(self, path: Path) -> ReviewLike:
        from copilot.qa.review import TRANSCRIPT_SUFFIXES, ReviewOptions, review_file

        self.warm()
        audio = path.suffix.lower() not in TRANSCRIPT_SUFFIXES
        return review_file(
            path,
            engine=self._engine,
            options=ReviewOptions(
                redact=self.config.privacy.redact, redact_kinds=self.config.privacy.redact_kinds
            ),
            transcribe=self._transcriber() if audio else None,
        )


# ---- signals ------------------------------------------------------------------------------------


class _SignalStop:
    """First SIGTERM/SIGINT: finish the current call, then stop. Second: abort at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set():
            raise BatchAborted(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        print(
            f"\ncopilot: {self.signal_name}: finishing the call under way, then stopping "
            "(send it again to abort now)",
            file=sys.stderr,
        )

    def __enter__(self) -> _SignalStop:
        if threading.current_thread() is threading.main_thread():  # handlers only install there
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# ---- the batch ----------------------------------------------------------------------------------


@dataclass
class _Plan:
    jobs: list[Job]
    outcomes: dict[str, CallOutcome]  # decided before reviewing: failed inputs and skips
    order: list[str]  # input order for the summary


def _plan(
    patterns: Sequence[str], store: Store, prov: Provenance, meta: MetadataSource, force: bool
) -> tuple[_Plan, dict[str, int]]:
    files, missing = expand_inputs(patterns)
    outcomes: dict[str, CallOutcome] = {p: CallOutcome(p, "failed", reason) for p, reason in missing}
    order = [p for p, _ in missing]
    hashed: list[Job] = []
    for path in files:
        key = str(path)
        order.append(key)
        try:
            preflight(path)
            digest = content_hash(path)
            call_meta = meta.for_file(path)
        except OSError as e:
            outcomes[key] = CallOutcome(key, "failed", f"cannot read: {e.strerror or e}")
            continue
        except CopilotError as e:
            outcomes[key] = CallOutcome(key, "failed", f"{type(e).__name__}: {e}")
            continue
        hashed.append(Job(key, digest, call_meta))
    done = store.reviewed((j.content_hash for j in hashed), prov.config_hash)
    failed_before = {} if force else store.failures((j.content_hash for j in hashed), prov.config_hash)
    jobs: list[Job] = []
    already: dict[str, int] = {}
    first_with: dict[str, str] = {}
    for job in hashed:
        if job.content_hash in first_with:
            outcomes[job.path] = CallOutcome(
                job.path, "skipped", f"same content as {first_with[job.content_hash]}"
            )
            continue
        first_with[job.content_hash] = job.path
        if job.content_hash in done and not force:
            already[job.path] = done[job.content_hash]
            continue
        if job.content_hash in failed_before:  # bad content stays bad: report it, do not retry
            reason = (
                f"failed before with this configuration (--force retries): {failed_before[job.content_hash]}"
            )
            outcomes[job.path] = CallOutcome(job.path, "failed", reason)
            continue
        jobs.append(job)
    return _Plan(jobs, outcomes, order), already


class _Reports:
    """Per-call report files under ``DIR/calls`` and the batch files at ``DIR``."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.out_dir = out_dir
        self.enabled = enabled

    def call_report(self, call: StoredCall, *, rewrite: bool) -> str:
        """Write the call's HTML and JSON (unless present and not ``rewrite``); returns the HTML's path."""
        from copilot.qa.report import atomic_write_text, call_json, render_call_html, report_stem

        stem = report_stem(call.summary.name, call.summary.content_hash)
        relative = f"{CALLS_DIR}/{stem}.html"
        if not self.enabled:
            return ""
        html_path = self.out_dir / relative
        if rewrite or not html_path.is_file():
            atomic_write_text(
                html_path.with_suffix(".json"),
                json.dumps(call_json(call), ensure_ascii=False, indent=1) + "\n",
            )
            atomic_write_text(html_path, render_call_html(call))
        return relative


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc="review", unit="call", file=sys.stderr, disable=not enabled, dynamic_ncols=True
    )


def _engine_iter(
    jobs: Sequence[Job], review_one: ReviewOne, options: BatchOptions, stop: threading.Event
) -> Iterator[tuple[Job, Attempt]]:
    if options.engine == "ray":
        from copilot.qa.distributed import ray_engine

        return ray_engine(jobs, review_one, address=options.address, workers=options.workers, stop=stop)
    return local_engine(jobs, review_one, stop)


def run(
    patterns: Sequence[str],
    review_one: ReviewOne,
    options: BatchOptions,
    config: Config,
    *,
    store: Store | None = None,
    extra_provenance: dict[str, Any] | None = None,
) -> BatchSummary:
    """Review every call named by ``patterns`` into the store and ``options.out_dir``."""
    from copilot.qa.report import remove_partials

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    own_store = store is None
    store = store or Store.open(config=config.store)
    prov = provenance(config, extra_provenance)
    meta = load_metadata(options.meta_file or None, options.meta_pattern or None)
    out_dir = options.out_dir
    lock = _lock_out_dir(out_dir)
    remove_partials(out_dir)
    reports = _Reports(out_dir, options.reports)
    try:
        enforce_retention(store, config.privacy)
        plan, already = _plan(patterns, store, prov, meta, options.force)
        outcomes = plan.outcomes
        for path, call_id in already.items():
            stored = store.load_call(call_id)
            outcomes[path] = CallOutcome(
                path,
                "skipped",
                "already reviewed with this configuration",
                call_id,
                stored.summary.name,
                stored.summary.score,
                stored.summary.duration,
                reports.call_report(stored, rewrite=False),
            )
        review_started = time.perf_counter()
        stopped_by = ""
        with _SignalStop() as stopper, _progress(len(plan.jobs), options.progress) as bar:
            failed = 0
            try:
                for job, result in _engine_iter(plan.jobs, review_one, options, stopper.event):
                    outcomes[job.path] = _record_safely(job, result, store, prov, options, reports)
                    if outcomes[job.path].status == "failed":
                        failed += 1
                        bar.set_postfix(failed=failed)
                        shown = shown_path(f"{job.path}: {outcomes[job.path].reason}", options.privacy)
                        tqdm_write(f"copilot: failed: {shown}")
                        if result.detail:
                            tqdm_write(shown_path(result.detail.rstrip(), options.privacy))
                    bar.update(1)
            except BatchAborted:
                pass  # the signal name is already recorded; the aborted call's transaction rolled back
            except Exception as e:  # the engine itself broke (a worker pool, the database): say so per call
                stopped_by = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                tqdm_write(
                    f"copilot: the batch stopped on an error: {shown_path(stopped_by, options.privacy)}"
                )
        review_seconds = time.perf_counter() - review_started
        for job in plan.jobs:
            outcomes.setdefault(
                job.path,
                CallOutcome(job.path, "failed", f"not reviewed: the batch was stopped{_by(stopped_by)}"),
            )
        summary = _summary(
            plan, outcomes, started_at, options, store, prov, stopper.signal_name, review_seconds
        )
        if options.reports:
            _write_batch_files(summary, store, out_dir)
        return summary
    finally:
        lock.close()
        if own_store:
            store.close()


def _by(error: str) -> str:
    return f" by an error ({error})" if error else ""


def _lock_out_dir(out_dir: Path) -> Any:
    """Create the output folder and hold its lock for the batch: two batches writing into one folder
    would leave reports, index and CSV that disagree, so the second is refused with a clear message."""
    import fcntl

    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = (out_dir / LOCK_FILE).open("a")
    except OSError as e:
        raise ConfigError(f"--out {out_dir}: cannot write there: {e.strerror or e}") from e
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        handle.close()
        raise ConfigError(
            f"--out {out_dir}: another batch is writing into this folder; wait for it or choose another"
        ) from e
    return handle


def tqdm_write(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _record_safely(
    job: Job, result: Attempt, store: Store, prov: Provenance, options: BatchOptions, reports: _Reports
) -> CallOutcome:
    """:func:`_record`, with any failure to store or report the call (bad text, a full disk, a database
    error) turned into this call's failed row: one input never ends the batch."""
    try:
        return _record(job, result, store, prov, options, reports)
    except Exception as e:
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        return CallOutcome(job.path, "failed", f"cannot store or report it: {reason}", seconds=result.seconds)


def _record(
    job: Job, result: Attempt, store: Store, prov: Provenance, options: BatchOptions, reports: _Reports
) -> CallOutcome:
    if result.result is None:
        reason = result.error or "no review returned"
        if result.bad_input:  # remember it: a rerun reports it without trying again
            store.record_failure(
                content_hash=job.content_hash,
                config_hash=prov.config_hash,
                file=shown_path(job.path, options.privacy),
                reason=shown_path(reason, options.privacy),
            )
        return CallOutcome(job.path, "failed", reason, seconds=result.seconds)
    review: ReviewLike = result.result
    started = time.perf_counter()
    saved = save_review(
        store,
        review,
        path=Path(job.path),
        content_hash=job.content_hash,
        provenance=prov,
        privacy=options.privacy,
        meta=job.meta,
        force=options.force,
    )
    stored = store.load_call(saved.call_id)
    report = reports.call_report(stored, rewrite=True)
    scored = getattr(review, "scored", True)
    return CallOutcome(
        job.path,
        "reviewed",
        NO_SPEECH if not scored else "replaced an earlier review" if saved.replaced else "",
        saved.call_id,
        stored.summary.name,
        stored.summary.score if scored else None,
        stored.summary.duration,
        report,
        result.seconds,
        time.perf_counter() - started,
    )


def _summary(
    plan: _Plan,
    outcomes: dict[str, CallOutcome],
    started_at: str,
    options: BatchOptions,
    store: Store,
    prov: Provenance,
    interrupted: str,
    review_seconds: float,
) -> BatchSummary:
    ordered = tuple(
        dataclasses.replace(
            outcomes[p],
            file=shown_path(outcomes[p].file, options.privacy),
            reason=shown_path(outcomes[p].reason, options.privacy),
        )
        for p in plan.order
        if p in outcomes
    )
    reviewed = [o for o in ordered if o.status == "reviewed"]
    call_minutes = sum(o.duration for o in reviewed) / SECONDS_PER_MINUTE
    return BatchSummary(
        started_at=started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine=options.engine,
        workers=options.workers,
        database=store.url,
        config_hash=prov.config_hash,
        model_versions=dict(prov.model_versions),
        inputs=len(ordered),
        reviewed=len(reviewed),
        skipped=sum(o.status == "skipped" for o in ordered),
        failed=sum(o.status == "failed" for o in ordered),
        interrupted=interrupted,
        review_seconds=round(review_seconds, 3),
        call_minutes_reviewed=round(call_minutes, 3),
        throughput=round(call_minutes / (review_seconds / SECONDS_PER_MINUTE), 3)
        if reviewed and review_seconds > 0
        else 0.0,
        outcomes=ordered,
    )


def summary_dict(summary: BatchSummary) -> dict[str, Any]:
    out = asdict(summary)
    out["exit_code"] = summary.exit_code
    return out


def _write_batch_files(summary: BatchSummary, store: Store, out_dir: Path) -> None:
    from copilot.qa.report import atomic_write_text, render_dashboard_html, to_csv, to_json
    from copilot.qa.store import ReviewFilter

    links = {o.call_id: o.report for o in summary.outcomes if o.call_id is not None and o.report}
    ids = set(links) | {o.call_id for o in summary.outcomes if o.call_id is not None}
    calls = [c for c in store.search(ReviewFilter(limit=max(len(ids), 1) * 2 + 1000)) if c.id in ids]
    if len(calls) < len(ids):  # more stored calls than one page: fetch the missing ones directly
        have = {c.id for c in calls}
        calls += [store.load_call(i).summary for i in sorted(ids - have)]
    failures = [(o.file, o.reason) for o in summary.outcomes if o.status == "failed"]
    notes = [
        f"{summary.reviewed} reviewed, {summary.skipped} skipped (already reviewed), {summary.failed} failed"
        + (f"; stopped by {summary.interrupted}" if summary.interrupted else ""),
        f"configuration {summary.config_hash[:12]} · models "
        + ", ".join(f"{k}: {v}" for k, v in sorted(summary.model_versions.items())),
    ]
    atomic_write_text(out_dir / CSV_FILE, to_csv(calls, links))
    atomic_write_text(out_dir / JSON_FILE, to_json(calls, links))
    atomic_write_text(
        out_dir / DASHBOARD_FILE,
        render_dashboard_html(
            calls, title=f"QA batch {summary.started_at}", links=links, failures=failures, notes=notes
        ),
    )
    atomic_write_text(
        out_dir / SUMMARY_FILE, json.dumps(summary_dict(summary), ensure_ascii=False, indent=1) + "\n"
    )


def format_summary(summary: BatchSummary) -> str:
    lines = [
        f"{summary.inputs} inputs: {summary.reviewed} reviewed, {summary.skipped} skipped, {summary.failed} failed"
        + (f" (stopped by {summary.interrupted})" if summary.interrupted else ""),
        f"{summary.call_minutes_reviewed:.1f} call-minutes in {summary.review_seconds:.1f} s "
        f"= {summary.throughput:.1f} call-minutes per minute ({summary.engine})",
    ]
    lines += [f"  FAILED {o.file}: {o.reason}" for o in summary.outcomes if o.status == "failed"]
    return "\n".join(lines)
