"""Stage 1, audio to text: decode audio, find speech, transcribe each channel, redact personal data.

Owns: audio decoding and chunking (``audio``), the two Whisper backends (``asr``, with ``window`` and
``openai_decode`` for their CPU speed-ups), the streaming commit policy (``streaming``), replaying a file
through it (``playback``), the domain-word correction (``correct``), JSON transcript files
(``transcript_files``) and redaction (``redact``).
May import: ``copilot.config``, ``copilot.errors``, ``copilot.types``, ``copilot.models``.
"""
