"""``copilot store`` on a real SQLite database filled by ``copilot review --out`` over the shared calls."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from copilot.commands.cli import main
from copilot.config import load_config
from copilot.errors import ConfigError, StoreError
from copilot.qa.archive import KEPT_AUDIO_DIR, keep_audio
from copilot.qa.store import Provenance, ReviewFilter, Store
from copilot.qa.store.retention import purge
from copilot.types import CallReview, Segment
from tests.test_store import _save_text_calls

PHONE = "13812345678"
DAY = timedelta(days=1)
# File names carry date, agent and queue (the default metadata pattern); a roster gives the team.
NAMES = {
    "good": "20240131_A017_repair_good_call.json",
    "bad": "20240205_B002_billing_bad_call.json",
    "phone": "20240210_A017_repair_phone_call.json",
}
ROSTER = "agent,team\nA017,north\nB002,south\n"


@dataclass(frozen=True)
class Db:
    url: str
    home: Path
    ids: dict[str, int]  # good / bad / phone -> call id
    inputs: Path  # folder of the reviewed transcripts


def _phone_call(shared: Path) -> dict[str, object]:
    """good_call with the customer's mobile number said in the agent's first (greeting) turn."""
    call = json.loads((shared / "calls" / "good_call.json").read_text(encoding="utf-8"))
    first = call["segments"][0]
    first["text"] = first["text"].replace("请问", f"您的来电号码是{PHONE}，请问", 1)
    assert PHONE in first["text"]
    call["name"] = "phone_call"
    return call


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status: int, out: str, err: str) -> str:
    assert status != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("copilot: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Db]:
    """Review the three calls once, with the real pipeline; each test gets a copy of the database."""
    root = tmp_path_factory.mktemp("store_cli")
    inputs = root / "in"
    inputs.mkdir()
    for key in ("good", "bad"):
        shutil.copy(shared_dir / "calls" / f"{key}_call.json", inputs / NAMES[key])
    (inputs / NAMES["phone"]).write_text(json.dumps(_phone_call(shared_dir), ensure_ascii=False), "utf-8")
    roster = root / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    url = f"sqlite:///{root / 'reviews.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COPILOT_HOME", str(root / "home"))
        mp.setenv("COPILOT_DB", url)
        mp.delenv("COPILOT_CONFIG", raising=False)
        status = main(
            ["review", str(inputs), "--out", str(root / "out"), "--meta", str(roster), "--no-progress"]
        )
        assert status == 0
        with Store.open(url) as store:
            ids = {key: _id_of(store, name) for key, name in NAMES.items()}
    yield Db(url, root / "home", ids, inputs)


def _id_of(store: Store, file_name: str) -> int:
    [found] = [c.id for c in store.search() if Path(c.file).name == file_name]
    return found


@pytest.fixture()
def db(template: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Db:
    source = Path(sa.make_url(template.url).database or "")
    copy = tmp_path / "reviews.db"
    shutil.copy(source, copy)
    url = f"sqlite:///{copy}"
    home = tmp_path / "home"
    monkeypatch.setenv("COPILOT_HOME", str(home))
    monkeypatch.setenv("COPILOT_DB", url)
    monkeypatch.delenv("COPILOT_CONFIG", raising=False)
    return Db(url, home, template.ids, template.inputs)


def _search_ids(capsys: pytest.CaptureFixture[str], *filters: str) -> set[int]:
    status, out, _ = _run(capsys, "store", "search", *filters, "--json")
    assert status == 0
    return {row["id"] for row in json.loads(out)}


def _age(url: str, call_id: int, days: float) -> None:
    """Pretend a call was reviewed ``days`` ago (through the reflected table, so stored as the store stores)."""
    engine = sa.create_engine(url)
    calls = sa.Table("calls", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(
            calls.update()
            .where(calls.c.id == call_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )
    engine.dispose()


def _keep(db: Db, tmp_path: Path, call_id: int) -> Path:
    """A kept recording for a stored call, written by the batch's own keep_audio."""
    with Store.open(db.url) as store:
        digest = store.load_call(call_id).summary.content_hash
    recording = tmp_path / f"rec{call_id}.wav"
    recording.write_bytes(b"RIFF" + bytes(40))
    return keep_audio(recording, digest)


