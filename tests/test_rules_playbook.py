"""The playbook: every clause quotes its handbook, and mistakes in the YAML are caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from copilot.judgement.playbook import (
    PhrasesParams,
    PlaybookError,
    default_playbook_path,
    load_playbook,
    parse_playbook,
)
from copilot.types import Clause

REPO = Path(__file__).resolve().parent.parent
REQUIRED_CHECKS = {
    "greeting",
    "recap",
    "hold",
    "apology",
    "closing",
    "forbidden",
    "speech_rate",
    "interruption",
    "silence",
}


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _clauses() -> list[Clause]:
    playbook = load_playbook()
    clauses = [c.clause for c in playbook.checks]
    for check in playbook.checks:
        if isinstance(check.params, PhrasesParams):
            clauses.extend(item.clause for item in check.params.items)
    return clauses


def test_default_playbook_has_the_required_checks() -> None:
    playbook = load_playbook()
    assert set(playbook.check_ids) >= REQUIRED_CHECKS
    assert default_playbook_path().is_file()
    assert all(c.weight > 0 for c in playbook.checks)


@pytest.mark.parametrize("clause", _clauses(), ids=lambda c: f"{c.document[:3]}:{c.quote[:12]}")
def test_every_quote_is_in_the_handbook_it_names(clause: Clause, shared_dir: Path) -> None:
    sources = [shared_dir / "handbooks" / clause.document, REPO / "knowledge" / "raw" / clause.document]
    texts = [_compact(p.read_text(encoding="utf-8")) for p in sources if p.is_file()]
    assert texts, f"handbook {clause.document} not found"
    assert all(_compact(clause.quote) in text for text in texts), clause.quote


def _data() -> dict:
    return yaml.safe_load((REPO / "knowledge" / "playbook.yaml").read_text(encoding="utf-8"))


def test_bad_regex_is_reported_with_its_place() -> None:
    data = _data()
    data["cues"]["recap"]["patterns"].append("(unclosed")
    with pytest.raises(PlaybookError, match=r"cues.recap.patterns\[\d+\] is not a valid regex"):
        parse_playbook(data)


def test_an_unknown_cue_key_is_named_on_one_line() -> None:
    data = _data()
    data["cues"]["recap"]["\n"] = 0  # hypothesis found it: the key's line break split the message
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(data)
    assert str(raised.value) == "cues.recap has unknown key(s): '\\n'"


def test_a_penalty_named_with_a_line_break_is_named_on_one_line() -> None:
    data = _data()
    data["scoring"]["flag_penalty"]["\n"] = 3  # hypothesis found this one too
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(data)
    assert str(raised.value) == "scoring.flag_penalty['\\n'] must be one of info, minor, major, critical"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["checks"][0].update(kind="magic"), "unknown check kind"),
        (lambda d: d["checks"][0]["params"].update(require=["nope"]), "undefined cue set"),
        (lambda d: d["checks"][0].pop("clause"), "clause must be a mapping"),
        (lambda d: d["checks"][1].update(id="greeting"), "duplicate check id"),
        (lambda d: d.update(version=7), "version"),
        (lambda d: d["checks"][0].update(severity="fatal"), "severity"),
    ],
)
def test_invalid_playbooks_are_refused(mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    data = _data()
    mutate(data)
    with pytest.raises(PlaybookError, match=fragment):
        parse_playbook(data)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="not found"):
        load_playbook(tmp_path / "none.yaml")
