"""The scorecard from the recordings matches the scorecard from the scripts (real Whisper, real rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.config import Config
from copilot.qa.calls import load_call
from copilot.qa.review import review_call
from copilot.session.engines import Services

EXPECTED_FAILURES = {"greeting", "forbidden", "apology", "closing", "interruption"}


@pytest.fixture(scope="module")
def services(installed_models: None) -> Services:
    return Services(Config())


@pytest.mark.real
@pytest.mark.parametrize("source", ["json", "wav"])
def test_good_call_passes_every_check(services: Services, shared_dir: Path, source: str) -> None:
    review = review_call(
        load_call(shared_dir / "calls" / f"good_call.{source}", services), engine=services.rules
    )
    failed = {c.id: c.message for c in review.checks if c.status == "fail"}
    assert failed == {}  # the apology was never owed: unknown, which is not a failure
    assert review.score == 100.0


@pytest.mark.real
@pytest.mark.parametrize("source", ["json", "wav"])
def test_bad_call_fails_the_expected_checks(services: Services, shared_dir: Path, source: str) -> None:
    transcript = load_call(shared_dir / "calls" / f"bad_call.{source}", services)
    review = review_call(transcript, engine=services.rules)
    failed = {c.id for c in review.checks if not c.passed}
    assert failed >= EXPECTED_FAILURES
    assert all(c.clause.quote for c in review.checks)
    if source == "wav":  # roles come from the channels: the agent opened with 喂 on the left channel
        assert transcript.segments[0].speaker == "agent"
        assert {s.speaker for s in transcript.segments} == {"agent", "customer"}