# ---- search -----------------------------------------------------------------------------------------


def test_search_filters_pick_the_right_calls(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad, phone = db.ids["good"], db.ids["bad"], db.ids["phone"]
    assert _search_ids(capsys) == {good, bad, phone}
    assert _search_ids(capsys, "--agent", "A017") == {good, phone}
    assert _search_ids(capsys, "--team", "south") == {bad}
    assert _search_ids(capsys, "--queue", "repair") == {good, phone}
    assert _search_ids(capsys, "--since", "2024-02-01", "--until", "2024-02-05") == {bad}  # inclusive
    assert _search_ids(capsys, "--until", "2024-01-31") == {good}

    with Store.open(db.url) as store:
        good_call, bad_call = store.load_call(good), store.load_call(bad)
    assert good_call.summary.score > bad_call.summary.score
    middle = (good_call.summary.score + bad_call.summary.score) / 2
    assert bad not in _search_ids(capsys, "--min-score", f"{middle}")
    assert _search_ids(capsys, "--max-score", f"{middle}") == {bad}

    passed_by_good = {c.id for c in good_call.checks if c.passed}
    failed_by_bad = [c.id for c in bad_call.checks if not c.passed and c.id in passed_by_good]
    assert failed_by_bad, "bad_call should fail a check that good_call passes"
    assert bad in _search_ids(capsys, "--failed-check", failed_by_bad[0])
    assert good not in _search_ids(capsys, "--failed-check", failed_by_bad[0])

    bad_only = json.loads((db.inputs / NAMES["bad"]).read_text(encoding="utf-8"))["segments"][-1]["text"][:6]
    assert _search_ids(capsys, "--text", bad_only) == {bad}
    assert _search_ids(capsys, "--text", "[手机号]") == {phone}  # the stored text is redacted ...
    assert _search_ids(capsys, "--text", PHONE) == set()  # ... so the number itself is not there


def test_search_text_ignores_ascii_case_and_is_literal(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    good, phone = db.ids["good"], db.ids["phone"]
    for typed in ("XQB", "xqb", "Xqb", "型号是xqb八十"):  # good_call (and its copy) names model XQB八十
        assert _search_ids(capsys, "--text", typed) == {good, phone}, typed
    with Store.open(db.url) as store:
        calls = _save_text_calls(store)
    for typed in ("iPhone", "iphone", "IPHONE"):
        assert _search_ids(capsys, "--text", typed) == {calls["iphone"]}, typed
    for typed in ("%", "_", "0%", "a_1", "a/b", "c:\\temp"):  # as patterns they match other calls too
        assert _search_ids(capsys, "--text", typed) == {calls["wild"]}, typed
    assert _search_ids(capsys, "--text", "%%") == _search_ids(capsys, "--text", "__") == set()


def test_search_prints_a_table(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "store", "search", "--agent", "B002")
    assert status == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["id", "file", "agent"]
    assert row.split()[:5] == [str(db.ids["bad"]), NAMES["bad"], "B002", "south", "2024-02-05"]
    status, out, _ = _run(capsys, "store", "search", "--agent", "nobody")
    assert status == 0 and "no stored call" in out


# ---- show -------------------------------------------------------------------------------------------


def test_show_prints_evidence_and_clauses_redacted(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.open(db.url) as store:
        bad = store.load_call(db.ids["bad"])
    status, out, _ = _run(capsys, "store", "show", str(db.ids["bad"]))
    assert status == 0
    failed = [c for c in bad.checks if not c.passed]
    assert failed
    for check in failed:
        assert f"FAIL {check.id}" in out
        for e in check.evidence:
            assert f"{e.start:6.1f}-{e.end:6.1f}] {e.speaker}: {e.text}" in out
        if check.clause.quote:
            assert check.clause.quote in out

    status, out, _ = _run(capsys, "store", "show", str(db.ids["phone"]))
    assert status == 0
    assert PHONE not in out and "[手机号]" in out  # the greeting's evidence, as stored
    status, out, _ = _run(capsys, "store", "show", str(db.ids["phone"]), "--json")
    shown = json.loads(out)
    assert shown["id"] == db.ids["phone"] and PHONE not in out
    assert "[手机号]" in shown["segments"][0]["text"]
    assert {c["id"] for c in shown["checks"]} and all("clause" in c for c in shown["checks"])


# ---- export -----------------------------------------------------------------------------------------


def test_export_csv_and_json_round_trip(db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.open(db.url) as store:
        expected = {c.id: c for c in store.search(ReviewFilter(agent="A017"))}
    assert set(expected) == {db.ids["good"], db.ids["phone"]}

    out_csv = tmp_path / "x" / "a017.csv"
    status, out, _ = _run(
        capsys, "store", "export", "--format", "csv", "--out", str(out_csv), "--agent", "A017"
    )
    assert status == 0 and "2 call(s)" in out
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert {int(r["id"]) for r in rows} == set(expected)
    for r in rows:
        call = expected[int(r["id"])]
        assert r["agent"] == "A017" and r["team"] == "north" and r["file"] == call.file
        assert float(r["score"]) == pytest.approx(call.score, abs=0.01)
        assert r["failed_checks"].split(";") == list(call.failed_checks) or (
            r["failed_checks"] == "" and not call.failed_checks
        )

    out_json = tmp_path / "all.json"
    status, _, _ = _run(capsys, "store", "export", "--format", "json", "--out", str(out_json))
    assert status == 0
    document = json.loads(out_json.read_text(encoding="utf-8"))
    assert {c["id"] for c in document["calls"]} == set(db.ids.values())
    by_id = {c["id"]: c for c in document["calls"]}
    assert by_id[db.ids["bad"]]["date"] == "2024-02-05" and by_id[db.ids["bad"]]["queue"] == "billing"


# ---- purge ------------------------------------------------------------------------------------------


def test_purge_dry_run_deletes_nothing(db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = _keep(db, tmp_path, db.ids["bad"])
    _age(db.url, db.ids["bad"], 40)
    status, out, _ = _run(capsys, "store", "purge", "--older-than", "30", "--dry-run", "--json")
    assert status == 0
    result = json.loads(out)
    assert result["dry_run"] and result["calls"] == 1 and result["call_ids"] == [db.ids["bad"]]
    assert result["audio_files"] == [str(kept)]
    assert kept.is_file()
    with Store.open(db.url) as store:
        assert store.count_calls() == 3


def test_purge_removes_exactly_the_old_calls_and_their_audio(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_audio = _keep(db, tmp_path, db.ids["bad"])
    new_audio = _keep(db, tmp_path, db.ids["good"])
    orphan = old_audio.with_name("f" * 64 + ".wav")  # its review was deleted some other way, long ago
    orphan.write_bytes(b"x")
    long_ago = (datetime.now(UTC) - 60 * DAY).timestamp()
    os.utime(orphan, (long_ago, long_ago))
    recent_orphan = old_audio.with_name("e" * 64 + ".wav")  # perhaps a batch writing it right now
    recent_orphan.write_bytes(b"x")
    _age(db.url, db.ids["bad"], 40)
    _age(db.url, db.ids["phone"], 20)

    status, out, _ = _run(capsys, "store", "purge", "--older-than", "30")
    assert status == 0 and "removed 1 review(s) and 2 kept recording(s)" in out
    with Store.open(db.url) as store:
        assert {c.id for c in store.search()} == {db.ids["good"], db.ids["phone"]}
        with pytest.raises(StoreError):
            store.load_call(db.ids["bad"])
        with store.engine.connect() as conn:  # no orphaned rows of the purged call
            for table in ("segments", "checks", "flags"):
                left = conn.execute(
                    sa.text(f"SELECT count(*) FROM {table} WHERE call_id = :i"), {"i": db.ids["bad"]}
                )
                assert left.scalar_one() == 0, table
    assert not old_audio.exists() and not orphan.exists()
    assert new_audio.is_file() and recent_orphan.is_file()


def test_purge_keeps_audio_a_newer_review_of_the_same_content_uses(db: Db, tmp_path: Path) -> None:
    audio = _keep(db, tmp_path, db.ids["bad"])
    with Store.open(db.url) as store:
        digest = store.load_call(db.ids["bad"]).summary.content_hash
        newer = store.save_review(
            CallReview("bad_call", 5.0, (Segment("agent", 0.0, 5.0, "您好"),), (), (), 50.0),
            file="bad_call.json",
            content_hash=digest,
            provenance=Provenance("0" * 64, {}, {}),  # another configuration
        ).call_id
    _age(db.url, db.ids["bad"], 40)
    with Store.open(db.url) as store:
        result = purge(store, 30, db.home / KEPT_AUDIO_DIR)
        assert result.call_ids == (db.ids["bad"],) and result.audio_files == ()
        assert newer in {c.id for c in store.search()}
    assert audio.is_file()


def test_purge_defaults_to_the_configured_retention_and_takes_a_clock(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[privacy]\nretention_days = 10\n", encoding="utf-8")
    _age(db.url, db.ids["good"], 11)
    _age(db.url, db.ids["phone"], 9)
    status, out, _ = _run(capsys, "--config", str(config), "store", "purge", "--json")
    assert status == 0 and json.loads(out)["call_ids"] == [db.ids["good"]]
    with Store.open(db.url) as store:
        later = datetime.now(UTC) + 10 * DAY  # the phone call is 19 days old then, bad_call 10 days
        result = purge(store, 15, db.home / KEPT_AUDIO_DIR, now=later)
        assert result.call_ids == (db.ids["phone"],)
        assert {c.id for c in store.search()} == {db.ids["bad"]}


def test_a_review_batch_enforces_retention_first(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = _keep(db, tmp_path, db.ids["bad"])
    _age(db.url, db.ids["bad"], 91)  # past the default 90 days
    bad_file = db.inputs / NAMES["bad"]
    status, _, err = _run(capsys, "review", str(bad_file), "--out", str(tmp_path / "out"), "--no-progress")
    assert status == 0
    notes = [line for line in err.splitlines() if "retention" in line]
    assert len(notes) == 1 and "1 review(s) and 1 kept recording(s)" in notes[0]
    assert not audio.exists()
    with Store.open(db.url) as store:
        rereviewed = _id_of(store, NAMES["bad"])  # purged, so reviewed afresh rather than skipped
        assert rereviewed != db.ids["bad"] and store.count_calls() == 3
    status, _, err = _run(capsys, "review", str(bad_file), "--out", str(tmp_path / "out"), "--no-progress")
    assert status == 0 and "retention" not in err  # nothing to purge: no line


# ---- bad arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["store", "purge", "--older-than", "-5"], "--older-than must be at least 1"),
        (["store", "purge", "--older-than", "0"], "--older-than must be at least 1"),
        (["store", "purge", "--older-than", "ten"], "whole number"),
        (["store", "show", "999999"], "no stored review with id 999999"),
        (["store", "show", "abc"], "CALL_ID must be a whole number"),
        (["store", "search", "--since", "31/01/2024"], "--since must be a date"),
        (["store", "search", "--since", "2024-03-01", "--until", "2024-02-01"], "after --until"),
        (["store", "search", "--min-score", "high"], "--min-score must be a number"),
    ],
)
def test_bad_arguments_give_one_line(
    db: Db, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert says in _one_line_error(*_run(capsys, *argv))
    with Store.open(db.url) as store:
        assert store.count_calls() == 3  # nothing was purged on the way


def test_unwritable_export_gives_one_line(db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    line = _one_line_error(
        *_run(capsys, "store", "export", "--format", "csv", "--out", str(blocker / "x.csv"))
    )
    assert "cannot write" in line
    line = _one_line_error(*_run(capsys, "store", "export", "--format", "json", "--out", str(tmp_path)))
    assert "is a folder" in line


def test_retention_days_below_one_is_refused_by_the_config_loader(
    db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for days in (0, -3):
        config = tmp_path / f"r{days}.toml"
        config.write_text(f"[privacy]\nretention_days = {days}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="retention_days must be at least 1"):
            load_config(config)
        line = _one_line_error(*_run(capsys, "--config", str(config), "store", "purge"))
        assert "retention_days" in line
    with Store.open(db.url) as store:
        assert store.count_calls() == 3
