"""The review store on a real SQLite file: migrations, one-transaction writes, redaction, search."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from copilot.config import Config, StoreConfig
from copilot.errors import StoreError
from copilot.qa.metadata import CallMetadata
from copilot.qa.store import EvalRun, Rating, ReviewFilter, Store, content_hash, database_url, provenance
from copilot.qa.store.migrations import MIGRATIONS, VERSION_TABLE, migrate
from copilot.types import CallReview, CheckResult, Clause, Evidence, Flag, Segment
from tests.fakes_batch import ScriptedReviewer, write_call

PHONE = "13812345678"
CLAUSE = Clause("服务规范", "3.2", "对客户的投诉应先致歉")


def _review(name: str = "c1", score: float = 50.0, phone_in: str = "") -> CallReview:
    segments = (
        Segment("agent", 0.0, 4.0, "您好，我是小李"),
        Segment("customer", 4.5, 9.0, f"我的电话是{phone_in}" if phone_in else "洗衣机坏了"),
        Segment("agent", 9.5, 12.0, "好的100%_没问题"),
    )
    evidence = (Evidence(4.5, 9.0, "customer", segments[1].text),)
    return CallReview(
        call=name,
        duration=12.0,
        segments=segments,
        checks=(
            CheckResult("greeting", True, (), CLAUSE),
            CheckResult("apology", False, evidence, CLAUSE, "no apology"),
        ),
        flags=(Flag("forbidden", "phrase", "major", "bad phrase", evidence, CLAUSE),),
        score=score,
    )


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    with Store.open(f"sqlite:///{tmp_path / 'copilot.db'}") as s:
        yield s


def _save(store: Store, review: CallReview, digest: str, **kwargs: object) -> int:
    prov = provenance(Config())
    return store.save_review(
        review, file=f"/calls/{digest}.json", content_hash=digest, provenance=prov, **kwargs
    ).call_id  # type: ignore[arg-type]


def test_migrations_are_idempotent_and_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    assert migrate(engine) == []  # a second run applies nothing
    Store.open(url).close()  # nor does opening again
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT version, name FROM {VERSION_TABLE} ORDER BY version")).all()
    assert [r.version for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert [r.name for r in rows] == [m.__name__ for m in MIGRATIONS]


def test_an_old_database_gets_only_the_newer_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a database made by the first release: migration 1 only
        MIGRATIONS[0](conn)
        conn.execute(
            sa.text(
                f"CREATE TABLE {VERSION_TABLE} (version INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME NOT NULL)"
            )
        )
        conn.execute(
            sa.text(f"INSERT INTO {VERSION_TABLE} VALUES (1, 'm001_initial', '2024-01-01 00:00:00')")
        )
    applied = migrate(engine)
    assert applied == [m.__name__ for m in MIGRATIONS[1:]]
    index_names = {ix["name"] for ix in sa.inspect(engine).get_indexes("calls")}
    assert {"ix_calls_agent", "ix_calls_score"} <= index_names


def test_round_trip_redacts_and_records_provenance(store: Store) -> None:
    meta = CallMetadata(agent="A017", team="north", queue="repair", date="2024-01-31")
    call_id = _save(store, _review(phone_in=PHONE), "a" * 64, meta=meta)
    call = store.load_call(call_id)
    assert call.summary.meta == meta
    assert call.segments[0].segment.text == "您好，我是小李"
    everything = repr(call)
    assert PHONE not in everything  # segments, check evidence and flag evidence all redacted
    assert "[手机号]" in call.segments[1].segment.text
    assert call.checks[1].evidence[0].text == call.segments[1].segment.text
    assert [c.id for c in call.checks if not c.passed] == ["apology"] == list(call.summary.failed_checks)
    assert call.flags[0].clause == dataclasses.replace(CLAUSE, passage_id="")
    assert call.config["asr"]["model"] == Config().asr.model
    assert set(call.model_versions) == {"asr", "embedder", "llm"}
    # and on disk, not only through the API
    raw = (
        sqlite3.connect(store.engine.url.database)
        .execute("SELECT group_concat(text) FROM segments")
        .fetchone()[0]
    )
    assert PHONE not in raw


def test_redaction_can_be_turned_off_by_privacy_config(store: Store) -> None:
    call_id = _save(store, _review(phone_in=PHONE), "b" * 64, redacted=False)
    assert PHONE in store.load_call(call_id).segments[1].segment.text


def test_same_content_and_config_is_stored_once_force_replaces(store: Store) -> None:
    first = _save(store, _review(score=40.0), "c" * 64)
    again = _save(store, _review(score=90.0), "c" * 64)
    assert again == first and store.count_calls() == 1
    assert store.load_call(first).summary.score == 40.0  # kept, not overwritten
    prov = provenance(Config())
    replaced = store.save_review(
        _review(score=90.0), file="x", content_hash="c" * 64, provenance=prov, force=True
    )
    assert replaced.replaced and store.count_calls() == 1
    call = store.load_call(replaced.call_id)
    assert call.summary.score == 90.0 and len(call.segments) == 3 and len(call.checks) == 2
    with store.engine.connect() as conn:  # no orphaned children of the replaced review
        assert conn.execute(sa.text("SELECT count(*) FROM segments")).scalar_one() == 3
    other_config = dataclasses.replace(prov, config_hash="d" * 64)
    store.save_review(_review(), file="x", content_hash="c" * 64, provenance=other_config)
    assert store.count_calls() == 2  # another configuration is another review


class _ExplodingReview:
    """A review whose flags cannot be read: the failure happens after the call row was inserted."""

    def __init__(self, inner: CallReview) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "flags":
            raise RuntimeError("flags unavailable")
        return getattr(self._inner, name)


def test_a_failing_write_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        _save(store, _ExplodingReview(_review()), "e" * 64)  # type: ignore[arg-type]
    assert store.count_calls() == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM segments")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM checks")).scalar_one() == 0


def test_search_filters(store: Store) -> None:
    low = _save(store, _review("low", 20.0), "1" * 64, meta=CallMetadata(agent="A1", team="t1"))
    high = _save(
        store, _review("high", 95.0, phone_in=PHONE), "2" * 64, meta=CallMetadata(agent="A2", team="t1")
    )
    good = dataclasses.replace(_review("good", 100.0), checks=(CheckResult("apology", True, (), CLAUSE),))
    passed = _save(store, good, "3" * 64, meta=CallMetadata(agent="A2", team="t2"))

    def ids(**kwargs: object) -> set[int]:
        return {c.id for c in store.search(ReviewFilter(**kwargs))}  # type: ignore[arg-type]

    assert ids() == {low, high, passed}
    assert ids(agent="A2") == {high, passed}
    assert ids(team="t1") == {low, high}
    assert ids(min_score=50) == {high, passed}
    assert ids(max_score=50) == {low}
    assert ids(failed_check="apology") == {low, high}
    assert ids(text="[手机号]") == {high}
    assert ids(text="洗衣机") == {low, passed}
    assert ids(text="100%_") == {low, high, passed}  # LIKE wildcards are literal
    assert ids(text="0%x") == set()
    assert ids(content_hashes=("1" * 64,)) == {low}
    assert len(store.search(ReviewFilter(limit=2))) == 2


# Transcripts that tell a literal, ASCII-case-insensitive search from a LIKE pattern: only "wild" holds
# % _ / and a backslash; "plain" matches the searches for them if they are taken as a pattern.
TEXT_CALLS = {
    "plain": ("您好，编号AB1", "共100台，C:Temp，ab"),
    "iphone": ("您好", "我的iPhone坏了"),
    "wild": ("编号A_1", "打九折100%，路径C:\\Temp\\a/b"),
}


def _save_text_calls(store: Store) -> dict[str, int]:
    ids: dict[str, int] = {}
    for n, (name, (first, second)) in enumerate(TEXT_CALLS.items()):
        segments = (Segment("agent", 0.0, 4.0, first), Segment("customer", 4.5, 9.0, second))
        ids[name] = _save(store, dataclasses.replace(_review(name), segments=segments), f"{n + 7}" * 64)
    return ids


def test_text_search_ignores_ascii_case_and_is_literal(store: Store) -> None:
    calls = _save_text_calls(store)
    iphone, wild = calls["iphone"], calls["wild"]

    def ids(text: str) -> set[int]:
        return {c.id for c in store.search(ReviewFilter(text=text))}

    for typed in ("iPhone", "iphone", "IPHONE", "IpHoNe", "PHONE坏了"):
        assert ids(typed) == {iphone}, typed
    assert ids("坏了") == {iphone}
    # Taken as LIKE patterns each would also match "plain" (a/b if "/" escaped without being escaped itself,
    # C:\TEMP under PostgreSQL's default backslash escape), and "%%" / "__" would match every call.
    for typed in ("%", "_", "0%", "a_1", "a/b", "C:\\TEMP"):
        assert ids(typed) == {wild}, typed
    assert ids("%%") == ids("__") == ids("A%1") == set()


def test_ratings_blocklist_and_eval_runs(store: Store) -> None:
    rid = store.add_rating(Rating("请您稍等", "good", "clear"))
    store.add_rating(Rating("随便你", "bad"))
    assert [r.id for r in store.ratings()][-1] == rid
    assert {r.rating for r in store.ratings()} == {"good", "bad"}
    with pytest.raises(StoreError):
        store.add_rating(Rating("x", "meh"))
    store.block("这个 不行", "negative")
    store.block("这个不行")  # same text up to whitespace: no second entry
    assert store.is_blocked("这个不行") and not store.is_blocked("可以的")
    assert store.blocklist() == ["这个 不行"]
    store.record_eval_run(EvalRun("flags", {"precision": 0.91}, "h1"))
    store.record_eval_run(EvalRun("flags", {"precision": 0.95}, "h2"))
    store.record_eval_run(EvalRun("retrieval", {"mrr": 0.8}))
    runs = store.eval_runs("flags")
    assert [r.metrics["precision"] for r in runs] == [0.91, 0.95]
    assert len(store.eval_runs()) == 3


def test_database_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COPILOT_DB", raising=False)
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'copilot.db'}"
    assert database_url(config=StoreConfig(url="sqlite:///cfg.db")) == "sqlite:///cfg.db"
    monkeypatch.setenv("COPILOT_DB", "sqlite:///env.db")
    assert database_url(config=StoreConfig(url="sqlite:///cfg.db")) == "sqlite:///env.db"
    assert database_url("sqlite:///arg.db") == "sqlite:///arg.db"
    with pytest.raises(StoreError):
        Store.open("not a url")


def test_content_hash_follows_bytes_not_names(tmp_path: Path) -> None:
    a = write_call(tmp_path / "a.json", "a", ["您好"], ["你好"])
    b = tmp_path / "renamed.json"
    b.write_bytes(a.read_bytes())
    c = write_call(tmp_path / "c.json", "a", ["您好！"], ["你好"])
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_provenance_changes_with_what_shapes_a_review(tmp_path: Path) -> None:
    base = Config()
    assert provenance(base).config_hash == provenance(Config()).config_hash
    moved_app = dataclasses.replace(base, app=dataclasses.replace(base.app, port=9999))
    assert provenance(moved_app).config_hash == provenance(base).config_hash  # irrelevant to reviews
    other_asr = dataclasses.replace(base, asr=dataclasses.replace(base.asr, beam_size=1))
    assert provenance(other_asr).config_hash != provenance(base).config_hash
    book = tmp_path / "knowledge"
    book.mkdir()
    (book / "playbook.yaml").write_text("version: 1\n", encoding="utf-8")
    edited = dataclasses.replace(base, knowledge_dir=str(book))
    before = provenance(edited).config_hash
    (book / "playbook.yaml").write_text("version: 1\n# stricter\n", encoding="utf-8")
    assert provenance(edited).config_hash != before


def test_scripted_reviewer_on_the_shared_calls_is_stored(store: Store, shared_dir: Path) -> None:
    reviewer = ScriptedReviewer()
    for name in ("good_call", "bad_call"):
        path = shared_dir / "calls" / f"{name}.json"
        _save(store, reviewer(path), content_hash(path))
    by_name = {c.name: c for c in store.search()}
    assert by_name["good_call"].score > by_name["bad_call"].score
    assert "greeting" in by_name["bad_call"].failed_checks


def test_a_database_locked_while_opening_is_retried_and_a_lasting_lock_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.qa.store import db

    real_migrate = db.migrate
    attempts = {"n": 0, "locked_until": 3}

    def migrate(engine: sa.Engine) -> list[str]:
        attempts["n"] += 1
        if attempts["n"] < attempts["locked_until"]:
            raise sa.exc.OperationalError(
                "PRAGMA journal_mode=WAL", {}, sqlite3.OperationalError("database is locked")
            )
        return real_migrate(engine)

    monkeypatch.setattr(db, "migrate", migrate)
    monkeypatch.setattr(db, "OPEN_RETRY_SECONDS", 0.0)
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert store.search(ReviewFilter()) == []
    assert attempts["n"] == 3
    attempts.update(n=0, locked_until=db.OPEN_ATTEMPTS + 1)
    with pytest.raises(StoreError, match="database is locked"):
        Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    assert attempts["n"] == db.OPEN_ATTEMPTS
