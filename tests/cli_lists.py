"""Running a command on a list of lines (`--file LIST --json`), as a user would, and reading its JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.commands.cli import main


def list_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, *options: str
) -> list[dict[str, Any]]:
    """``copilot COMMAND --file LIST --json OPTIONS`` with ``text`` as the list: one answer per JSONL line."""
    listed = tmp_path / f"{command}-list.txt"
    listed.write_text(text, encoding="utf-8")
    assert main([command, "--file", str(listed), "--json", *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]
