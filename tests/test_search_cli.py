"""`copilot search --file … --json` with the real packaged models: what it echoes of the caller's lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.commands.cli import main
from copilot.transcription.redact import MASKS
from tests.cli_lists import list_answers

LINE = "我的手机号是13812345678,洗衣机不脱水了"


@pytest.mark.real
def test_the_echoed_query_is_redacted_and_the_search_runs_on_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (answer,) = list_answers(tmp_path, capsys, "search", LINE + "\n")
    assert "13812345678" not in answer["query"] and MASKS["mobile"] in answer["query"]
    assert answer["answer"] == "passages" and answer["hits"]
    assert main(["search", LINE]) == 0
    shown = capsys.readouterr().out
    assert "13812345678" not in shown and MASKS["mobile"] in shown


@pytest.mark.real
def test_redaction_off_echoes_the_query_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "no-redaction.toml"
    config.write_text("[privacy]\nredact = false\n", encoding="utf-8")
    assert main(["--config", str(config), "search", LINE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["query"] == LINE


@pytest.mark.real
def test_answer_n_is_about_line_n_blank_lines_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = list_answers(tmp_path, capsys, "search", "洗衣机不脱水了\n\n   \n退款什么时候到账\n\n")
    assert [a["query"] for a in answers] == [
        "洗衣机不脱水了",
        "",
        "",
        "退款什么时候到账",
    ]  # no trailing blank
    assert (
        [a["answer"] for a in answers][1:3] == ["none", "none"] and answers[0]["hits"] and answers[3]["hits"]
    )
