"""Read a raw handbook (txt / md / docx / pdf) into plain text, one paragraph a line."""

from __future__ import annotations

import logging
from pathlib import Path

from copilot.errors import KnowledgeError

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".pdf")
# Encodings tried in order for text files: Chinese handbooks saved on Windows are often GB18030.
TEXT_ENCODINGS = ("utf-8-sig", "gb18030")
# A handbook of a thousand pages is a few MB of text (tens as a PDF with pictures). A bigger file is not
# a handbook, and text files are read whole, so it is refused before a byte is read.
MAX_HANDBOOK_BYTES = 256 * 1024 * 1024


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\0" in data:  # UTF-8 and GB18030 both accept NUL bytes; text never has them
        raise KnowledgeError(f"{path.name} is binary, not a text handbook")
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise KnowledgeError(f"{path.name} is neither UTF-8 nor GB18030 text")


def _read_docx(path: Path) -> str:
    import zipfile

    import docx

    if not zipfile.is_zipfile(path):
        raise KnowledgeError(f"{path.name} is not a readable .docx file (not a Word document)")
    try:
        document = docx.Document(str(path))
    except Exception as e:  # python-docx raises several unrelated types for a bad file
        raise KnowledgeError(f"{path.name} is not a readable .docx file: {e}") from e
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        text = paragraph.text.strip()
        if text and style.lower().startswith("heading"):
            level = "".join(ch for ch in style if ch.isdigit()) or "1"
            text = "#" * int(level) + " " + text  # keep Word's heading levels as Markdown headings
        lines.append(text)
    return "\n".join(lines)


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # its warnings about a broken file are many lines; ours is one
    try:
        reader = PdfReader(str(path))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, OSError, ValueError) as e:
        raise KnowledgeError(f"{path.name} is not a readable PDF: {e}") from e
    finally:
        pypdf_log.setLevel(level)


def read_document(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise KnowledgeError(
            f"{path.name}: unsupported handbook format (use {', '.join(SUPPORTED_SUFFIXES)})"
        )
    try:
        size = path.stat().st_size
        if size > MAX_HANDBOOK_BYTES:
            raise KnowledgeError(
                f"{path.name} is too large for a handbook ({size / 2**20:.0f} MB; "
                f"at most {MAX_HANDBOOK_BYTES // 2**20} MB)"
            )
        if suffix == ".docx":
            return _read_docx(path)
        if suffix == ".pdf":
            return _read_pdf(path)
        return _read_text(path)
    except FileNotFoundError as e:
        raise KnowledgeError(f"handbook not found: {path}") from e
    except OSError as e:  # a folder named like a handbook, no permission
        raise KnowledgeError(f"cannot read handbook {path.name}: {e.strerror or e}") from e
