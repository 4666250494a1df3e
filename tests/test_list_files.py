"""Lists of inputs (`--file`): which lines are read, and that answer N stays about line N."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.commands._common import read_lines
from copilot.errors import CopilotError


def test_blank_lines_are_skipped_for_lists_of_paths_and_kept_for_answers(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("\ufeffa.wav\n\n  b.wav  \n \n\n", encoding="utf-8")
    assert read_lines(str(listed)) == ["a.wav", "b.wav"]
    assert read_lines(str(listed), keep_blank=True) == ["a.wav", "", "b.wav"]  # trailing blanks end the list


def test_a_list_that_is_no_text_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CopilotError, match=r"UTF-8|binary"):
        read_lines(str(broken), keep_blank=True)
