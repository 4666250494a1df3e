"""The review store on a real PostgreSQL server: a throwaway cluster started for this module.

The cluster listens only on a unix socket in its own temp dir, with trust auth, and runs in a non-UTC
time zone so that time-zone handling shows. ``initdb`` refuses to run as root, so as root the server
runs as Debian's ``postgres`` user (scripts/system-deps.sh installs the ``postgresql`` package).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from copilot.commands.cli import main
from copilot.config import Config
from copilot.errors import StoreError
from copilot.qa.batch import BatchOptions, run
from copilot.qa.metadata import CallMetadata
from copilot.qa.store import EvalRun, Rating, ReviewFilter, Store, StoredCall
from copilot.qa.store.migrations import MIGRATIONS, VERSION_TABLE, migrate
from tests import test_store
from tests.fakes_batch import ScriptedReviewer
from tests.test_store import PHONE, _review, _save, _save_text_calls

pytestmark = pytest.mark.services  # starts a throwaway PostgreSQL cluster

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_TZ = "Asia/Shanghai"  # UTC+8: a naive or local-time timestamp would be 8 hours off
START_TIMEOUT = 120  # s, a loaded CI machine is slow to start a server
CALLS = ("good_call", "bad_call")


def _pg_bin() -> Path:
    """The newest installed major version's bin dir (Debian keeps it outside PATH)."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    assert found, f"no PostgreSQL server under {PG_ROOT}: run `make setup` (scripts/system-deps.sh)"
    return found[-1].parent


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, base: Path) -> None:
        self.base = base  # also the unix socket directory
        self._names = itertools.count(1)

    def url(self, database: str) -> str:
        url = sa.URL.create("postgresql+psycopg", username="postgres", database=database)
        return url.update_query_dict({"host": str(self.base)}).render_as_string(hide_password=False)

    def new_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"copilot_{next(self._names)}"
        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.url(name)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="copilot-pg-"))  # short: unix socket paths are limited to 107 bytes
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, log = base / "data", base / "server.log"

    def owner_run(*cmd: str) -> None:
        # cwd=base: the postgres user may not be allowed into the repository's directory
        done = subprocess.run(_as_owner(list(cmd)), cwd=base, capture_output=True, text=True)
        server_log = log.read_text(errors="replace") if log.exists() else ""
        assert done.returncode == 0, f"{cmd[0]} failed:\n{done.stdout}\n{done.stderr}\n{server_log}"

    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        owner_run(
            str(bin_dir / "initdb"),
            *("-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"),
            "--no-sync",
        )
        options = f"-c listen_addresses='' -k {base} -c fsync=off -c timezone={SERVER_TZ}"
        owner_run(
            pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT), "-o", options, "start"
        )
        yield Cluster(base)
    finally:
        if (data / "postmaster.pid").exists():
            owner_run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def pg_url(cluster: Cluster) -> str:
    return cluster.new_database()


@pytest.fixture()
def pg_store(pg_url: str) -> Iterator[Store]:
    with Store.open(pg_url) as store:
        yield store


# ---- schema ----------------------------------------------------------------------------------------


def _versions(url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT version, name FROM {VERSION_TABLE} ORDER BY version"))
            return [(int(r.version), r.name) for r in rows]
    finally:
        engine.dispose()


def test_migrations_apply_on_an_empty_database_and_are_idempotent(pg_url: str) -> None:
    Store.open(pg_url).close()
    expected = [(i, m.__name__) for i, m in enumerate(MIGRATIONS, start=1)]
    assert _versions(pg_url) == expected
    engine = sa.create_engine(pg_url)
    try:
        assert engine.dialect.name == "postgresql"
        assert migrate(engine) == []  # a second run applies nothing
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"calls", "segments", "checks", "flags", "ratings", "blocklist", "failures"} <= tables
    with Store.open(pg_url) as store:  # nor does opening again
        assert store.count_calls() == 0
    assert _versions(pg_url) == expected


