"""Retention: forget reviews older than ``[privacy] retention_days``, with their kept recordings.

A purge deletes every stored review created before the cutoff (all its rows, as
:meth:`Store.delete_call` does) and the raw recordings kept for them under ``COPILOT_HOME/audio``
(``<content sha256><suffix>``). A recording is kept while a newer review of the same content (another
configuration) still refers to it. Kept recordings older than the cutoff that no review refers to any
more (their review deleted some other way) go too. Recordings are removed before their review, so a
failure half-way never leaves audio that no later purge would find.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from copilot.errors import ConfigError, StoreError
from copilot.qa.store.db import Store
from copilot.qa.store.records import CallSummary, ReviewFilter

PAGE = 500  # reviews fetched per query while listing what to purge
MIN_DAYS = 1  # 0 would purge what was reviewed a moment ago; "keep forever" is a large number


@dataclass(frozen=True)
class PurgeResult:
    older_than_days: int
    cutoff: datetime  # reviews stored before this instant (UTC) are purged
    dry_run: bool  # nothing was removed; the counts say what would be
    call_ids: tuple[int, ...]
    audio_files: tuple[Path, ...]

    @property
    def calls(self) -> int:
        return len(self.call_ids)

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{verb} {self.calls} review(s) and {len(self.audio_files)} kept recording(s) "
            f"stored more than {self.older_than_days} days ago (before {self.cutoff:%Y-%m-%d %H:%M} UTC)"
        )


def check_days(days: int, what: str = "the retention period") -> int:
    if days < MIN_DAYS:
        raise ConfigError(f"{what} must be at least {MIN_DAYS} day (a large number keeps reviews longer)")
    return days


def cutoff(days: int, now: datetime | None = None) -> datetime:
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment - timedelta(days=check_days(days))


def matching(store: Store, where: ReviewFilter) -> Iterator[CallSummary]:
    """Every match, a page at a time (a search returns at most ``limit`` rows)."""
    offset = 0
    while True:
        page = store.search(dataclasses.replace(where, limit=PAGE, offset=offset))
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _reviews_of(store: Store, hashes: Sequence[str]) -> Iterator[CallSummary]:
    for i in range(0, len(hashes), PAGE):  # bounded IN (...) lists
        yield from matching(store, ReviewFilter(content_hashes=tuple(hashes[i : i + PAGE])))


def _kept_files(audio_dir: Path) -> dict[str, list[Path]]:
    """Kept recordings by content hash (in-progress copies start with a dot and are left alone)."""
    found: dict[str, list[Path]] = {}
    if not audio_dir.is_dir():
        return found
    for path in sorted(audio_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            found.setdefault(path.name.split(".", 1)[0], []).append(path)
    return found


def _older(path: Path, moment: datetime) -> bool:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC) < moment
    except FileNotFoundError:
        return False


def purge(
    store: Store,
    older_than_days: int,
    audio_dir: Path,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Delete (or with ``dry_run`` only list) reviews stored more than ``older_than_days`` ago."""
    before = cutoff(older_than_days, now)
    expired = list(matching(store, ReviewFilter(reviewed_before=before)))
    expired_ids = {c.id for c in expired}
    kept = _kept_files(audio_dir)
    users = list(_reviews_of(store, sorted(kept)))
    referenced = {c.content_hash for c in users}
    still_used = {c.content_hash for c in users if c.id not in expired_ids}
    doomed: list[Path] = []
    for digest, files in kept.items():
        if digest in still_used:
            continue
        if digest in referenced or all(_older(f, before) for f in files):
            doomed += files
    if not dry_run:
        for path in doomed:
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                raise StoreError(f"cannot remove kept recording {path}: {e.strerror or e}") from e
        for call in expired:
            store.delete_call(call.id)
    return PurgeResult(
        older_than_days=older_than_days,
        cutoff=before,
        dry_run=dry_run,
        call_ids=tuple(sorted(expired_ids)),
        audio_files=tuple(sorted(doomed)),
    )
