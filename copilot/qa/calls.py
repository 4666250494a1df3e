"""From a call file to a transcript: JSON transcripts are read, recordings are transcribed.

Shared by review, summarize, replay and the app, so every entry point treats a file the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from copilot.qa.review import TRANSCRIPT_SUFFIXES
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Transcript

if TYPE_CHECKING:
    from copilot.session.engines import Services


def is_transcript(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TRANSCRIPT_SUFFIXES


def load_call(path: str | Path, services: Services) -> Transcript:
    """The call's transcript; raises TranscriptError / AudioError with a one-line reason for bad files."""
    if is_transcript(path):
        return read_transcript(path)
    from copilot.transcription.playback import transcribe_file

    return transcribe_file(path, services.config.asr, services.transcriber)
