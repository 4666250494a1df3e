"""Load and validate the playbook (``knowledge/playbook.yaml``) into typed, frozen values.

The YAML is edited by people, so every mistake becomes one :class:`PlaybookError` naming the place:
unknown check kinds, undefined cue sets, regexes that do not compile, missing clauses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from copilot.config import Config
from copilot.errors import KnowledgeError
from copilot.types import Clause, Severity

PLAYBOOK_FILE = "playbook.yaml"
SUPPORTED_VERSION = 1
MAX_NUMBER = 1e9  # weights, seconds, characters per minute and turn counts are all far below this

CheckKind = Literal["stage", "phrases", "sequence", "hold", "silence", "speech_rate", "overlap", "outcome"]
StageWhere = Literal["first_agent_turn", "any_agent_turn", "last_agent_turns"]
SEVERITIES: tuple[str, ...] = get_args(Severity)


class PlaybookError(KnowledgeError):
    """The playbook file is missing or does not describe valid rules."""


@dataclass(frozen=True)
class CueSet:
    """Literal phrases and regex patterns; a hit inside a match of an exception does not count."""

    name: str
    phrases: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    exceptions: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class PhraseItem:
    """One family of forbidden wording, with the clause that forbids it."""

    id: str
    kind: str
    severity: Severity
    message: str
    clause: Clause
    cues: CueSet
    first_turn_only: bool = False  # only the agent's first turn (how the phone is answered)
    # In a finished call, a hit is withdrawn when the agent's next turn matches this: a bare 没办法 followed
    # by what the agent can do is the constructive answer the handbook asks for. Live, the next turn is unknown.
    resolved_by_next_turn: CueSet | None = None
    # A hit is withdrawn when the agent gave the reason before it (in the previous agent line or earlier in
    # the same turn): 没办法 after 因为商家已经结算…所以 is the explanation the handbook asks for. Works live.
    explained_before: CueSet | None = None


@dataclass(frozen=True)
class SemanticSpec:
    """Examples of a violation; an utterance whose embedding is this close to one is flagged."""

    kind: str
    threshold: float  # cosine similarity of normalised embeddings
    examples: tuple[str, ...]


StageMatch = Literal["all", "any"]


@dataclass(frozen=True)
class CutParams:
    """How to tell that a transcript does not hold the start (or the end) of the call.

    ``continuation``: a first line (either party) that shows the call was already going (a transfer, a
    colleague handing over). ``customer_chars``: the customer saying this many characters before the agent's
    first turn (already stating the matter, not 喂 / 你好) means the agent's answering the call is not in the
    transcript (or it is a written channel, where no phone greeting is due). For the end: ``ended`` cues in the last turns
    (either party) say the conversation was wrapped up; without them, or with ``open`` cues (a hold, a
    pending question) in the agent's last turn, the end is not in the transcript.
    """

    continuation: CueSet | None = None
    customer_chars: int = 8
    ended: CueSet | None = None
    open: CueSet | None = None
    last_turns: int = 3


@dataclass(frozen=True)
class StageParams:
    where: StageWhere
    require: tuple[CueSet, ...]
    last_n: int = 3  # only for last_agent_turns
    match: StageMatch = "all"  # all: every required cue set; any: one of them is enough
    cut: CutParams | None = None  # when the step may lie outside a cut recording: unknown, not fail


@dataclass(frozen=True)
class PhrasesParams:
    items: tuple[PhraseItem, ...]
    semantic: SemanticSpec | None = None


@dataclass(frozen=True)
class SequenceParams:
    trigger_cues: CueSet | None
    trigger_emotions: tuple[str, ...]
    response: CueSet
    within_agent_turns: int
    # "any": the check passes when the agent answered at least one trigger in time (a real call has many
    # upset lines; one fitting apology is what the handbook asks); "every": each trigger must be answered.
    answer: Literal["any", "every"] = "every"
    # "anywhere": on a transcript without times the response anywhere in the call counts (its turns are
    # a text's or a recogniser's pieces, so "within N agent turns" cannot be judged); "window": as timed
    untimed: Literal["window", "anywhere"] = "window"


@dataclass(frozen=True)
class HoldParams:
    announce: CueSet
    no_hangup: CueSet
    thanks: CueSet
    min_hold_s: float
    long_hold_s: float
    dead_air_s: float


@dataclass(frozen=True)
class SilenceParams:
    announce: CueSet
    max_gap_s: float


@dataclass(frozen=True)
class SpeechRateParams:
    min_cpm: float  # Chinese characters per minute
    max_cpm: float
    call_tolerance_cpm: float
    live_tolerance_cpm: float
    live_min_duration_s: float


@dataclass(frozen=True)
class OverlapParams:
    min_overlap_s: float


@dataclass(frozen=True)
class OutcomeParams:
    """How the customer leaves: pass when they thank at the end; fail when they end upset, or were upset
    and leave without being reconciled; unknown when they were calm throughout."""

    last_customer_turns: int = 2
    min_chars: int = 2  # shorter customer lines (嗯, 对) say nothing about the outcome


CheckParams = (
    OutcomeParams
    | StageParams
    | PhrasesParams
    | SequenceParams
    | HoldParams
    | SilenceParams
    | SpeechRateParams
    | OverlapParams
)


@dataclass(frozen=True)
class Check:
    """One scorecard item: how it is judged, what it weighs, and the clause it rests on."""

    id: str
    kind: CheckKind
    weight: float
    severity: Severity
    message: str
    clause: Clause
    params: CheckParams
    realtime: bool = False  # also judged on each committed agent segment


@dataclass(frozen=True)
class Playbook:
    version: int
    cues: Mapping[str, CueSet]
    checks: tuple[Check, ...]
    source: str = ""
    flag_penalties: Mapping[str, float] = field(default_factory=dict)  # severity -> points off per flag

    def check(self, check_id: str) -> Check:
        for item in self.checks:
            if item.id == check_id:
                return item
        raise PlaybookError(f"the playbook has no check {check_id!r}")

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.checks)


# --- parsing helpers -------------------------------------------------------------------------------


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlaybookError(f"{where} must be a mapping")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlaybookError(f"{where} must be a non-empty string")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PlaybookError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _member(where: str, key: object) -> str:
    """Where a key of the file is: ``cues.hello``, or ``cues['a\\nb']`` for a key that would break the line."""
    plain = isinstance(key, str) and key.isprintable() and key.strip() == key and key != ""
    return f"{where}.{key}" if plain else f"{where}[{key!r}]"


def _float(table: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    # The upper bound also refuses NaN, infinity and integers too big for a float (YAML reads all three).
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_NUMBER:
        raise PlaybookError(f"{_member(where, key)} must be a non-negative number up to {MAX_NUMBER:g}")
    return float(value)


def _regexes(value: Any, where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(_strings(value, where)):
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise PlaybookError(f"{where}[{i}] is not a valid regex ({e}): {pattern}") from e
    return tuple(compiled)


def _cue_set(name: str, value: Any, where: str) -> CueSet:
    table = _table(value, where)
    unknown = set(table) - {"phrases", "patterns", "exceptions"}
    if unknown:
        # repr: a key with a line break or a blank in it (hypothesis found "\n") still reads on one line
        raise PlaybookError(f"{where} has unknown key(s): {', '.join(sorted(map(repr, unknown)))}")
    cues = CueSet(
        name=name,
        phrases=_strings(table.get("phrases"), f"{where}.phrases"),
        patterns=_regexes(table.get("patterns"), f"{where}.patterns"),
        exceptions=_regexes(table.get("exceptions"), f"{where}.exceptions"),
    )
    if not cues.phrases and not cues.patterns:
        raise PlaybookError(f"{where} needs phrases or patterns")
    return cues


def _clause(value: Any, where: str) -> Clause:
    table = _table(value, where)
    return Clause(
        document=_str(table.get("document"), f"{where}.document"),
        section=_str(table.get("section"), f"{where}.section"),
        quote=_str(table.get("quote"), f"{where}.quote"),
        passage_id=str(table.get("passage_id", "")),
    )


def _severity(value: Any, where: str) -> Severity:
    if value not in SEVERITIES:
        raise PlaybookError(f"{where} must be one of {', '.join(SEVERITIES)}")
    severity: Severity = value
    return severity


def _ref(cues: Mapping[str, CueSet], value: Any, where: str) -> CueSet:
    name = _str(value, where)
    if name not in cues:
        raise PlaybookError(f"{where} names an undefined cue set {name!r}")
    return cues[name]


def _answer(value: Any, where: str) -> Literal["any", "every"]:
    if value == "any":
        return "any"
    if value == "every":
        return "every"
    raise PlaybookError(f"{where} must be 'any' or 'every'")


def _params(kind: str, table: dict[str, Any], cues: Mapping[str, CueSet], where: str) -> CheckParams:
    if kind == "stage":
        stage_where = table.get("where")
        if stage_where not in get_args(StageWhere):
            raise PlaybookError(f"{where}.where must be one of {', '.join(get_args(StageWhere))}")
        require = tuple(_ref(cues, r, f"{where}.require") for r in _strings(table.get("require"), where))
        if not require:
            raise PlaybookError(f"{where}.require must name at least one cue set")
        chosen: StageWhere = stage_where  # type: ignore[assignment]  # checked against StageWhere above
        match = table.get("match", "all")
        if match not in get_args(StageMatch):
            raise PlaybookError(f"{where}.match must be one of {', '.join(get_args(StageMatch))}")
        cut = None
        if "cut" in table:
            raw_cut = _table(table["cut"], f"{where}.cut")
            cut = CutParams(
                continuation=_ref(cues, raw_cut["continuation"], f"{where}.cut.continuation")
                if "continuation" in raw_cut
                else None,
                customer_chars=int(_float(raw_cut, "customer_chars", f"{where}.cut", 8)),
                ended=_ref(cues, raw_cut["ended"], f"{where}.cut.ended") if "ended" in raw_cut else None,
                open=_ref(cues, raw_cut["open"], f"{where}.cut.open") if "open" in raw_cut else None,
                last_turns=max(1, int(_float(raw_cut, "last_turns", f"{where}.cut", 3))),
            )
        return StageParams(chosen, require, int(_float(table, "last_n", where, 3)), match, cut)
    if kind == "phrases":
        items = []
        raw_items = table.get("items") or []
        if not isinstance(raw_items, list):
            raise PlaybookError(f"{where}.items must be a list of phrase items")
        for i, raw in enumerate(raw_items):
            item_where = f"{where}.items[{i}]"
            item = _table(raw, item_where)
            item_id = _str(item.get("id"), f"{item_where}.id")
            cue_table = {k: item[k] for k in ("phrases", "patterns", "exceptions") if k in item}
            items.append(
                PhraseItem(
                    id=item_id,
                    kind=_str(item.get("kind", item_id), f"{item_where}.kind"),
                    severity=_severity(item.get("severity", "major"), f"{item_where}.severity"),
                    message=_str(item.get("message"), f"{item_where}.message"),
                    clause=_clause(item.get("clause"), f"{item_where}.clause"),
                    cues=_cue_set(item_id, cue_table, item_where),
                    first_turn_only=bool(item.get("first_turn_only", False)),
                    resolved_by_next_turn=(
                        _ref(cues, item["resolved_by_next_turn"], f"{item_where}.resolved_by_next_turn")
                        if "resolved_by_next_turn" in item
                        else None
                    ),
                    explained_before=(
                        _ref(cues, item["explained_before"], f"{item_where}.explained_before")
                        if "explained_before" in item
                        else None
                    ),
                )
            )
        if not items:
            raise PlaybookError(f"{where}.items must list at least one phrase item")
        semantic = None
        if "semantic" in table:
            sem = _table(table["semantic"], f"{where}.semantic")
            threshold = _float(sem, "threshold", f"{where}.semantic")
            if not 0 < threshold <= 1:
                raise PlaybookError(f"{where}.semantic.threshold must be in (0, 1]")
            examples = _strings(sem.get("examples"), f"{where}.semantic.examples")
            if not examples:
                raise PlaybookError(f"{where}.semantic.examples must not be empty")
            semantic = SemanticSpec(_str(sem.get("kind", "semantic"), where), threshold, examples)
        return PhrasesParams(tuple(items), semantic)
    if kind == "sequence":
        trigger = table.get("trigger_cues")
        return SequenceParams(
            trigger_cues=_ref(cues, trigger, f"{where}.trigger_cues") if trigger else None,
            trigger_emotions=_strings(table.get("trigger_emotions"), f"{where}.trigger_emotions"),
            response=_ref(cues, table.get("response"), f"{where}.response"),
            within_agent_turns=max(1, int(_float(table, "within_agent_turns", where, 2))),
            answer=_answer(table.get("answer", "every"), f"{where}.answer"),
            untimed="anywhere" if table.get("untimed") == "anywhere" else "window",
        )
    if kind == "hold":
        return HoldParams(
            announce=_ref(cues, table.get("announce"), f"{where}.announce"),
            no_hangup=_ref(cues, table.get("no_hangup"), f"{where}.no_hangup"),
            thanks=_ref(cues, table.get("thanks"), f"{where}.thanks"),
            min_hold_s=_float(table, "min_hold_s", where, 3.0),
            long_hold_s=_float(table, "long_hold_s", where, 30.0),
            dead_air_s=_float(table, "dead_air_s", where, 5.0),
        )
    if kind == "silence":
        return SilenceParams(
            announce=_ref(cues, table.get("announce"), f"{where}.announce"),
            max_gap_s=_float(table, "max_gap_s", where, 5.0),
        )
    if kind == "speech_rate":
        params = SpeechRateParams(
            min_cpm=_float(table, "min_cpm", where),
            max_cpm=_float(table, "max_cpm", where),
            call_tolerance_cpm=_float(table, "call_tolerance_cpm", where, 0.0),
            live_tolerance_cpm=_float(table, "live_tolerance_cpm", where, 0.0),
            live_min_duration_s=_float(table, "live_min_duration_s", where, 3.0),
        )
        if params.min_cpm >= params.max_cpm:
            raise PlaybookError(f"{where}: min_cpm must be below max_cpm")
        return params
    if kind == "overlap":
        return OverlapParams(min_overlap_s=_float(table, "min_overlap_s", where, 0.5))
    if kind == "outcome":
        return OutcomeParams(
            last_customer_turns=max(1, int(_float(table, "last_customer_turns", where, 2))),
            min_chars=int(_float(table, "min_chars", where, 2)),
        )
    raise PlaybookError(
        f"{where}: unknown check kind {kind!r} (expected one of {', '.join(get_args(CheckKind))})"
    )


def parse_playbook(data: Any, source: str = "") -> Playbook:
    """Validate a decoded YAML document into a :class:`Playbook`."""
    root = _table(data, source or "playbook")
    version = root.get("version")
    if version != SUPPORTED_VERSION:
        raise PlaybookError(f"{source}: playbook version must be {SUPPORTED_VERSION}, got {version!r}")
    cues = {
        name: _cue_set(name, value, _member("cues", name))
        for name, value in _table(root.get("cues") or {}, "cues").items()
    }
    checks: list[Check] = []
    seen: set[str] = set()
    raw_checks = root.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PlaybookError(f"{source}: 'checks' must be a non-empty list")
    for i, raw in enumerate(raw_checks):
        where = f"checks[{i}]"
        table = _table(raw, where)
        check_id = _str(table.get("id"), f"{where}.id")
        where = f"checks[{check_id}]"
        if check_id in seen:
            raise PlaybookError(f"{where}: duplicate check id")
        seen.add(check_id)
        kind = _str(table.get("kind"), f"{where}.kind")
        params = _params(kind, _table(table.get("params") or {}, f"{where}.params"), cues, f"{where}.params")
        check_kind: CheckKind = kind  # type: ignore[assignment]  # validated by _params
        checks.append(
            Check(
                id=check_id,
                kind=check_kind,
                weight=_float(table, "weight", where, 1.0),
                severity=_severity(table.get("severity", "major"), f"{where}.severity"),
                message=_str(table.get("message"), f"{where}.message"),
                clause=_clause(table.get("clause"), f"{where}.clause"),
                params=params,
                realtime=bool(table.get("realtime", False)),
            )
        )
    if sum(c.weight for c in checks) <= 0:
        raise PlaybookError(f"{source}: the check weights must not all be zero")
    scoring = _table(root.get("scoring") or {}, "scoring")
    raw_penalties = _table(scoring.get("flag_penalty") or {}, "scoring.flag_penalty")
    penalties: dict[str, float] = {
        _severity(name, _member("scoring.flag_penalty", name)): _float(
            raw_penalties, name, "scoring.flag_penalty"
        )
        for name in raw_penalties
    }
    return Playbook(
        version=SUPPORTED_VERSION, cues=cues, checks=tuple(checks), source=source, flag_penalties=penalties
    )


def default_playbook_path(config: Config | None = None) -> Path:
    return Path((config or Config()).knowledge_dir) / PLAYBOOK_FILE


def load_playbook(path: str | os.PathLike[str] | None = None) -> Playbook:
    """Read and validate the playbook (default: ``knowledge/playbook.yaml``)."""
    file = Path(path) if path is not None else default_playbook_path()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PlaybookError(f"playbook not found: {file}") from e
    except OSError as e:  # a folder, no permission
        raise PlaybookError(f"cannot read playbook {file}: {e.strerror or e}") from e
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nesting too deep
        raise PlaybookError(f"{file} is not valid YAML: {' '.join(str(e).split())}") from e
    return parse_playbook(data, str(file))
