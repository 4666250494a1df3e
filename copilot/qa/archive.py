"""The one way a review reaches the database: the batch, the app's upload and ``summarize`` all save here.

Saving means, everywhere alike: the review with its transcript, call name and file path redacted per
``[privacy] redact`` / ``redact_kinds`` (the path kept as given with ``keep_paths``), the
recording kept when ``[privacy] keep_audio`` is on and the call was reviewed from audio, and reviews older
than ``[privacy] retention_days`` purged first (once per batch or upload, by :func:`enforce_retention`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from copilot.config import PrivacyConfig, copilot_home
from copilot.qa.metadata import CallMetadata
from copilot.qa.review import TRANSCRIPT_SUFFIXES
from copilot.qa.store import Provenance, ReviewLike, Store
from copilot.qa.store.db import NO_METADATA, SaveOutcome

KEPT_AUDIO_DIR = "audio"  # under COPILOT_HOME: raw recordings kept when [privacy] keep_audio is true


def keep_audio(path: Path, digest: str) -> Path:
    """Copy a reviewed recording to ``COPILOT_HOME/audio/<sha256><suffix>`` (renamed into place)."""
    folder = copilot_home() / KEPT_AUDIO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}{path.suffix.lower()}"
    if not target.is_file():
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, partial)
        partial.replace(target)
    return target


def save_review(
    store: Store,
    review: ReviewLike,
    *,
    path: Path,
    content_hash: str,
    provenance: Provenance,
    privacy: PrivacyConfig,
    name: str | None = None,
    meta: CallMetadata = NO_METADATA,
    force: bool = False,
) -> SaveOutcome:
    """Store one review of the call file ``path`` (shown as ``name``, default the path as given)."""
    saved = store.save_review(
        review,
        file=name if name is not None else str(path),
        content_hash=content_hash,
        provenance=provenance,
        meta=meta,
        force=force,
        redacted=privacy.redact,
        kinds=privacy.redact_kinds,
        keep_path=privacy.keep_paths,
    )
    if privacy.keep_audio and path.suffix.lower() not in TRANSCRIPT_SUFFIXES and path.is_file():
        keep_audio(path, content_hash)
    return saved


def shown_path(path: str, privacy: PrivacyConfig) -> str:
    """A call's path (or a message naming it) as batch outputs show it: redacted like the transcript
    unless ``[privacy] keep_paths``; never with a lone surrogate (an undecodable file name)."""
    from copilot.qa.store.db import storable
    from copilot.transcription.redact import name_redactor

    return storable(name_redactor(privacy.redact and not privacy.keep_paths, privacy.redact_kinds)(path))


def enforce_retention(store: Store, privacy: PrivacyConfig) -> None:
    """Forget reviews (and kept recordings) older than ``[privacy] retention_days``."""
    from copilot.qa.store.retention import purge

    done = purge(store, privacy.retention_days, copilot_home() / KEPT_AUDIO_DIR)
    if done.calls or done.audio_files:
        print(f"copilot: retention: {done.describe()}", file=sys.stderr)
