"""Typed domain errors.

Library code raises these; only the edges (CLI exit codes, the app's ``gr.Error``) turn them into
messages. Every error carries a one-line, user-readable message.
"""

from __future__ import annotations


class CopilotError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code = 1


class ConfigError(CopilotError):
    """The configuration file or an option is invalid."""

    exit_code = 2


class ModelError(CopilotError):
    """A model is missing, corrupt, or cannot be loaded."""

    exit_code = 3


class ModelNotInstalledError(ModelError):
    """A packaged model has not been provisioned yet."""


class ChecksumMismatchError(ModelError):
    """An assembled artefact does not match the SHA-256 pinned in the repository."""


class AudioError(CopilotError):
    """An audio file cannot be decoded or has an unsupported shape."""

    exit_code = 4


class TranscriptError(CopilotError):
    """A JSON transcript is malformed."""

    exit_code = 4


class KnowledgeError(CopilotError):
    """A handbook cannot be read, or the knowledge base / index is missing or stale."""

    exit_code = 5


class IndexMismatchError(KnowledgeError):
    """A persisted index does not match the corpus or the embedder it would be used with."""


class StoreError(CopilotError):
    """The review database cannot be read or written."""

    exit_code = 6


def install_hint(package: str, extra: str | None = None) -> str:
    """A sentence telling the user how to get a missing optional dependency."""
    target = f"'.[{extra}]'" if extra else package
    return f"install it with: .venv/bin/pip install {target}"
