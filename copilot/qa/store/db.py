"""The review database: SQLAlchemy Core over SQLite by default, PostgreSQL by URL.

Where: ``url`` argument, else ``$COPILOT_DB``, else ``StoreConfig.url``, else
``sqlite:///$COPILOT_HOME/copilot.db``. Opening a store applies pending migrations. The tables are
reflected from the database after migrating, so the migrations are the one definition of the schema.

Every call's review (call row, segments, checks, flags, suggestions, summary) is written in one
transaction: a killed process leaves either the whole review or nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time as clock
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from copilot.config import StoreConfig, copilot_home
from copilot.errors import StoreError
from copilot.qa.metadata import CallMetadata
from copilot.qa.store.migrations import migrate
from copilot.qa.store.records import (
    NO_SPEECH,
    CallSummary,
    EvalRun,
    Provenance,
    Rating,
    ReviewFilter,
    ReviewLike,
    SaveOutcome,
    StoredCall,
    StoredSegment,
)
from copilot.transcription.redact import ALL_KINDS, name_redactor, redact_texts, text_redactor
from copilot.transcription.transcript_files import valid_text
from copilot.types import CheckResult, Clause, Evidence, Flag, Segment

DB_ENV = "COPILOT_DB"
DB_FILE = "copilot.db"
SQLITE_BUSY_TIMEOUT_MS = 120_000  # a second writer (the app, another batch) waits this long for the lock
READ_ONLY = "copilot_read_only"  # execution option: a transaction that only reads (SQLite: deferred BEGIN)
RATINGS = ("good", "bad")
IN_CHUNK = 500  # bound parameters per IN (...) list; SQLite allows 32766, keep queries modest
# Opening is retried when SQLite says "database is locked" at once, without waiting out the busy timeout: two
# batches starting together on one database file lost one of them so, about 1 run in 12 under CPU load
# (tests/test_redact_audit.py), always while opening (migrations, reflection), never inside a transaction.
OPEN_ATTEMPTS = 6
OPEN_RETRY_SECONDS = 0.1  # doubled after each attempt: 3.1 s in all

NO_METADATA = CallMetadata()
EVERYTHING = ReviewFilter()


def database_url(url: str | None = None, config: StoreConfig | None = None) -> str:
    if url:
        return url
    env = os.environ.get(DB_ENV)
    if env:
        return env
    if config is not None and config.url:
        return config.url
    return f"sqlite:///{copilot_home() / DB_FILE}"


def _sqlite_setup(engine: sa.Engine) -> None:
    """Make SQLite behave like a real transactional database.

    Python's sqlite3 module (before 3.12's autocommit attribute) only opens a transaction before DML,
    so DDL in a migration would commit on its own; SQLAlchemy's documented recipe hands transaction
    control to SQLAlchemy instead. WAL lets readers (the app) read while a batch writes.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A writer takes the write lock when its transaction begins (waiting up to the busy timeout):
        # a deferred transaction that reads first and then writes cannot wait for the lock, SQLite fails
        # it at once with "database is locked" (two batches on one database: one always died).
        immediate = conn.get_execution_options().get(READ_ONLY, False) is False
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity (an evaluation with nothing to measure): PostgreSQL refuses them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_dumps(value: Any) -> str:
    return json.dumps(_finite(value))


def storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters; in a transcript they carry nothing. A lone surrogate
    (valid JSON, ``"\\ud800"``, or an undecodable file name) cannot be encoded at all: U+FFFD instead."""
    return valid_text(text.replace("\x00", ""))


def _take_turns(conn: sa.Connection, *key: str) -> None:
    """On PostgreSQL, make concurrent check-then-insert writers of the same ``key`` wait for each other
    until commit, so the second sees the first's row instead of failing on a unique constraint.
    SQLite has a single writer already."""
    if conn.dialect.name == "postgresql":
        lock = int(hashlib.sha256("\n".join(key).encode("utf-8")).hexdigest()[:15], 16)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))


def _evidence_json(evidence: Sequence[Evidence], clean: Any) -> list[dict[str, Any]]:
    return [{"start": e.start, "end": e.end, "speaker": e.speaker, "text": clean(e.text)} for e in evidence]


def _evidence(items: Any) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(start=float(e["start"]), end=float(e["end"]), speaker=e["speaker"], text=str(e["text"]))
        for e in items or ()
    )


def _clause(row: Any) -> Clause:
    return Clause(document=row.clause_document, section=row.clause_section, quote=row.clause_quote)


def _normalise_suggestion(text: str) -> str:
    return "".join(text.split())


def _suggestion_key(text: str) -> str:
    """What the block list is keyed by: a hash of the whitespace-insensitive text."""
    return hashlib.sha256(_normalise_suggestion(text).encode("utf-8")).hexdigest()


def _failed(checks: sa.Table) -> sa.ColumnElement[bool]:
    """A check that failed: not passed and not undecidable (status 'unknown', migration m005)."""
    return sa.and_(checks.c.passed.is_(False), checks.c.status != "unknown")


def _moods(review: ReviewLike) -> tuple[str, ...]:
    """One customer-mood label per segment: ``review.moods`` if given, else from ``review.tone``
    readings (``copilot.types.ToneReading``) of customer segments, matched by time span."""
    given = getattr(review, "moods", None)
    if given:
        return tuple(str(m or "") for m in given)
    by_span: dict[tuple[float, float], str] = {}
    for reading in getattr(review, "tone", ()) or ():
        if getattr(reading, "speaker", "") == "customer":
            label = getattr(reading, "label", None)
            by_span.setdefault((reading.start, reading.end), str(getattr(label, "label", label) or ""))
    return tuple(
        by_span.get((s.start, s.end), "calm" if by_span and s.speaker == "customer" else "")
        for s in review.segments
    )


def _inserted_id(conn: sa.Connection, insert: sa.Insert) -> int:
    key = conn.execute(insert).inserted_primary_key
    if key is None:
        raise StoreError("the database did not return the id of an inserted row")
    return int(key[0])


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """Aware UTC (what ``created_at`` holds); a naive value is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _on_or_after(calls: sa.Table, day: date) -> sa.ColumnElement[bool]:
    """The call's date (ISO text, so it sorts) is ``day`` or later; without one, its review day is."""
    known = calls.c.call_date != ""
    reviewed = calls.c.created_at >= datetime.combine(day, time.min, tzinfo=UTC)
    return sa.or_(sa.and_(known, calls.c.call_date >= day.isoformat()), sa.and_(sa.not_(known), reviewed))


