"""Stored reviews, ratings, block list and evaluation runs (see :mod:`copilot.qa.store.db`)."""

from copilot.qa.store.db import DB_ENV, Store, database_url
from copilot.qa.store.fingerprint import content_hash, model_versions, provenance
from copilot.qa.store.records import (
    NO_SPEECH,
    CallSummary,
    EvalRun,
    Provenance,
    Rating,
    ReviewFilter,
    ReviewLike,
    SaveOutcome,
    StoredCall,
    StoredSegment,
)

__all__ = [
    "DB_ENV",
    "NO_SPEECH",
    "CallSummary",
    "EvalRun",
    "Provenance",
    "Rating",
    "ReviewFilter",
    "ReviewLike",
    "SaveOutcome",
    "Store",
    "StoredCall",
    "StoredSegment",
    "content_hash",
    "database_url",
    "model_versions",
    "provenance",
]
