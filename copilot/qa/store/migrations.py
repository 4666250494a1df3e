"""Append-only schema migrations (the pattern of simonw/llm's ``@migration`` list).

Each migration is a function of an open connection, applied once, in order, inside the same
transaction that records it in ``schema_version``. Never edit or reorder a migration that has shipped:
append a new one. Every migration declares the tables it creates in its own ``MetaData`` so that it
keeps meaning the same thing whatever later migrations do; the store reflects the resulting tables.

Only portable types are used (Integer, String, Text, Float, Boolean, DateTime, JSON), so the same
migrations run on SQLite and PostgreSQL; where the two differ a migration says so (m004).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

Migration = Callable[[sa.Connection], None]
MIGRATIONS: list[Migration] = []

VERSION_TABLE = "schema_version"
HASH_CHARS = 64  # hex SHA-256
SHORT_TEXT = 255  # names, ids, labels
# Key of the PostgreSQL advisory lock that serialises migrations (any constant; this spells "copilot").
MIGRATION_LOCK = 0x636F70696C6F74


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _call_fk() -> sa.Column[int]:
    return sa.Column(
        "call_id", sa.Integer, sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True
    )


def _clause_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("clause_document", sa.String(SHORT_TEXT), nullable=False, default=""),
        sa.Column("clause_section", sa.String(SHORT_TEXT), nullable=False, default=""),
        sa.Column("clause_quote", sa.Text, nullable=False, default=""),
    ]


@migration
def m001_initial(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "calls",
        md,
        _id(),
        sa.Column("name", sa.String(SHORT_TEXT), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(HASH_CHARS), nullable=False),
        sa.Column("config_hash", sa.String(HASH_CHARS), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),  # the configuration the review ran with
        sa.Column("model_versions", sa.JSON, nullable=False),  # model name -> version / SHA-256
        sa.Column("duration", sa.Float, nullable=False),  # seconds
        sa.Column("agent", sa.String(SHORT_TEXT), nullable=False, default=""),
        sa.Column("team", sa.String(SHORT_TEXT), nullable=False, default=""),
        sa.Column("queue", sa.String(SHORT_TEXT), nullable=False, default=""),
        sa.Column("call_date", sa.String(32), nullable=False, default=""),  # ISO date when known
        sa.Column("score", sa.Float, nullable=False),  # 0-100
        _created(),
        # A call is reviewed once per configuration: reruns skip it, --force replaces it.
        sa.UniqueConstraint("content_hash", "config_hash", name="uq_calls_content_config"),
    )
    sa.Table(
        "segments",
        md,
        _id(),
        _call_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),  # redacted
        sa.Column("mood", sa.String(32), nullable=False, default=""),  # customer mood label if known
    )
    sa.Table(
        "checks",
        md,
        _id(),
        _call_fk(),
        sa.Column("check_id", sa.String(64), nullable=False, index=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("message", sa.Text, nullable=False, default=""),
        sa.Column("evidence", sa.JSON, nullable=False),  # [{start, end, speaker, text}] redacted
        *_clause_columns(),
    )
    sa.Table(
        "flags",
        md,
        _id(),
        _call_fk(),
        sa.Column("rule", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False, default=""),
        sa.Column("start", sa.Float, nullable=True),  # of the first evidence, for sorting
        sa.Column("evidence", sa.JSON, nullable=False),
        *_clause_columns(),
    )
    sa.Table(
        "suggestions",
        md,
        _id(),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=True),
        sa.Column("at", sa.Float, nullable=True),  # seconds into the call
        sa.Column("context", sa.Text, nullable=False, default=""),  # the customer turn it answers
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source", sa.String(32), nullable=False, default=""),  # script / llm
        sa.Column("model", sa.String(SHORT_TEXT), nullable=False, default=""),
        _created(),
    )
    sa.Table(
        "summaries",
        md,
        _id(),
        _call_fk(),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("model", sa.String(SHORT_TEXT), nullable=False, default=""),
        _created(),
    )
    sa.Table(
        "ratings",
        md,
        _id(),
        sa.Column(
            "suggestion_id", sa.Integer, sa.ForeignKey("suggestions.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("suggestion_text", sa.Text, nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),  # good / bad
        sa.Column("comment", sa.Text, nullable=False, default=""),
        sa.Column("rater", sa.String(SHORT_TEXT), nullable=False, default=""),
        _created(),
        sa.CheckConstraint("rating IN ('good', 'bad')", name="ck_ratings_rating"),
    )
    sa.Table(
        "blocklist",
        md,
        _id(),
        sa.Column("text_hash", sa.String(HASH_CHARS), nullable=False, unique=True),  # of normalised text
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, default=""),
        _created(),
    )
    sa.Table(
        "eval_runs",
        md,
        _id(),
        sa.Column("suite", sa.String(64), nullable=False, index=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(HASH_CHARS), nullable=False, default=""),
        sa.Column("model_versions", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False, default=""),
        _created(),
    )
    md.create_all(conn)


@migration
def m002_call_indexes(conn: sa.Connection) -> None:
    """Dashboards filter and group by agent, team and score."""
    md = sa.MetaData()
    calls = sa.Table("calls", md, autoload_with=conn)
    for column in ("agent", "team", "score", "created_at"):
        sa.Index(f"ix_calls_{column}", calls.c[column]).create(conn)


@migration
def m003_failures(conn: sa.Connection) -> None:
    """Inputs that could not be reviewed (bad content): a rerun reports them without trying again."""
    md = sa.MetaData()
    sa.Table(
        "failures",
        md,
        _id(),
        sa.Column("content_hash", sa.String(HASH_CHARS), nullable=False),
        sa.Column("config_hash", sa.String(HASH_CHARS), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _created(),
        sa.UniqueConstraint("content_hash", "config_hash", name="uq_failures_content_config"),
    )
    md.create_all(conn)


# Columns filled from transcripts, file names, call metadata and the playbook: no length is promised.
FREE_TEXT = {
    "calls": ("name", "agent", "team", "queue", "call_date"),
    "segments": ("mood",),
    "checks": ("check_id",),
    "flags": ("rule", "kind", "severity"),
    "suggestions": ("source", "model"),
    "summaries": ("model",),
    "ratings": ("rater",),
    "eval_runs": ("suite",),
}


@migration
def m004_unbounded_text(conn: sa.Connection) -> None:
    """PostgreSQL enforces VARCHAR lengths, SQLite never did: a long call name or agent id must not
    fail a review there. TEXT costs PostgreSQL nothing; on SQLite there is nothing to change."""
    if conn.dialect.name != "postgresql":
        return
    quote = conn.dialect.identifier_preparer.quote
    for table, columns in FREE_TEXT.items():
        changes = ", ".join(f"ALTER COLUMN {quote(c)} TYPE TEXT" for c in columns)
        conn.exec_driver_sql(f"ALTER TABLE {quote(table)} {changes}")


def _version_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        VERSION_TABLE,
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(SHORT_TEXT), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return 0
    table = _version_table(sa.MetaData())
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.version), 0))).scalar_one())


def _exclusive(conn: sa.Connection) -> None:
    """On PostgreSQL, wait for any other process migrating the same database (the app and a batch
    opening a new database at once would both create the tables); released at commit. SQLite's
    write lock already serialises writers."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))