class Store:
    """Reviews, ratings, block list and evaluation runs in one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        for attempt in range(OPEN_ATTEMPTS):
            try:
                migrate(engine)
                md = sa.MetaData()
                md.reflect(bind=engine)
                break
            except sa.exc.SQLAlchemyError as e:
                if attempt + 1 < OPEN_ATTEMPTS and "database is locked" in str(e):
                    clock.sleep(OPEN_RETRY_SECONDS * 2**attempt)
                    continue
                raise StoreError(f"cannot open the review database {engine.url!r}: {e}") from e
        self._t = md.tables

    @classmethod
    def open(cls, url: str | None = None, config: StoreConfig | None = None) -> Store:
        chosen = database_url(url, config)
        try:
            parsed = sa.make_url(chosen)
        except sa.exc.ArgumentError as e:
            raise StoreError(f"{chosen!r} is not a SQLAlchemy database URL") from e
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = sa.create_engine(parsed, json_serializer=_json_dumps)
        except (sa.exc.ArgumentError, ImportError) as e:
            raise StoreError(f"cannot use database {parsed!r}: {e}") from e
        if is_sqlite:
            _sqlite_setup(engine)
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, read_only: bool = False) -> Iterator[sa.Connection]:
        """One transaction; on SQLite a writing one holds the write lock from its start (BEGIN IMMEDIATE)."""
        try:
            with self.engine.connect() as conn:
                if read_only:
                    conn = conn.execution_options(**{READ_ONLY: True})
                with conn.begin():
                    yield conn
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(f"review database error: {e.__class__.__name__}: {e}") from e

    # ---- reviews -------------------------------------------------------------------------------

    def call_id(self, content_hash: str, config_hash: str) -> int | None:
        calls = self._t["calls"]
        with self._tx(read_only=True) as conn:
            found = conn.execute(
                sa.select(calls.c.id).where(
                    calls.c.content_hash == content_hash, calls.c.config_hash == config_hash
                )
            ).scalar()
        return int(found) if found is not None else None

    def reviewed(self, content_hashes: Iterable[str], config_hash: str) -> dict[str, int]:
        """Of ``content_hashes``, those already reviewed with ``config_hash`` -> their call id."""
        calls = self._t["calls"]
        wanted = sorted(set(content_hashes))
        found: dict[str, int] = {}
        with self._tx(read_only=True) as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                rows = conn.execute(
                    sa.select(calls.c.content_hash, calls.c.id).where(
                        calls.c.config_hash == config_hash, calls.c.content_hash.in_(wanted[i : i + IN_CHUNK])
                    )
                )
                found.update({row.content_hash: int(row.id) for row in rows})
        return found

    def record_failure(self, *, content_hash: str, config_hash: str, file: str, reason: str) -> None:
        """Remember that this content could not be reviewed with this configuration (latest reason wins)."""
        table = self._t["failures"]
        with self._tx() as conn:
            self._forget_failure(conn, content_hash, config_hash)
            conn.execute(
                table.insert().values(
                    content_hash=content_hash,
                    config_hash=config_hash,
                    file=storable(file),
                    reason=storable(reason),
                    created_at=_now(),
                )
            )

    def _forget_failure(self, conn: sa.Connection, content_hash: str, config_hash: str) -> None:
        table = self._t["failures"]
        conn.execute(
            table.delete().where(table.c.content_hash == content_hash, table.c.config_hash == config_hash)
        )

    def failures(self, content_hashes: Iterable[str], config_hash: str) -> dict[str, str]:
        """Of ``content_hashes``, those that failed with ``config_hash`` -> the reason."""
        table = self._t["failures"]
        wanted = sorted(set(content_hashes))
        found: dict[str, str] = {}
        with self._tx(read_only=True) as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                rows = conn.execute(
                    sa.select(table.c.content_hash, table.c.reason).where(
                        table.c.config_hash == config_hash, table.c.content_hash.in_(wanted[i : i + IN_CHUNK])
                    )
                )
                found.update({row.content_hash: row.reason for row in rows})
        return found

    def save_review(
        self,
        review: ReviewLike,
        *,
        file: str,
        content_hash: str,
        provenance: Provenance,
        meta: CallMetadata = NO_METADATA,
        force: bool = False,
        redacted: bool = True,
        kinds: Collection[str] = ALL_KINDS,
        keep_path: bool = False,
    ) -> SaveOutcome:
        """Store one review in one transaction.

        Without ``force`` an existing review of the same content and configuration is kept (and its id
        returned); with ``force`` it is replaced. Transcript text (as the whole call: a number read over two
        segments is found), evidence, the call's name and its file path are redacted unless ``redacted`` is
        False (privacy configuration); the path is kept as given with ``keep_path``.
        """
        redactor = text_redactor(redacted, kinds)
        name_clean = name_redactor(redacted, kinds)

        def clean(text: str) -> str:
            return storable(redactor(text))

        segment_texts = [s.text for s in review.segments]
        if redacted:
            segment_texts = redact_texts(
                segment_texts,
                [s.speaker for s in review.segments],
                [s.start for s in review.segments],
                [s.end for s in review.segments],
                kinds,
            )

        t = self._t
        calls = t["calls"]
        scored = bool(getattr(review, "scored", True))
        with self._tx() as conn:
            _take_turns(conn, content_hash, provenance.config_hash)
            existing = conn.execute(
                sa.select(calls.c.id).where(
                    calls.c.content_hash == content_hash, calls.c.config_hash == provenance.config_hash
                )
            ).scalar()
            if existing is not None and not force:
                return SaveOutcome(call_id=int(existing), replaced=False)
            if existing is not None:
                self._delete(conn, int(existing))
            self._forget_failure(conn, content_hash, provenance.config_hash)
            now = _now()
            call_id = _inserted_id(
                conn,
                calls.insert().values(
                    name=storable(name_clean(review.call)),
                    file=storable(file) if keep_path else storable(name_clean(file)),
                    content_hash=content_hash,
                    config_hash=provenance.config_hash,
                    config=dict(provenance.config),
                    model_versions=dict(provenance.model_versions),
                    duration=float(review.duration),
                    agent=storable(meta.agent),
                    team=storable(meta.team),
                    queue=storable(meta.queue),
                    call_date=storable(meta.date),
                    score=float(review.score) if scored else 0.0,
                    outcome="" if scored else NO_SPEECH,
                    created_at=now,
                ),
            )
            moods = _moods(review)
            if review.segments:
                conn.execute(
                    t["segments"].insert(),
                    [
                        {
                            "call_id": call_id,
                            "position": i,
                            "speaker": s.speaker,
                            "start": s.start,
                            "end": s.end,
                            "text": storable(segment_texts[i]),
                            "mood": str(moods[i]) if i < len(moods) and moods[i] else "",
                        }
                        for i, s in enumerate(review.segments)
                    ],
                )
            if review.checks:
                conn.execute(
                    t["checks"].insert(),
                    [
                        {
                            "call_id": call_id,
                            "check_id": c.id,
                            "passed": bool(c.passed),
                            "status": c.status,
                            "reason": clean(c.unknown_reason),
                            "message": clean(c.message),
                            "evidence": _evidence_json(c.evidence, clean),
                            "clause_document": c.clause.document,
                            "clause_section": c.clause.section,
                            "clause_quote": c.clause.quote,
                        }
                        for c in review.checks
                    ],
                )
            if review.flags:
                conn.execute(
                    t["flags"].insert(),
                    [
                        {
                            "call_id": call_id,
                            "rule": f.rule,
                            "kind": f.kind,
                            "severity": f.severity,
                            "message": clean(f.message),
                            "start": f.evidence[0].start if f.evidence else None,
                            "evidence": _evidence_json(f.evidence, clean),
                            "clause_document": f.clause.document,
                            "clause_section": f.clause.section,
                            "clause_quote": f.clause.quote,
                        }
                        for f in review.flags
                    ],
                )
            suggestions = tuple(getattr(review, "suggestions", ()) or ())
            if suggestions:
                conn.execute(
                    t["suggestions"].insert(),
                    [
                        {
                            "call_id": call_id,
                            "at": getattr(s, "at", None),
                            "context": clean(str(getattr(s, "context", "") or "")),
                            "text": clean(str(s.text)),
                            "source": str(getattr(s, "source", "") or ""),
                            "model": str(getattr(s, "model", "") or ""),
                            "created_at": now,
                        }
                        for s in suggestions
                    ],
                )
            summary = getattr(review, "summary", "")
            if isinstance(summary, str) and summary:
                conn.execute(
                    t["summaries"]
                    .insert()
                    .values(
                        call_id=call_id,
                        text=clean(summary),
                        model=provenance.model_versions.get("llm", ""),
                        created_at=now,
                    )
                )
        return SaveOutcome(call_id=int(call_id), replaced=existing is not None)

    def _delete(self, conn: sa.Connection, call_id: int) -> None:
        # Children first and explicitly: foreign-key cascades are off by default in SQLite.
        suggestions = self._t["suggestions"]
        ratings = self._t["ratings"]
        conn.execute(
            ratings.update()
            .where(
                ratings.c.suggestion_id.in_(
                    sa.select(suggestions.c.id).where(suggestions.c.call_id == call_id)
                )
            )
            .values(suggestion_id=None)
        )
        for name in ("segments", "checks", "flags", "suggestions", "summaries"):
            table = self._t[name]
            conn.execute(table.delete().where(table.c.call_id == call_id))
        calls = self._t["calls"]
        conn.execute(calls.delete().where(calls.c.id == call_id))

    def delete_call(self, call_id: int) -> None:
        with self._tx() as conn:
            self._delete(conn, call_id)

    def _summaries(self, conn: sa.Connection, rows: Sequence[Any]) -> list[CallSummary]:
        checks = self._t["checks"]
        ids = [int(r.id) for r in rows]
        failed: dict[int, list[str]] = {i: [] for i in ids}
        for i in range(0, len(ids), IN_CHUNK):
            for row in conn.execute(
                sa.select(checks.c.call_id, checks.c.check_id)
                .where(checks.c.call_id.in_(ids[i : i + IN_CHUNK]), _failed(checks))
                .order_by(checks.c.call_id, checks.c.id)
            ):
                failed[int(row.call_id)].append(row.check_id)
        return [
            CallSummary(
                id=int(r.id),
                name=r.name,
                file=r.file,
                content_hash=r.content_hash,
                config_hash=r.config_hash,
                duration=float(r.duration),
                score=float(r.score),
                meta=CallMetadata(agent=r.agent, team=r.team, queue=r.queue, date=r.call_date),
                created_at=_utc(r.created_at),  # PostgreSQL answers in its session's time zone
                failed_checks=tuple(failed[int(r.id)]),
                outcome=r.outcome,
            )
            for r in rows
        ]

    def search(self, where: ReviewFilter = EVERYTHING) -> list[CallSummary]:
        """Stored reviews matching ``where``, newest first."""
        t = self._t
        calls = t["calls"]
        query = sa.select(calls)
        if where.agent:
            query = query.where(calls.c.agent == where.agent)
        if where.team:
            query = query.where(calls.c.team == where.team)
        if where.min_score is not None:
            query = query.where(calls.c.score >= where.min_score)
        if where.max_score is not None:
            query = query.where(calls.c.score <= where.max_score)
        if where.failed_check:
            checks = t["checks"]
            query = query.where(
                sa.exists().where(
                    checks.c.call_id == calls.c.id,
                    checks.c.check_id == where.failed_check,
                    _failed(checks),
                )
            )
        if where.text:
            # Literal (autoescape: % _ and the escape character match themselves) and case-insensitive
            # for ASCII on every backend: ILIKE on PostgreSQL, whose LIKE is case-sensitive; lower() LIKE
            # lower() on SQLite. An explicit ESCAPE also keeps a backslash literal on PostgreSQL.
            segments = t["segments"]
            query = query.where(
                sa.exists().where(
                    segments.c.call_id == calls.c.id, segments.c.text.icontains(where.text, autoescape=True)
                )
            )
        if where.content_hashes:
            query = query.where(calls.c.content_hash.in_(sorted(set(where.content_hashes))))
        if where.queue:
            query = query.where(calls.c.queue == where.queue)
        if where.since is not None:
            query = query.where(_on_or_after(calls, where.since))
        if where.until is not None:
            query = query.where(sa.not_(_on_or_after(calls, where.until + timedelta(days=1))))
        if where.reviewed_before is not None:
            query = query.where(calls.c.created_at < _utc(where.reviewed_before))
        query = query.order_by(calls.c.created_at.desc(), calls.c.id.desc()).limit(where.limit)
        query = query.offset(where.offset)
        with self._tx(read_only=True) as conn:
            return self._summaries(conn, conn.execute(query).all())

    def load_call(self, call_id: int) -> StoredCall:
        t = self._t
        calls = t["calls"]
        with self._tx(read_only=True) as conn:
            row = conn.execute(sa.select(calls).where(calls.c.id == call_id)).first()
            if row is None:
                raise StoreError(f"no stored review with id {call_id}")
            summary = self._summaries(conn, [row])[0]
            seg_t, check_t, flag_t = t["segments"], t["checks"], t["flags"]
            segments = tuple(
                StoredSegment(
                    Segment(speaker=s.speaker, start=float(s.start), end=float(s.end), text=s.text), s.mood
                )
                for s in conn.execute(
                    sa.select(seg_t).where(seg_t.c.call_id == call_id).order_by(seg_t.c.position)
                )
            )
            checks = tuple(
                CheckResult(
                    id=c.check_id,
                    passed=bool(c.passed),
                    evidence=_evidence(c.evidence),
                    clause=_clause(c),
                    message=c.message,
                    unknown_reason=(c.reason or c.message or "unknown") if c.status == "unknown" else "",
                )
                for c in conn.execute(
                    sa.select(check_t).where(check_t.c.call_id == call_id).order_by(check_t.c.id)
                )
            )
            flags = tuple(
                Flag(
                    rule=f.rule,
                    kind=f.kind,
                    severity=f.severity,
                    message=f.message,
                    evidence=_evidence(f.evidence),
                    clause=_clause(f),
                )
                for f in conn.execute(
                    sa.select(flag_t).where(flag_t.c.call_id == call_id).order_by(flag_t.c.id)
                )
            )
            summaries = t["summaries"]
            text = conn.execute(
                sa.select(summaries.c.text)
                .where(summaries.c.call_id == call_id)
                .order_by(summaries.c.id.desc())
                .limit(1)
            ).scalar()
        return StoredCall(
            summary=summary,
            model_versions=dict(row.model_versions or {}),
            config=dict(row.config or {}),
            segments=segments,
            checks=checks,
            flags=flags,
            summary_text=text or "",
        )

    def count_calls(self) -> int:
        calls = self._t["calls"]
        with self._tx(read_only=True) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(calls)).scalar_one())

    # ---- trainers: ratings, block list, evaluation runs ----------------------------------------

    def add_rating(self, rating: Rating) -> int:
        if rating.rating not in RATINGS:
            raise StoreError(f"a rating is 'good' or 'bad', not {rating.rating!r}")
        table = self._t["ratings"]
        with self._tx() as conn:
            return _inserted_id(
                conn,
                table.insert().values(
                    suggestion_id=rating.suggestion_id,
                    suggestion_text=rating.suggestion_text,
                    rating=rating.rating,
                    comment=rating.comment,
                    rater=rating.rater,
                    created_at=_now(),
                ),
            )

    def ratings(self, limit: int = 1000) -> list[Rating]:
        table = self._t["ratings"]
        with self._tx(read_only=True) as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(limit)).all()
        return [
            Rating(
                suggestion_text=r.suggestion_text,
                rating=r.rating,
                comment=r.comment,
                rater=r.rater,
                suggestion_id=r.suggestion_id,
                id=int(r.id),
                created_at=_utc(r.created_at),
            )
            for r in rows
        ]

    def block(self, text: str, reason: str = "") -> None:
        """Never show this suggestion text again (whitespace-insensitive). Blocking twice is a no-op."""
        key = _suggestion_key(text)
        table = self._t["blocklist"]
        with self._tx() as conn:
            _take_turns(conn, "blocklist", key)
            if conn.execute(sa.select(table.c.id).where(table.c.text_hash == key)).first() is None:
                conn.execute(
                    table.insert().values(text_hash=key, text=text, reason=reason, created_at=_now())
                )

    def is_blocked(self, text: str) -> bool:
        key = _suggestion_key(text)
        table = self._t["blocklist"]
        with self._tx(read_only=True) as conn:
            return conn.execute(sa.select(table.c.id).where(table.c.text_hash == key)).first() is not None

    def blocklist(self) -> list[str]:
        return [text for text, _reason, _when in self.blocks()]

    def blocks(self) -> list[tuple[str, str, datetime | None]]:
        """The block list with why and when: (text, reason, blocked at), oldest first."""
        table = self._t["blocklist"]
        query = sa.select(table.c.text, table.c.reason, table.c.created_at).order_by(table.c.id)
        with self._tx(read_only=True) as conn:
            return [
                (r.text, r.reason or "", _utc(r.created_at) if r.created_at else None)
                for r in conn.execute(query)
            ]

    def unblock(self, text: str) -> bool:
        """Let this suggestion text be shown again (matched as :meth:`block` matches). False: it was not blocked."""
        key = _suggestion_key(text)
        table = self._t["blocklist"]
        with self._tx() as conn:
            return bool(conn.execute(table.delete().where(table.c.text_hash == key)).rowcount)

    def record_eval_run(self, run: EvalRun) -> int:
        table = self._t["eval_runs"]
        with self._tx() as conn:
            return _inserted_id(
                conn,
                table.insert().values(
                    suite=run.suite,
                    metrics=dict(run.metrics),
                    config_hash=run.config_hash,
                    model_versions=dict(run.model_versions),
                    note=run.note,
                    created_at=_now(),
                ),
            )

    def eval_runs(self, suite: str = "", limit: int = 1000) -> list[EvalRun]:
        """Evaluation results over time, oldest first (trainers plot them)."""
        table = self._t["eval_runs"]
        query = sa.select(table).order_by(table.c.id).limit(limit)
        if suite:
            query = query.where(table.c.suite == suite)
        with self._tx(read_only=True) as conn:
            rows = conn.execute(query).all()
        return [
            EvalRun(
                suite=r.suite,
                metrics=dict(r.metrics),
                config_hash=r.config_hash,
                model_versions=dict(r.model_versions or {}),
                note=r.note,
                id=int(r.id),
                created_at=_utc(r.created_at),
            )
            for r in rows
        ]
