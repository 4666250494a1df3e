"""Read and write JSON transcripts.

Two shapes are read (one call per file):

* ``segments``: a list of ``{role, start, end, text}`` (times in seconds), plus optional ``name`` and
  ``duration`` — the shape of ``../shared/calls/*.json`` and the one written;
* ``turns``: a list of ``{role, text}`` in spoken order, without times (a chat log, or a call transcribed
  elsewhere), plus optional ``name`` / ``id``. The transcript is then ``timed=False``: every segment lasts
  0 s, and the checks that need times (hold, silence, pace, talking over) say they cannot tell.

Roles: ``agent``, ``customer``, ``unknown``; ``system`` (and other non-party speakers) is read as
``unknown``, and common synonyms (``user``/``client`` -> customer, ``staff``/``assistant``/``客服`` -> agent)
are accepted. Everything else in the document is ignored on reading.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from copilot.errors import TranscriptError
from copilot.transcription.redact import redact
from copilot.types import ROLES, Role, Segment, Transcript

# A transcript of a ten-hour call is a few MB; anything much bigger is not a transcript, and reading it
# whole (json.loads needs it all) could exhaust memory, so it is refused before a byte is read.
MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024
MAX_SECONDS = 24 * 3600.0  # s: no call lasts a day; larger (or NaN/Infinity) times are data errors
SHOWN_VALUE_CHARS = 40  # a bad value is quoted in the error this short, and redacted (it may be personal)


def _shown(value: Any) -> str:
    """A bad value for an error message: short, and with personal numbers masked (messages reach logs)."""
    text = repr(value)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "…"
    return redact(text)


@functools.lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters made Simplified, as the ASR output, handbooks and playbook are."""
    converted: str = _t2s().convert(text)
    return converted


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranscriptError(f"{where} must be a number of seconds, got {_shown(value)}")
    if value < 0:
        raise TranscriptError(f"{where} must not be negative, got {_shown(value)}")
    if not value <= MAX_SECONDS:  # also NaN and Infinity (json reads both), and ints too big for a float
        raise TranscriptError(
            f"{where} must be a finite number of seconds up to {MAX_SECONDS:.0f}, got {_shown(value)}"
        )
    return float(value)


# Speaker names other tools write, as the roles of this product.
ROLE_SYNONYMS: dict[str, Role] = {
    "system": "unknown",
    "bot": "unknown",
    "other": "unknown",
    "user": "customer",
    "client": "customer",
    "caller": "customer",
    "用户": "customer",
    "客户": "customer",
    "staff": "agent",
    "assistant": "agent",
    "operator": "agent",
    "helpdesk": "agent",
    "客服": "agent",
}


def _role(value: Any, where: str) -> Role:
    if value in ROLES:
        role: Role = value
        return role
    if isinstance(value, str) and value.strip().lower() in ROLE_SYNONYMS:
        return ROLE_SYNONYMS[value.strip().lower()]
    raise TranscriptError(f"{where}.role must be one of {', '.join(ROLES)} (or system), got {_shown(value)}")


def _text(item: dict[str, Any], where: str) -> str:
    text = item["text"]
    if not isinstance(text, str):
        raise TranscriptError(f"{where}.text must be a string, got {type(text).__name__}")
    return to_simplified(text.strip())


def _segment(item: Any, index: int, source: str, *, timed: bool = True) -> Segment:
    where = f"{source}: {'segments' if timed else 'turns'}[{index}]"
    if not isinstance(item, dict):
        raise TranscriptError(f"{where} must be an object, got {type(item).__name__}")
    required = ("role", "start", "end", "text") if timed else ("role", "text")
    missing = [key for key in required if key not in item]
    if missing:
        raise TranscriptError(f"{where} is missing {', '.join(missing)}")
    speaker = _role(item["role"], where)
    text = _text(item, where)
    if not timed:
        return Segment(speaker=speaker, start=0.0, end=0.0, text=text)
    start = _number(item["start"], f"{where}.start")
    end = _number(item["end"], f"{where}.end")
    if end < start:
        raise TranscriptError(f"{where} ends ({end}) before it starts ({start})")
    return Segment(speaker=speaker, start=start, end=end, text=text)


