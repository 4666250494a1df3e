"""Mask personal numbers and addresses in Chinese call text.

Callers read numbers aloud, so a mobile number reaches the transcript as ``13812345678``,
``138-1234-5678``, ``幺三八 一二三四 五六七八`` or a mix. We therefore scan for runs of digit-like
characters (Arabic, full-width and spoken Chinese digits) joined by the separators people and ASR put
between digit groups, turn each run into plain digits, and classify the run by its length and shape.
Numbers written with 十/百/千 (prices, dates, "十几年") are never digit runs, so they stay untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PiiKind = Literal["mobile", "id_card", "bank_card", "landline", "email"]

# The placeholder shown instead of each kind of number.
MASKS: dict[PiiKind, str] = {
    "mobile": "[手机号]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "landline": "[电话]",
    "email": "[邮箱]",
}

# Spoken digits: 幺 is how 1 is read in phone numbers; 〇/零/洞 are read for 0.
_SPOKEN_DIGITS = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
    # Financial (capital) numerals, as written on forms and sometimes typed into notes.
    "壹": "1",
    "贰": "2",
    "叁": "3",
    "肆": "4",
    "伍": "5",
    "陆": "6",
    "柒": "7",
    "捌": "8",
    "玖": "9",
}
_FULLWIDTH_DIGITS = {chr(0xFF10 + i): str(i) for i in range(10)}
_DIGIT_MAP = {**_SPOKEN_DIGITS, **_FULLWIDTH_DIGITS, **{str(i): str(i) for i in range(10)}}
_DIGIT_CLASS = "0-9０-９" + "".join(_SPOKEN_DIGITS)

# Separators allowed between digit groups (up to three in a row, as in "138 - 1234"): spaces, dashes, dots, commas.
_SEPARATORS = r"[ \t\u3000\-‐–—－·.,，、]"
_RUN = re.compile(
    rf"(?:\+?86{_SEPARATORS}?)?[{_DIGIT_CLASS}](?:{_SEPARATORS}{{0,3}}[{_DIGIT_CLASS}])*(?:{_SEPARATORS}?[xX])?"
)
# A run glued to ASCII letters or digits is part of a model code (XQB80...), not a spoken number.
_ALNUM = re.compile(r"[A-Za-z0-9]")
# The look-behind starts a match only where an address-like run begins: without it every position inside
# a long run of letters or dots is tried again, which is quadratic (80 000 letters took 20 s).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
)

MOBILE_DIGITS = 11
ID_CARD_DIGITS = 18  # 17 digits and a check character that may be X
BANK_CARD_DIGITS = range(16, 20)  # 16-19 digits (UnionPay)
LANDLINE_DIGITS = range(10, 13)  # area code 0xx / 0xxx + 7-8 digit local number
MAX_NUMBER_GROUPS = max(BANK_CARD_DIGITS)  # the longest number has 19 digits, each group at least one


@dataclass(frozen=True)
class PiiSpan:
    """A piece of personal data found in a text: ``text[start:end]`` is masked as ``mask``."""

    kind: PiiKind
    start: int
    end: int
    text: str

    @property
    def mask(self) -> str:
        return MASKS[self.kind]


def _classify(digits: str, has_x: bool) -> PiiKind | None:
    if digits.startswith("86") and len(digits) == MOBILE_DIGITS + 2:
        digits = digits[2:]
    n = len(digits)
    if has_x:
        return "id_card" if n == ID_CARD_DIGITS - 1 else None
    if n == MOBILE_DIGITS and re.fullmatch(r"1[3-9]\d{9}", digits):
        return "mobile"
    if n == ID_CARD_DIGITS and digits[0] != "0":
        return "id_card"
    if n in BANK_CARD_DIGITS:
        return "bank_card"
    if n in LANDLINE_DIGITS and digits.startswith("0") and not digits.startswith("00"):
        return "landline"
    return None


_GROUP = re.compile(rf"[{_DIGIT_CLASS}]+(?:[xX](?![A-Za-z0-9]))?")


def _digits(group: str) -> str:
    return "".join(_DIGIT_MAP[c] for c in group if c in _DIGIT_MAP)


def _classify_groups(groups: list[re.Match[str]]) -> tuple[int, PiiKind] | None:
    """The longest prefix of ``groups`` that reads as one number, with its kind."""
    for count in range(len(groups), 0, -1):
        chosen = groups[:count]
        if any(g.group()[-1] in "xX" for g in chosen[:-1]):
            continue
        has_x = chosen[-1].group()[-1] in "xX"
        kind = _classify("".join(_digits(g.group()) for g in chosen), has_x)
        if kind is not None:
            return count, kind
    return None


def _number_spans(text: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    for match in _RUN.finditer(text):
        start, end = match.start(), match.end()
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        if _ALNUM.match(before) or _ALNUM.match(after):
            continue
        # Separators may join two numbers read one after the other: take the longest number
        # from the left, then continue after it.
        groups = list(_GROUP.finditer(text, start, end))
        i = 0
        while i < len(groups):
            found = _classify_groups(groups[i : i + MAX_NUMBER_GROUPS])  # bounded: linear, not cubic
            if found is None:
                i += 1
                continue
            count, kind = found
            first, last = groups[i], groups[i + count - 1]
            span_start = match.start() if i == 0 and text[match.start()] == "+" else first.start()
            spans.append(PiiSpan(kind, span_start, last.end(), text[span_start : last.end()]))
            i += count
    return spans


def find_pii(text: str) -> list[PiiSpan]:
    """Every phone, ID-card, bank-card number and e-mail address in ``text``, in order."""
    spans = [PiiSpan("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    taken = [(s.start, s.end) for s in spans]
    for span in _number_spans(text):
        if not any(span.start < end and start < span.end for start, end in taken):
            spans.append(span)
    return sorted(spans, key=lambda s: s.start)


def redact(text: str) -> str:
    """``text`` with every span of :func:`find_pii` replaced by its mask."""
    out: list[str] = []
    last = 0
    for span in find_pii(text):
        out.append(text[last : span.start])
        out.append(span.mask)
        last = span.end
    out.append(text[last:])
    return "".join(out)


def redact_pieces(pieces: Sequence[str]) -> list[str]:
    """``pieces`` (e.g. the words of a segment) redacted as the one text they make together.

    Redacting each word alone would keep a number that the recogniser cut into words (138 / 1234 / 5678):
    the first piece a span touches gets the mask, the others lose what the span covers.
    """
    text = "".join(pieces)
    spans = find_pii(text)
    if not spans:
        return list(pieces)
    out: list[str] = []
    offset = 0
    for piece in pieces:
        start, end = offset, offset + len(piece)
        offset = end
        kept: list[str] = []
        position = start
        for span in spans:
            if span.end <= start or span.start >= end:
                continue
            kept.append(text[position : max(position, span.start)])
            if span.start >= start:  # the span begins in this piece: the mask goes here
                kept.append(span.mask)
            position = min(end, span.end)
        kept.append(text[position:end])
        out.append("".join(kept))
    return out