def _at_once(fn: Callable[[], object], threads: int = 4) -> list[BaseException]:
    """Run ``fn`` in several threads released together; returns what they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def go() -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=go) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


def _open_and_close(url: str) -> None:
    Store.open(url).close()


def test_concurrent_first_opens_migrate_once(cluster: Cluster) -> None:
    """Two processes (say the app and a batch) opening a new database at once must not collide."""
    for _ in range(3):  # a race: several fresh databases make a collision near certain without a lock
        url = cluster.new_database()
        assert _at_once(functools.partial(_open_and_close, url)) == []
        assert _versions(url) == [(i, m.__name__) for i, m in enumerate(MIGRATIONS, start=1)]


# ---- a batch on PostgreSQL, compared with the same batch on SQLite ---------------------------------


@pytest.fixture()
def calls_dir(tmp_path: Path, shared_dir: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in CALLS:
        shutil.copy(shared_dir / "calls" / f"{name}.json", folder / f"20240131_A017_repair_{name}.json")
    return folder


def _batch(db_url: str, calls_dir: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    monkeypatch.setenv("COPILOT_DB", db_url)
    reviewer = ScriptedReviewer()
    options = BatchOptions(out_dir=out, progress=False)
    summary = run([str(calls_dir)], reviewer, options, Config())
    assert summary.failed == 0, [o.reason for o in summary.outcomes]
    return summary.reviewed, summary.skipped


def _scorecards(url: str) -> dict[str, StoredCall]:
    with Store.open(url) as store:
        return {c.name: store.load_call(c.id) for c in store.search()}


def _comparable(call: StoredCall) -> tuple[object, ...]:
    s = call.summary
    return (s.name, s.content_hash, s.score, s.duration, s.meta, s.failed_checks)


def test_batch_is_stored_resumable_and_matches_sqlite(
    cluster: Cluster, calls_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    pg_url, sqlite_url = cluster.new_database(), f"sqlite:///{tmp_path / 'copilot.db'}"
    before = datetime.now(UTC)
    assert _batch(pg_url, calls_dir, tmp_path / "pg-out", monkeypatch) == (2, 0)
    assert _batch(pg_url, calls_dir, tmp_path / "pg-out", monkeypatch) == (0, 2)  # resumed: nothing redone
    assert _batch(sqlite_url, calls_dir, tmp_path / "lite-out", monkeypatch) == (2, 0)

    on_pg, on_sqlite = _scorecards(pg_url), _scorecards(sqlite_url)
    assert sorted(on_pg) == sorted(CALLS)
    assert on_pg["good_call"].summary.score > on_pg["bad_call"].summary.score  # not vacuous
    for name in CALLS:
        pg, lite = on_pg[name], on_sqlite[name]
        assert _comparable(pg) == _comparable(lite)
        assert pg.checks == lite.checks and pg.flags == lite.flags and pg.segments == lite.segments
        assert pg.config == lite.config and pg.model_versions == lite.model_versions
        # the same instant, in UTC, whatever the server's time zone
        for created in (pg.summary.created_at, lite.summary.created_at):
            assert created.utcoffset() == timedelta(0)
            assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    failed_closing = ReviewFilter(failed_check="closing")
    with Store.open(pg_url) as pg_store, Store.open(sqlite_url) as lite_store:
        assert [c.name for c in pg_store.search(failed_closing)] == [
            c.name for c in lite_store.search(failed_closing)
        ]
    reports = sorted(p.name for p in (tmp_path / "pg-out").iterdir())
    assert reports == sorted(p.name for p in (tmp_path / "lite-out").iterdir())


# ---- the SQLite store tests, on PostgreSQL ---------------------------------------------------------


def test_search_filters(pg_store: Store) -> None:
    test_store.test_search_filters(pg_store)


def test_text_search_ignores_ascii_case_and_is_literal(pg_store: Store) -> None:
    """PostgreSQL's LIKE is case-sensitive and takes a backslash as its escape; the search must not be."""
    test_store.test_text_search_ignores_ascii_case_and_is_literal(pg_store)


def test_store_search_cli_text_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(pg_url) as store:
        calls = _save_text_calls(store)
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COPILOT_DB", pg_url)
    monkeypatch.delenv("COPILOT_CONFIG", raising=False)

    def ids(text: str) -> set[int]:
        assert main(["store", "search", "--text", text, "--json"]) == 0
        return {row["id"] for row in json.loads(capsys.readouterr().out)}

    assert ids("iphone") == ids("IPHONE") == ids("iPhone") == {calls["iphone"]}
    assert ids("%") == ids("_") == ids("a_1") == ids("c:\\temp") == {calls["wild"]}
    assert ids("%%") == set()


