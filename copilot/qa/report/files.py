"""Writing report files so that a killed process never leaves a half-written one."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

PARTIAL_PREFIX = ".partial-"  # temporary files; a later run removes leftovers
UNSAFE_CHARS = re.compile(r"[^\w.\-]+")  # \w keeps CJK letters, which file systems accept
MAX_STEM = 80  # characters of a call name kept in its report file name


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=PARTIAL_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_partials(folder: Path) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for leftover in folder.rglob(PARTIAL_PREFIX + "*"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def report_stem(name: str, content_hash: str) -> str:
    """A safe, unique file stem: the call's name plus the start of its content hash."""
    safe = UNSAFE_CHARS.sub("_", name).strip("._")[:MAX_STEM] or "call"
    return f"{safe}-{content_hash[:10]}"