def transcript_from_dict(data: Any, source: str, *, label: str = "") -> Transcript:
    """Validate a decoded JSON document and build a :class:`Transcript` (segments sorted by start).

    ``source`` names the call when the document has no ``name``; errors name ``label`` (default: source).
    """
    where = label or source
    if not isinstance(data, dict):
        raise TranscriptError(f"{where}: a transcript must be a JSON object with 'segments' or 'turns'")
    name = data.get("name") or data.get("id")
    source = name if isinstance(name, str) and name else source
    if "segments" not in data and "turns" in data:
        turns = data["turns"]
        if not isinstance(turns, list):
            raise TranscriptError(f"{where}: 'turns' must be a list")
        # spoken order is the list order: nothing to sort, and the times say nothing
        untimed = tuple(_segment(item, i, where, timed=False) for i, item in enumerate(turns))
        return Transcript(source=source, duration=0.0, segments=untimed, timed=False)
    if "segments" not in data:
        raise TranscriptError(f"{where}: missing 'segments' (or 'turns')")
    items = data["segments"]
    if not isinstance(items, list):
        raise TranscriptError(f"{where}: 'segments' must be a list")
    segments = tuple(
        sorted((_segment(item, i, where) for i, item in enumerate(items)), key=lambda s: s.start)
    )
    last_end = max((s.end for s in segments), default=0.0)
    duration = _number(data["duration"], f"{where}: duration") if "duration" in data else last_end
    # A segments file whose times are all 0 (written by a tool that had none) is untimed too.
    timed = not segments or last_end > 0
    return Transcript(source=source, duration=max(duration, last_end), segments=segments, timed=timed)


def check_size(file: Path) -> None:
    """Refuse a file too large to be a transcript, from its size alone (it is not read), and anything that is
    not a regular file: a FIFO would block the read, /dev/zero reports 0 bytes and never ends."""
    from copilot.transcription.audio import file_problem

    problem = file_problem(file)
    if problem and problem != "not found":  # not found: stat() below says so, as the callers expect
        raise TranscriptError(f"transcript {problem}: {file}")
    size = file.stat().st_size
    if size > MAX_TRANSCRIPT_BYTES:
        raise TranscriptError(
            f"{file} is too large for a transcript ({size / 2**20:.0f} MB; "
            f"at most {MAX_TRANSCRIPT_BYTES // 2**20} MB)"
        )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: ``"\\ud800"`` is valid JSON and an undecodable
    file name decodes to one, but no text holding one can be encoded (written, stored, printed)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def without_lone_surrogates(value: Any) -> Any:
    """``value`` (decoded JSON) with :func:`valid_text` strings: one broken character must not lose a call."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value


def read_transcript(path: str | os.PathLike[str]) -> Transcript:
    """Load a JSON transcript; :class:`TranscriptError` names the file and the bad field."""
    file = Path(path)
    try:
        check_size(file)
        data = json.loads(file.read_text(encoding="utf-8-sig"))  # -sig: a BOM from Windows editors is fine
        data = without_lone_surrogates(data)
    except FileNotFoundError as e:
        raise TranscriptError(f"transcript not found: {file}") from e
    except OSError as e:  # a folder, no permission, an I/O error
        raise TranscriptError(f"cannot read {file}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise TranscriptError(f"{file} is not a JSON transcript: not UTF-8 text") from e
    except (ValueError, RecursionError) as e:  # JSONDecodeError, a 5000-digit number, nesting too deep
        raise TranscriptError(f"{file} is not a JSON transcript: {' '.join(str(e).split())[:120]}") from e
    transcript = transcript_from_dict(data, file.stem, label=str(file))
    return transcript


def transcript_to_dict(transcript: Transcript, *, redacted: bool = True) -> dict[str, Any]:
    """The JSON shape of a transcript; personal numbers are masked unless ``redacted`` is False."""
    clean = redact if redacted else (lambda text: text)
    return {
        "name": transcript.source,
        "duration": round(transcript.duration, 3),
        "segments": [
            {"role": s.speaker, "start": round(s.start, 3), "end": round(s.end, 3), "text": clean(s.text)}
            for s in transcript.segments
        ],
    }


def write_transcript(transcript: Transcript, path: str | os.PathLike[str], *, redacted: bool = True) -> None:
    """Write ``transcript`` as UTF-8 JSON (redacted by default: transcripts are customer data)."""
    Path(path).write_text(
        json.dumps(transcript_to_dict(transcript, redacted=redacted), ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )
