"""The script library: quoted standard phrases (“…”) with the situation they answer and the call stage.

Generated scripts go to knowledge/scripts.yaml (rewritten by every ``copilot ingest``). People edit
knowledge/scripts_custom.yaml instead: entries there are added (``origin: custom``), and an entry
``{disable: ID}`` hides a generated script, so human edits survive re-ingestion. A written script names the
handbook clause it rests on with ``rests_on: <words of the clause>``; ingest links it to the passage holding
those words, which the suggestion then cites first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import KnowledgeError
from copilot.knowledge.passages import PassageRecord
from copilot.types import Script

QUOTE = re.compile(r"[“‘]([^“”‘’]{2,120})[”’]")
# Words that make a quotation sound like something said to a caller, not a term being named.
SPEECH_MARKERS = re.compile(r"您|你|我|请|谢|吗|好|抱歉|对不起|欢迎|再见|麻烦|稍|[??!!]")
# The words just before a quotation that make it a phrase to avoid, not to say.
FORBIDDEN_CONTEXT = re.compile(r"避免|不要|禁止|切忌|杜绝|不得|忌|别说|否定性|伤人")
# ... unless the handbook turns to what to say instead after them: 避免直接说“您错了”,可通过“…”澄清; 避免使用负面
# 词汇,改用建设性表述,如“…”; 避免背景噪音,必要时可说“…”. Before, 5 recommended lines were filed as forbidden and
# never suggested.
RECOMMENDING = re.compile(r"改为|改用|改说|可通过|可以说|可说|应说|而应|换成")
# A quotation joined to the one before by 或者 / 、 (如“A”或者“B”) is listed with it: the same kind.
LISTED_WITH = re.compile(r"\s*(?:或者|或是|或|和|与|及|、|,|,)?\s*")
CONTEXT_CHARS = 40  # how far back the situation is looked for
# situation key -> words in the handbook's own description of the moment (first match wins).
SITUATIONS: tuple[tuple[str, str], ...] = (
    ("silent_line", r"无声|没有声音|没有反应"),
    ("speakerphone", r"免提|拿起话筒"),
    ("line_noise", r"杂音"),
    ("dialect", r"方言|普通话"),
    ("weak_voice", r"声音微弱|声音小|听不清|大声|听不到"),
    ("repeat_request", r"没有听清|重讲|重复"),
    ("named_colleague", r"找其他客服|找这位同事|要找的人|转告"),
    ("wrong_number", r"打错电话|查证后再拨"),
    ("harassment", r"骚扰"),
    ("out_of_scope", r"服务范围|没有这项服务"),
    ("agent_identity", r"昵称|个人信息|QQ"),
    ("cannot_answer_now", r"无法当场答复|进一步确认|无法立即解决|超出个人处理权限"),
    ("complaint_waiting", r"难拨通|久等|等候|等待"),
    ("complaint_agent", r"服务态度不好|服务不周|同事服务"),
    ("complaint_error", r"差错|出错|不足"),
    ("escalation", r"管理人员|上级部门"),
    ("angry_caller", r"情绪激烈|破口大骂|激动|发泄|愤怒|着急|心情"),
    ("long_information", r"纸跟笔|记录下"),
    ("suggestion", r"建议"),
    ("thanks", r"致谢|不客气|认可"),
    ("hold", r"稍等|稍候|保持|查询"),
    ("verification", r"核实|确认|身份|订单号|编号"),
    ("surname", r"姓氏|先生/小姐"),
    ("closing", r"结束语|再见|挂机|还有其他|清楚了吗|明白"),
    ("greeting", r"开头语|问候|您好|欢迎|接听"),
    ("apology", r"抱歉|对不起|道歉|不便"),
    ("spare_parts", r"配件"),
    ("warranty", r"保修|质保|免费维修"),
    ("visit_schedule", r"上门|维修"),
)
STAGE_OF: dict[str, str] = {
    "greeting": "opening",
    "silent_line": "opening",
    "surname": "opening",
    "verification": "verification",
    "hold": "hold",
    "long_information": "resolution",
    "spare_parts": "resolution",
    "warranty": "resolution",
    "visit_schedule": "resolution",
    "cannot_answer_now": "resolution",
    "closing": "closing",
    "thanks": "closing",
    "suggestion": "closing",
}
ANY_STAGE = "any"
ID_CHARS = 10
HEADING_MARKER = re.compile(r"^\s*(?:\d{1,2}[、.]|[一二三四五六七八九十]+[、.]|[((]\S{1,3}[))])\s*")


def script_id(text: str, situation: str) -> str:
    return hashlib.sha1(f"{situation}\n{text}".encode()).hexdigest()[:ID_CHARS]


def classify_situation(*texts: str) -> str:
    """The first situation key whose words appear, trying the most specific text first."""
    for text in texts:
        for key, pattern in SITUATIONS:
            if re.search(pattern, text):
                return key
    return ""


def clause_before(before: str) -> str:
    """The clause just before a quotation: back to the sentence end, or to the quotation before it."""
    return re.split(r"[。;;!?!?\n”’]", before)[-1]


def _situation_text(before: str, section: str) -> str:
    """The handbook's words for the moment: the clause just before the quotation."""
    clause = HEADING_MARKER.sub("", clause_before(before))
    clause = re.sub(r"(例如|如|比如|可以说|则说|应说|可告知|解释为|时说)?[::,,]?\s*$", "", clause)
    clause = re.sub(r"^[\s,,::]+|[\s,,::]+$", "", clause)
    if len(clause) < 2:
        clause = section.split(" > ")[-1] if section else ""
        clause = HEADING_MARKER.sub("", clause)
    return clause[-CONTEXT_CHARS:]


def quotation_kind(lead: str) -> str:
    """A quotation's kind from the clause before it (:func:`clause_before`): "forbidden" when its words forbid
    the quotation and say nothing after that of what to say instead; else "script"."""
    forbidding = list(FORBIDDEN_CONTEXT.finditer(lead))
    if not forbidding or RECOMMENDING.search(lead, forbidding[-1].end()):
        return "script"
    return "forbidden"


def extract_scripts(records: Iterable[PassageRecord]) -> list[Script]:
    scripts: list[Script] = []
    seen: set[str] = set()
    for record in records:
        previous: tuple[int, str] | None = None  # where the last quotation ended, and its kind
        for match in QUOTE.finditer(record.text):
            text = match.group(1).strip().strip("*")
            before = record.text[: match.start()]
            if previous is not None and LISTED_WITH.fullmatch(record.text[previous[0] : match.start()]):
                kind = previous[1]
            else:
                kind = quotation_kind(clause_before(before)[-CONTEXT_CHARS:])
            previous = (match.end(), kind)
            if not SPEECH_MARKERS.search(text):
                continue
            situation = _situation_text(before, record.section)
            key = classify_situation(situation, record.section, text)
            sid = script_id(text, situation)
            if sid in seen:
                continue
            seen.add(sid)
            scripts.append(
                Script(
                    id=sid,
                    text=text,
                    situation=situation,
                    situation_key=key,
                    stage=STAGE_OF.get(key, ANY_STAGE),
                    kind=kind,  # type: ignore[arg-type]
                    source=record.source,
                    section=record.section,
                    passage_id=record.id,
                )
            )
    return scripts


def _custom_entries(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path.name} is not valid YAML: {e}") from e
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise KnowledgeError(f"{path.name} must be a list of mappings (text/situation/... or disable: ID)")
    return data


def _resting_passage(quote: str, passages: Sequence[PassageRecord]) -> tuple[PassageRecord | None, str]:
    """The one passage holding ``quote`` (a written script's ``rests_on``), or why there is none."""
    holding = [p for p in passages if quote in p.text]
    if len(holding) == 1:
        return holding[0], ""
    found = "no passage" if not holding else f"{len(holding)} passages ({', '.join(p.id for p in holding)})"
    return None, f"rests_on {quote!r} is in {found}: the script is kept without a citation"


def merge_custom(
    generated: Sequence[Script],
    custom_path: Path,
    passages: Sequence[PassageRecord] = (),
    warn: Callable[[str], None] = lambda _message: None,
) -> list[Script]:
    """Generated scripts minus the disabled ones, plus the person-written ones (linked to the passage they
    rest on, when they say which; a clause no longer in the handbooks is warned about, not fatal)."""
    entries = _custom_entries(custom_path)
    disabled = {str(item["disable"]) for item in entries if "disable" in item}
    merged = [script for script in generated if script.id not in disabled]
    for number, item in enumerate(entries, 1):
        if "disable" in item:
            continue
        text = str(item.get("text", "")).strip()
        situation = str(item.get("situation", "")).strip()
        if not text or not situation:
            raise KnowledgeError(f"{custom_path.name} entry {number} needs both text and situation")
        key = str(item.get("situation_key") or classify_situation(situation, text))
        kind = str(item.get("kind", "script"))
        if kind not in ("script", "forbidden"):
            raise KnowledgeError(f"{custom_path.name} entry {number}: kind must be script or forbidden")
        quote = str(item.get("rests_on", "")).strip()
        rests_on, problem = _resting_passage(quote, passages) if quote else (None, "")
        if problem:
            warn(f"{custom_path.name} entry {number}: {problem}")
        merged.append(
            Script(
                id=script_id(text, situation),
                text=text,
                situation=situation,
                situation_key=key,
                stage=str(item.get("stage") or STAGE_OF.get(key, ANY_STAGE)),
                kind=kind,  # type: ignore[arg-type]
                source=custom_path.name,
                section=rests_on.section if rests_on else "",
                passage_id=rests_on.id if rests_on else "",
                origin="custom",
            )
        )
    return merged


