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


def read_lines(path: str) -> list[str]:
    """Non-empty lines of a UTF-8 text file (``-`` reads standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise CopilotError(f"file not found: {path}") from e
    except UnicodeDecodeError as e:
        raise CopilotError(f"{path} is not UTF-8 text") from e
    return [line.strip() for line in text.splitlines() if line.strip()]
