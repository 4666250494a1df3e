"""Turn a raw handbook's text into clean lines, recording everything that was dropped and why.

Order matters: site boilerplate and URLs first (they are ASCII-heavy and would confuse the noise
model), then web-preview page markers are joined so that a word cut by a page break is whole
again, then runs of random characters are decoded away, then punctuation and variants are
normalised, repeats and truncated tails are removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from copilot.knowledge.charlm import CharBigramModel, is_han, noise_spans

SECTION_BREAK = (
    "\f"  # a line of its own: the heading stack restarts here (a new document in a web collection)
)

# Whole lines that are web-site furniture (document-sharing sites: VIP terms, download notices,
# comment counters, "related documents" lists). Extra patterns come from knowledge/ingest_rules.yaml.
BOILERPLATE_LINE_PATTERNS: tuple[str, ...] = (
    r"原创力文档|book118",
    r"VIP",
    r"(合集|二次|免费|继续阅读或)下载|下载(本文档|后|权益|文档前)",
    r"版权申诉|侵权必究|上传文档|文档贡献者|实名认证|仅部分预览|在线预览|文档侵犯",
    r"^文档评论\s*[((]\d+[))]$",
    r"^(相关文档|最新文档|查看更多|办公行业资料|相关推荐)$",
    r"\+\s*关注$",
)
# Furniture embedded inside real lines.
BOILERPLATE_INLINE_PATTERNS: tuple[str, ...] = (
    r"https?://[A-Za-z0-9./_\-?=&%#:~+]+",
    r"(?<![A-Za-z0-9])(?:www\.)?[a-z0-9\-]+\.(?:net|com|cn|org)(?:/[A-Za-z0-9./_\-]*)?",
    r"本文档下载自.*?继续阅读或下载[::]?",
    r"\[此处图片未下载成功\]",
    r"编辑[::]\s*\S+\s*\|\s*\d{4}-\d{2}-\d{2}\s*\|",
    r"\.(?:docx?|pdf|txt)(?:VIP)?(?=\s|$)",
)
# A web preview cut into numbered pages ("1、…", "2、…"): long lines whose numbers run 1, 2, 3 …
PAGE_MARKER = re.compile(r"^(\d{1,3})、")
PAGE_MIN_LINES = 3  # consecutive numbered lines before we believe it is paging, not a list
PAGE_MIN_CHARS = 150  # average characters per page line: real list items are much shorter

MIN_NOISE_CHARS = 12  # shorter improbable runs are kept: rare names and typos are not noise
NOISE_EDGE_CHARS = 4  # a fragment this short stranded between noise and a line edge goes too
NOISE_RUN_MIN_WORDS = 3  # consecutive dictionary words inside a noise span listed for review
GLUE_CHARS = frozenset("的了和与是在")  # single-character words that join real words in a run

LONG_LINE_CHARS = 300  # a line this long is running text: boilerplate is cut out sentence by sentence
CLOSING_PUNCTUATION = "”」』"
NO_TEXT_CHARS = 10  # a short line without any Chinese is a bullet or page number
MAX_TITLE_CHARS = 40  # a first line longer than this is running text, not the title
MIN_CONTAINED_CHARS = 20  # shorter lines may legitimately recur inside longer ones
TERMINAL_PUNCTUATION = "。!?;…”」』)"
# ASCII punctuation next to Chinese is normalised to full width so that sentences split uniformly.
HALF_TO_FULL = {",": ",", ":": ":", ";": ";", "?": "?", "!": "!"}
# Variant characters that some converters substitute: 壹 for 一 in running text (kept as a heading
# marker "壹、"). OpenCC handles Traditional -> Simplified.
VARIANTS = {"壹": "一"}
CN_NUMERALS = "一二三四五六七八九十百零壹贰叁肆伍陆柒捌玖拾"


@dataclass(frozen=True)
class Drop:
    """Something removed from a document, kept for the ingestion report."""

    kind: str  # boilerplate | url | noise | page-marker | duplicate | truncated | no-text
    text: str
    detail: str = ""


@dataclass(frozen=True)
class CleanRules:
    """Boilerplate patterns; the defaults plus whatever knowledge/ingest_rules.yaml adds."""

    drop_lines: tuple[str, ...] = BOILERPLATE_LINE_PATTERNS
    drop_inline: tuple[str, ...] = BOILERPLATE_INLINE_PATTERNS
    # Headings the scrape glued to their text (a table's row titles: 无声电话问候语于常规开头语之后…):
    # split onto a line of their own at the start of a line, so they name their section.
    glued_headings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CleanedDocument:
    source: str
    title: str
    lines: tuple[str, ...]  # clean lines; SECTION_BREAK lines mark a restart of the heading stack
    drops: tuple[Drop, ...]
    raw_chars: int
    noise_chars: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


def _t2s(text: str) -> str:
    import opencc

    return str(opencc.OpenCC("t2s").convert(text))


def _gap(match: re.Match[str]) -> str:
    """What replaces cut-out furniture: nothing inside a Chinese sentence, else a separating space."""
    text, start, end = match.string, match.start(), match.end()
    inside = start > 0 and end < len(text) and is_han(text[start - 1]) and is_han(text[end])
    return "" if inside else " "


def _strip_sentences(line: str, line_res: Sequence[re.Pattern[str]], drops: list[Drop]) -> str:
    """In a long line of real text, drop only the sentences that match a boilerplate pattern."""
    sentences = re.split(r"(?<=[。!?!?])", line)
    kept = []
    for sentence in sentences:
        if any(p.search(sentence) for p in line_res):
            drops.append(Drop("boilerplate", sentence.strip(), "sentence inside a long line"))
        else:
            kept.append(sentence)
    return "".join(kept).strip()


def _strip_boilerplate(lines: Sequence[str], rules: CleanRules, drops: list[Drop]) -> list[str]:
    line_res = [re.compile(p) for p in rules.drop_lines]
    inline_res = [re.compile(p) for p in rules.drop_inline]
    kept: list[str] = []
    for raw in lines:
        line = raw.strip()
        for pattern in inline_res:
            for match in pattern.finditer(line):
                kind = "url" if re.search(r"://|\.(net|com|cn|org)", match.group(0)) else "boilerplate"
                drops.append(Drop(kind, match.group(0)))
            line = pattern.sub(_gap, line).strip()
        line = line.lstrip("-*• ").strip() if line.startswith(("- ", "* ", "• ")) else line
        if not line:
            continue
        if len(line) <= NO_TEXT_CHARS and not any(is_han(c) for c in line):
            drops.append(Drop("no-text", line, "a bullet or slide number with no text"))
            continue
        if len(line) > LONG_LINE_CHARS:
            line = _strip_sentences(line, line_res, drops)
        elif any(p.search(line) for p in line_res):
            drops.append(Drop("boilerplate", line))
            if kept and kept[-1] != SECTION_BREAK:
                kept.append(SECTION_BREAK)
            continue
        if line and line[0] in CLOSING_PUNCTUATION and kept and kept[-1] != SECTION_BREAK:
            # A closing quote wrapped onto the next line belongs to the line before.
            closing = re.match(f"^[{CLOSING_PUNCTUATION}]+", line)
            assert closing is not None
            kept[-1] += closing.group(0)
            line = line[closing.end() :].strip()
        if line:
            kept.append(line)
    return kept


def _drop_table_of_contents(lines: list[str], drops: list[Drop]) -> list[str]:
    """Drop "目录: 第一部分-… 第二部分-…" up to where its first entry starts for real."""
    result = []
    for line in lines:
        match = re.search(
            r"目\s*录\s*[::]?\s*((第[一二三四五六七八九十\d]+(?:部分|章|篇|节))|[一二三四五六七八九十]+、)",
            line,
        )
        if match:
            first_entry = match.group(1)
            body_start = line.find(first_entry, match.end())
            if body_start > 0:
                drops.append(Drop("toc", line[match.start() : body_start].strip(), "table of contents"))
                line = (line[: match.start()] + " " + line[body_start:]).strip()
        result.append(line)
    return result


def _join_pages(lines: list[str], drops: list[Drop]) -> list[str]:
    """Remove web-preview page numbers and glue each page to the one before it."""
    numbered = [(i, m) for i, line in enumerate(lines) if (m := PAGE_MARKER.match(line))]
    run: list[int] = []
    last_page = 0
    for i, match in numbered:
        page = int(match.group(1))
        if run and page == last_page + 1 and i == run[-1] + 1:
            run.append(i)
        elif page == 1:
            run = [i]
        else:
            continue
        last_page = page
    if len(run) < PAGE_MIN_LINES or sum(len(lines[i]) for i in run) / len(run) < PAGE_MIN_CHARS:
        return lines
    first, last = run[0], run[-1]
    pages = []
    for i in run:
        marker = PAGE_MARKER.match(lines[i])
        assert marker is not None
        drops.append(Drop("page-marker", marker.group(0), f"page {marker.group(1)} of a web preview"))
        pages.append(lines[i][marker.end() :])
    return [*lines[:first], "".join(pages), *lines[last + 1 :]]


def _word_runs(text: str) -> list[str]:
    """Stretches of a noise span that read like words (for the reviewer: was real text lost?)."""
    from copilot.config import load_jieba

    jieba = load_jieba()

    runs: list[str] = []
    current: list[str] = []
    for token in [*jieba.lcut(text, HMM=False), ""]:
        if len(token) >= 2 or (current and token in GLUE_CHARS):
            current.append(token)
            continue
        while current and len(current[-1]) < 2:
            current.pop()
        if sum(len(t) >= 2 for t in current) >= NOISE_RUN_MIN_WORDS:
            runs.append("".join(current))
        current = []
    return runs


def _remove_noise(
    lines: list[str], model: CharBigramModel | None, drops: list[Drop]
) -> tuple[list[str], int]:
    kept: list[str] = []
    removed = 0
    for line in lines:
        if line == SECTION_BREAK:
            kept.append(line)
            continue
        spans = noise_spans(line, model, min_chars=MIN_NOISE_CHARS)
        if not spans:
            kept.append(line)
            continue
        pieces: list[str] = []
        cursor = 0
        for span in spans:
            pieces.append(line[cursor : span.start])
            noise = line[span.start : span.end]
            removed += len(noise)
            runs = _word_runs(noise)
            detail = f"{len(noise)} chars" + (
                f"; word-like stretches inside: {' / '.join(runs)}" if runs else ""
            )
            drops.append(Drop("noise", noise, detail))
            cursor = span.end
        pieces.append(line[cursor:])
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            if sum(is_han(c) for c in piece) <= NOISE_EDGE_CHARS and not piece.endswith(
                tuple(TERMINAL_PUNCTUATION)
            ):
                drops.append(Drop("noise", piece, "short fragment stranded between noise runs"))
                continue
            kept.append(piece)
    return kept, removed


def _normalise_punctuation(line: str) -> str:
    line = re.sub(r"\*([\u4e00-\u9fff]{2,30})\*", r"\1", line)  # Markdown-style *emphasis* in plain text
    line = re.sub(r"\.{3,}|…{2,}", "", line)  # "沟........": a cut-off marker, not content
    line = line.replace("(", "(").replace(")", ")")

    def full_width(match: re.Match[str]) -> str:
        return HALF_TO_FULL[match.group(0)]

    line = re.sub(r"(?<=[\u4e00-\u9fff”)])[,:;?!]|[,:;?!](?=[\u4e00-\u9fff“])", full_width, line)

    def period(match: re.Match[str]) -> str:
        # "." after a Chinese character ends a sentence, except in heading markers like "一." "1."
        start = match.start()
        before = line[max(0, start - 2) : start]
        if len(before) == 2 and before[1] in CN_NUMERALS and not is_han(before[0]):
            return "."
        if start == 1 and line[0] in CN_NUMERALS:
            return "."
        return "。"

    line = re.sub(r"(?<=[\u4e00-\u9fff)])\.(?!\d)", period, line)
    for variant, standard in VARIANTS.items():
        heading = re.match(rf"^{variant}[、.::]", line)
        body = line[heading.end() :] if heading else line
        line = (line[: heading.end()] if heading else "") + body.replace(variant, standard)
    return re.sub(r"[ \t\u3000]+", " ", line).strip()


def _title(lines: Sequence[str], source: str) -> str:
    """The first line if short; else the words before the first heading marker of that line."""
    if not lines:
        return source
    first = lines[0]
    if len(first) <= MAX_TITLE_CHARS:
        return first
    head = re.split(rf"\s|第[{CN_NUMERALS}\d]+(?:部分|章|篇|节|条)|[{CN_NUMERALS}]+[、.::]|[,。:;]", first)[0]
    return head.strip() if 2 <= len(head.strip()) <= MAX_TITLE_CHARS else source


def _drop_repeats(lines: list[str], title: str, drops: list[Drop]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        if line == SECTION_BREAK:
            kept.append(line)
            continue
        # A running header: the document title glued in front of a line (web previews repeat it).
        while title and line.startswith(title) and len(line) > len(title):
            if kept:
                drops.append(Drop("duplicate", title, "running header (the document title repeated)"))
            else:
                kept.append(title)
                seen.add(title)
            line = line[len(title) :].strip()
        doubled = re.fullmatch(r"(.{4,}?)\1+", line)
        if doubled:
            drops.append(Drop("duplicate", line, "the same heading repeated on one line"))
            line = doubled.group(1)
        if line in seen:
            drops.append(Drop("duplicate", line, "exact repeat of an earlier line"))
            continue
        seen.add(line)
        kept.append(line)
    # A partial copy of a longer line (web previews show the opening twice) goes too.
    texts = [line for line in kept if line != SECTION_BREAK]
    result = []
    for line in kept:
        long_enough = line != SECTION_BREAK and len(line) >= MIN_CONTAINED_CHARS
        if long_enough and any(line != other and line in other for other in texts):
            drops.append(Drop("duplicate", line, "contained in a longer line of the same document"))
            continue
        result.append(line)
    return result


def _split_glued_headings(lines: Sequence[str], headings: Sequence[str], notes: list[str]) -> list[str]:
    """Each configured heading that opens a longer line goes onto its own line (again for the rest)."""
    headings = [h for h in headings if h.strip()]  # an empty one opens every line and would hide the others
    split: list[str] = []
    for line in lines:
        while heading := next((h for h in headings if line.startswith(h) and len(line) > len(h)), ""):
            split.append(heading)
            notes.append(f"heading split off its text: {heading}")
            line = line[len(heading) :]
        split.append(line)
    return split


def _trim_truncated_tail(lines: list[str], drops: list[Drop]) -> list[str]:
    """A document that stops mid-sentence loses its unfinished last sentence."""
    while lines and lines[-1] == SECTION_BREAK:
        lines = lines[:-1]
    if not lines:
        return lines
    last = lines[-1]
    if last.endswith(tuple(TERMINAL_PUNCTUATION)) or (
        len(last) <= MAX_TITLE_CHARS and not re.search("[,,;]", last)
    ):
        return lines  # finished, or a short heading-like line
    cut = max(last.rfind(p) for p in TERMINAL_PUNCTUATION)
    tail = last[cut + 1 :]
    drops.append(
        Drop("truncated", tail, "the document stops mid-sentence; the unfinished sentence is dropped")
    )
    return [*lines[:-1], last[: cut + 1]] if cut >= 0 else lines[:-1]


def clean_document(
    source: str, text: str, *, rules: CleanRules | None = None, model: CharBigramModel | None = None
) -> CleanedDocument:
    rules = rules or CleanRules()
    drops: list[Drop] = []
    converted = _t2s(text)
    notes = []
    changed = sum(a != b for a, b in zip(text, converted, strict=False))
    if changed:
        notes.append(f"{changed} Traditional characters converted to Simplified (OpenCC t2s)")
    lines = _strip_boilerplate(converted.splitlines(), rules, drops)
    lines = _drop_table_of_contents(lines, drops)
    lines = _join_pages(lines, drops)
    lines, noise_chars = _remove_noise(lines, model, drops)
    normalised = []
    for line in lines:
        if line == SECTION_BREAK:
            normalised.append(line)
            continue
        line = _normalise_punctuation(line)
        if not any(is_han(c) for c in line):
            if line:
                drops.append(Drop("no-text", line, "no Chinese text"))
            continue
        normalised.append(line)
    while normalised and normalised[0] == SECTION_BREAK:
        normalised.pop(0)
    title = _title(normalised, source)
    lines = _drop_repeats(normalised, title, drops)
    lines = _split_glued_headings(lines, rules.glued_headings, notes)
    lines = _trim_truncated_tail(lines, drops)
    collapsed: list[str] = []
    for line in lines:
        if line == SECTION_BREAK and (not collapsed or collapsed[-1] == SECTION_BREAK):
            continue
        collapsed.append(line)
    return CleanedDocument(
        source=source,
        title=title,
        lines=tuple(collapsed),
        drops=tuple(drops),
        raw_chars=len(text),
        noise_chars=noise_chars,
        notes=tuple(notes),
    )