def migrate(engine: sa.Engine) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe to call on every open."""
    applied: list[str] = []
    version_table = _version_table(sa.MetaData())
    with engine.begin() as conn:
        _exclusive(conn)
        version_table.create(conn, checkfirst=True)
    for version, fn in enumerate(MIGRATIONS, start=1):
        # One transaction per migration: it and its schema_version row land together or not at all
        # (PostgreSQL has transactional DDL; SQLite does too through SQLAlchemy's begin()).
        with engine.begin() as conn:
            _exclusive(conn)
            if current_version(conn) >= version:
                continue
            fn(conn)
            conn.execute(
                version_table.insert().values(version=version, name=fn.__name__, applied_at=datetime.now(UTC))
            )
            applied.append(fn.__name__)
    return applied


@migration
def m005_check_status(conn: sa.Connection) -> None:
    """Three check outcomes (issue #17): ``status`` pass / fail / unknown and, for unknown, the ``reason``.

    Rows written before it keep ``status`` empty: their ``passed`` (True/False) is their outcome. An unknown
    check is stored with ``passed`` False and ``status`` 'unknown', so it is never counted as failed.
    """
    for column in ("status VARCHAR(16)", "reason TEXT"):
        conn.execute(sa.text(f"ALTER TABLE checks ADD COLUMN {column} NOT NULL DEFAULT ''"))


@migration
def m006_call_outcome(conn: sa.Connection) -> None:
    """A call with nothing said (an hour of silence, a truncated recording) is stored as ``outcome`` 'no
    speech' and not scored (its ``score`` column holds 0 and means nothing); '' is a scored review."""
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN outcome VARCHAR(16) NOT NULL DEFAULT ''"))