def test_same_content_and_config_is_stored_once_force_replaces(pg_store: Store) -> None:
    test_store.test_same_content_and_config_is_stored_once_force_replaces(pg_store)


def test_a_failing_write_leaves_nothing(pg_store: Store) -> None:
    test_store.test_a_failing_write_leaves_nothing(pg_store)


def test_ratings_blocklist_and_eval_runs_round_trip(pg_store: Store) -> None:
    test_store.test_ratings_blocklist_and_eval_runs(pg_store)
    ratings = pg_store.ratings()
    assert [(r.suggestion_text, r.rating, r.comment) for r in ratings] == [
        ("随便你", "bad", ""),
        ("请您稍等", "good", "clear"),
    ]
    assert all(r.created_at is not None and r.created_at.utcoffset() == timedelta(0) for r in ratings)
    pg_store.block("这个不行")  # still a no-op on a second open connection
    assert pg_store.blocklist() == ["这个 不行"]
    # an evaluation that had nothing to measure: JSON has no NaN, PostgreSQL refuses it
    run_id = pg_store.record_eval_run(EvalRun("empty", {"precision": math.nan, "recall": 1.0}))
    (stored,) = [r for r in pg_store.eval_runs("empty") if r.id == run_id]
    assert stored.metrics == {"precision": None, "recall": 1.0}


def test_stored_segments_are_redacted(pg_store: Store) -> None:
    call_id = _save(pg_store, _review(phone_in=PHONE), "a" * 64)
    raw_id = _save(pg_store, _review(phone_in=PHONE), "b" * 64, redacted=False)
    assert PHONE not in repr(pg_store.load_call(call_id))
    assert "[手机号]" in pg_store.load_call(call_id).segments[1].segment.text
    with pg_store.engine.connect() as conn:

        def on_disk(call: int) -> str:
            return conn.execute(
                sa.text(
                    "SELECT (SELECT string_agg(text, '|') FROM segments WHERE call_id = :c)"
                    " || (SELECT string_agg(evidence::text, '|') FROM checks WHERE call_id = :c)"
                    " || (SELECT string_agg(evidence::text, '|') FROM flags WHERE call_id = :c)"
                ),
                {"c": call},
            ).scalar_one()

        assert PHONE not in on_disk(call_id)
        assert PHONE in on_disk(raw_id)  # the query does see the raw number when it is stored


def test_values_sqlite_accepts_are_accepted(pg_store: Store) -> None:
    """SQLite ignores VARCHAR lengths and keeps NUL characters; PostgreSQL must not refuse such a call."""
    long = "很长的名字" * 60  # 300 characters
    meta = CallMetadata(agent="A" * 300, team="t" * 300, queue="q" * 300)
    review = dataclasses.replace(
        _review(long),
        segments=(*_review().segments[:2], dataclasses.replace(_review().segments[2], text="好的\x00再见")),
    )
    review = dataclasses.replace(
        review, checks=(dataclasses.replace(review.checks[0], id="c" * 100), *review.checks[1:])
    )
    call_id = _save(pg_store, review, "f" * 64, meta=meta)
    call = pg_store.load_call(call_id)
    assert call.summary.name == long and call.summary.meta == meta
    assert call.checks[0].id == "c" * 100
    assert call.segments[2].segment.text == "好的再见"
    assert pg_store.add_rating(Rating("好" * 300, "good", rater="r" * 300)) > 0
    with pytest.raises(StoreError):  # the database still refuses what it should
        pg_store.add_rating(Rating("x", "meh"))


def test_concurrent_saves_of_one_call_store_it_once(pg_store: Store) -> None:
    """Two reviewers running the same batch at once: the unique constraint must not fail either."""
    ids: list[int] = []

    def save() -> None:
        ids.append(_save(pg_store, _review(), "9" * 64))
        pg_store.block("请别这样说")

    assert _at_once(save) == []
    assert len(ids) == 4 and len(set(ids)) == 1 and pg_store.count_calls() == 1
    assert pg_store.blocklist() == ["请别这样说"]