SCRIPTS_HEADER = (
    "# Generated by `copilot ingest` from knowledge/raw/ - do not edit: changes are overwritten.\n"
    "# Add or override scripts in knowledge/scripts_custom.yaml (merged in on every ingest).\n"
)


def write_scripts(path: Path, scripts: Sequence[Script]) -> None:
    ordered = sorted(scripts, key=lambda s: (s.kind, s.stage, s.situation_key, s.source, s.id))
    body = yaml.safe_dump([asdict(s) for s in ordered], allow_unicode=True, sort_keys=False, width=120)
    path.write_text(SCRIPTS_HEADER + body, encoding="utf-8")


def read_scripts(path: Path) -> list[Script]:
    if not path.is_file():
        raise KnowledgeError(f"no script library at {path}; run: copilot ingest")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        return [replace(Script(**item)) for item in data]
    except (yaml.YAMLError, TypeError) as e:
        raise KnowledgeError(f"{path.name} is not a valid script library: {e}") from e


# -- what a script says, not how the handbook scrape wrote it --------------------------------------------
# Stage directions and notes to the agent inside a quotation: （稍微提高自己的音量）, (根据用户的需求…).
STAGE_DIRECTION = re.compile(r"[((（][^()（）]*[))）]")
# Alternatives the handbook offers with a slash (核实/确认, 是否明白/是否清楚): the first is said.
ALTERNATIVE = re.compile(r"(是否[\u4e00-\u9fff]{2}|[\u4e00-\u9fff]{2})/(?!小姐)(?:是否)?[\u4e00-\u9fff]{2}")
# A clause the handbook leaves for the agent to complete (建议您…): nothing to say as it stands.
UNFINISHED_CLAUSE = re.compile(r"[,,]?(?:[^,,。!?!?]*…+|建议您)$")


@dataclass(frozen=True)
class WordingFix:
    """One script whose spoken text differs from the handbook's quotation (kept in the passage)."""

    script_id: str
    original: str
    said: str
    changes: tuple[str, ...]


def speakable(text: str, typo_fixes: Sequence[tuple[str, str]] = ()) -> tuple[str, list[str]]:
    """The quotation as an agent would say it: typos fixed, stage directions, alternatives and unfinished
    clauses removed. Returns the text and what was changed (for the ingest report)."""
    changes: list[str] = []
    for wrong, right in typo_fixes:
        if wrong in text:
            text = text.replace(wrong, right)
            changes.append(f"{wrong} → {right}")
    for pattern, label in ((STAGE_DIRECTION, "stage direction"), (UNFINISHED_CLAUSE, "unfinished clause")):
        for match in pattern.finditer(text):
            changes.append(f"{label} dropped: {match.group(0)}")
        text = pattern.sub("", text)
    for match in ALTERNATIVE.finditer(text):
        changes.append(f"alternative: {match.group(0)} → {match.group(1)}")
    text = ALTERNATIVE.sub(r"\1", text)
    text = re.sub(r"^[\s,,]+|[\s,,]+$", "", re.sub(r"[,,]{2,}", ",", text))
    return text, changes


def fix_wording(
    scripts: Sequence[Script], typo_fixes: Sequence[tuple[str, str]]
) -> tuple[list[Script], list[WordingFix]]:
    """Every script made speakable (ids stay those of the quotation, so ``disable:`` entries still hold)."""
    fixed: list[Script] = []
    report: list[WordingFix] = []
    for script in scripts:
        if script.kind != "script":  # a forbidden phrase is matched as the handbook wrote it
            fixed.append(script)
            continue
        said, changes = speakable(script.text, typo_fixes)
        if said != script.text and said:
            report.append(WordingFix(script.id, script.text, said, tuple(changes)))
            script = replace(script, text=said)
        fixed.append(script)
    return fixed, report
