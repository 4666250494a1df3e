"""Small helpers shared by the CLI sub-commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from copilot.config import Config, load_config
from copilot.errors import CopilotError


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def print_json(value: Any) -> None:
    """One JSON document on one line (JSONL-friendly), Chinese kept readable."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# A list of paths or utterances is small; a bigger file is a mistake (a recording, a disk image) and is
# refused before it is read, never loaded whole.
MAX_LIST_BYTES = 16 * 1024 * 1024


def read_lines(path: str, *, keep_blank: bool = False) -> list[str]:
    """Non-empty lines of a UTF-8 text file (``-`` reads standard input). ``keep_blank``: every line up to the
    last non-empty one, blank ones as "", so that answer N (JSONL) is always about line N of the file."""
    try:
        if path == "-":
            text = sys.stdin.read(MAX_LIST_BYTES + 1)
            size = len(text.encode("utf-8"))
        else:
            size = Path(path).stat().st_size
            text = "" if size > MAX_LIST_BYTES else Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise CopilotError(f"file not found: {path}") from e
    except OSError as e:  # a folder, no permission
        raise CopilotError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CopilotError(f"{path} is not UTF-8 text") from e
    if size > MAX_LIST_BYTES:
        raise CopilotError(f"{path} is too large for a list of lines (at most {MAX_LIST_BYTES // 2**20} MB)")
    if "\0" in text:
        raise CopilotError(f"{path} is binary, not a text file of lines")
    lines = [line.strip() for line in text.splitlines()]
    if not keep_blank:
        return [line for line in lines if line]
    while lines and not lines[-1]:
        lines.pop()
    return lines
