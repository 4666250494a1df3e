"""Suggest the agent's next reply at the end of a customer's turn.

1. At once: the handbook script for the moment, with the customer's name and product and the company's
   placeholders filled in. A special-situation script (wrong number, can't hear, greeting, farewell...) only
   when the situation matcher's calibrated confidence says the turn really is that situation, never the
   opening or the farewell mid-call; otherwise the handbooks' general move (empathy first when the customer
   is upset, recap and confirm, "I need to confirm and will call back" for a question, the callback time the
   agent already promised when the caller asks when), or nothing.
2. Then: the local LLM rewrites it for this call, streamed piece by piece.
3. Always guarded: every streamed prefix and the final text pass the agent's own rules; a rewrite that breaks
   a rule, invents a promise or strays from the cited passages is replaced by the script, with the reason.
Every suggestion cites the passages it rests on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from copilot.config import CompanyConfig
from copilot.judgement.engine import RuleEngine
from copilot.judgement.tone import latest_mood, mood_in_call
from copilot.knowledge.embedding import Embedder
from copilot.knowledge.query import Turn, build_query, normalize_query, turns
from copilot.knowledge.retrieval import Assessment, Retriever, SituationMatch, assess
from copilot.knowledge.situations import Situation
from copilot.suggest.gate import GenerationGate
from copilot.suggest.guard import (
    APOLOGY_WORDS,
    check_rewrite,
    opens_with_empathy,
    overlap,
    unsupported_promises,
)
from copilot.suggest.llm import Generator
from copilot.suggest.prompt import suggestion_messages
from copilot.suggest.slots import extract_slots, fill_company, fill_script, unfilled_placeholders
from copilot.types import Script, SearchHit, Segment

PASSAGE_LINK_WEIGHT = 0.3  # bonus for a script quoted in a retrieved passage, scaled by 1/rank
MOOD_WEIGHT = 0.3  # bonus for a script written for an upset caller when the caller is upset
UPSET_SITUATIONS = frozenset(
    {"angry_caller", "apology", "complaint_agent", "complaint_error", "complaint_waiting"}
)
SEARCH_DEPTH = 5  # passages considered when choosing a script
DEFAULT_MAX_NEW_TOKENS = (
    64  # two short Chinese sentences fit well under 64 tokens (config: [llm] max_new_tokens)
)
BUSY_REASON = "LLM busy with other calls: the script stands"
NON_SUGGESTION_KINDS = frozenset({"pace", "overlap", "missing_response"})  # rules about delivery, not words
GENERIC_SCRIPT = Script(
    id="generic",
    text="好的，我明白您的意思，我这就为您查询处理，请您放心。",
    situation="没有更贴切的标准话术时",
    situation_key="",
    stage="any",
    origin="custom",
)


SPECIAL_CONFIDENCE = 0.5  # calibrated P(the turn is this situation) a special-situation script needs
SITUATION_CONFIDENCE = 0.4  # ... and any other situation's script (below: the general move)
CALM_MOODS = frozenset({"calm", "thankful", "neutral", "satisfied"})  # any other mood label is upset
THANKFUL_MOODS = frozenset({"thankful", "satisfied"})
GREETINGS = frozenset({"greeting", "holiday_greeting", "answer_late"})
MID_CALL_SITUATIONS = GREETINGS | {"silent_line"}  # the opening's situations: never offered mid-call ...
# ... except a silent line its cue words find: a recording playing where the caller was (呼叫保持, 请不要挂机;
# 7 lines of the 300 real calls, mid-call; the labels ask for the silent-line procedure there).
RECORDING_SITUATION = "silent_line"
GREETING_ONLY = re.compile(r"[嗯啊哦喂哎诶,，。 ]*(?:你好|您好)[啊呀吧哈那个,，。!！ ]*$")
# Situations whose scripts already put empathy first, and upset situations (they make empathy owed).
UPSET_SITUATION_KEYS = frozenset(
    {
        "angry_caller", "vent", "apology", "emotion_acceptance", "own_responsibility", "compensation",
        "negotiate_demands", "complaint_colleague_attitude", "complaint_colleague_error", "complaint_own_error",
        "transfer_manager", "quick_action", "follow_through", "brushed_off",
    }
)  # fmt: skip
# The handbooks' own empathy lines, by the customer's mood (quotes of knowledge/scripts.yaml).
UNDERSTANDING = "遇到这种情况确实很着急,我非常理解您的心情"  # the empathy line that is no apology
EMPATHY_QUOTES = {
    "angry": "非常抱歉给您带来了不便",
    "distressed": UNDERSTANDING,
    "anxious": UNDERSTANDING,
}
DEFAULT_EMPATHY = "非常抱歉给您带来了不便"
# Lines that only acknowledge the feeling (情绪识别与接纳: 「我理解」「您的心情我明白」): alone they answer nothing.
ACKNOWLEDGEMENTS = frozenset({UNDERSTANDING, "您的心情我明白"})
# The general moves when no situation is confident (keys of knowledge/situations.yaml with ``says``).
QUESTION_MOVE = "cannot_answer_now"  # a question the handbooks cannot answer: confirm, then call back
STATEMENT_MOVE = "confirm_problem"  # a statement: record, recap and confirm
THANKS_MOVE = "thanks"
# Thanks taken back by a "but": the line's point is what follows (谢谢回复,不过我觉得…, 感谢 还是不行), and the
# thank-you answers nothing. The call's score still counts the thanks (it tracks satisfaction on the helpdesk set).
# The thanks cue of situations.yaml passes over the same words (its lookahead), so both paths agree.
THANKS_THEN_BUT = re.compile(
    r"(谢|辛苦|麻烦[你您]?了)[^。!！?？]{0,12}?(不过|(?<!不)但(?!愿)|可是|只是|然而|还是不)"
)
# A question: a question word, or 呢 closing the line (那退款呢). A 呢 inside the line is a topic or discourse
# marker (然后呢, 他的意思呢), and 呢 after 没/着/在 says "not yet" or "still" (还没就医呢, 还饿着呢, 在医院呢):
# on the tune part's calls 63 such statements were read as questions and answered "I need to confirm".
# 啥/咋 ask only in these forms (不咋地, 那啥, 啥也不说 do not); 没有没有 holds 有没有 and asks nothing.
QUESTION_WORDS = re.compile(
    r"吗|什么时候|什么意思|什么情况|凭什么|多久|多长时间|怎么|怎样|能不能|可不可以|为什么|是不是|(?<!没)有没有"
    r"|几天|几点|多少|哪|为啥|干啥|啥(?:意思|时候|情况|原因)|是啥|咋(?![地的咋])|[?？]"
)
FINAL_NE = re.compile(r"呢[啊呀吧哈,，。 ]*$")
NOT_YET_NE = re.compile(r"(?:没|在|着)[^,，。]{0,10}呢[啊呀吧哈,，。 ]*$")
FILLERS = re.compile(r"[嗯呃啊哦喂哎唉诶那个就是然后对好的行吧呀了的嘛\s,，。.!！?？、]")
COMPLAINT_KEYS = UPSET_SITUATION_KEYS | {"confirm_problem", "complaint_cannot_answer", "complaint_procedure"}
COMPLAINT_TOP = 3  # a complaint among the best 3 situations makes empathy owed, whatever the mood model read
SETTLED_KEYS = frozenset({"thanks", "resolved", "closing"})  # ... unless the best match says it is settled
CALM_RECAP = "您反映的情况我已经记录下来了"  # the statement move for a calm customer: recap, no apology
CONTEXT_TURNS = 4  # the last turns read for what the agent already said
REPEAT_OVERLAP = 0.7  # share of a script's character bigrams the agent already said that makes it a repeat
MIN_CONTENT_CHARS = 4  # a turn with fewer content characters (嗯好的, 对对) needs no new suggestion
# The caller asks the agent to hold on (你稍等一下 / 等我一下, 稍等我看一下): the agent waits. The hold
# scripts are the agent's own words (我帮您查询一下,请您稍等) and the recap answers nothing. 39 of the 3,267
# labelled caller lines of ../shared/realdata (a question after it is answered as usual); "等会儿你给我回电话"
# is not a hold request.
HOLD_REQUEST = re.compile(
    r"(?:你|您|^|[嗯啊哦好行的那吧哈,，。 ])先?(?:稍等|稍微等|等一下|等我|等等|等会儿?)"
    r"(?!.{0,6}(?:(?:你|您)(?:再|会)?(?:给我)?|再)(?:打|回|联系))"
)
# The caller refuses another apology (你别抱歉了, 你光说抱歉有什么用): empathy without saying sorry again, the
# script without its opening apology, then the matter (4 tune-part lines of ../shared/realdata, each after the
# agent had apologised more than once).
APOLOGY_REFUSED = re.compile(
    r"(?:别|不要|不用)再?(?:给我|跟我)?(?:说|讲)?(?:这些|什么)?(?:道歉|抱歉|对不起|不好意思)"
    r"|(?:道歉|抱歉|对不起|不好意思)(?:有什么用|没用|顶什么用)"
)
# A question an upset caller asks to complain, not to learn (打这个电话有什么用啊, 你到底能不能查询明白了, 我现在怎么
# 吃饭呀, 这样统一回复真的好吗): the complaint move answers it (apology, record and check); "I need to confirm and
# call you back" answers a question nobody asked.
RHETORICAL = re.compile(
    r"有什么用|有啥用|顶什么用|难道|到底(?:能不能|要怎样|要怎么样|怎么回事)|真的好吗|就没有别的|让我怎么"
    r"|我(?:现在)?(?:该)?怎么(?:吃|过|办法)|开玩笑"
)
# The agent has just asked whether there is anything else (还有其他可以帮您的吗) and the caller says no (没有啊,
# 不用不用, 嗯暂时不用): the farewell. A bare 没有 answers many mid-call questions, so only after that question;
# 没有了 on its own is a cue of the closing situation already (knowledge/situations.yaml).
ANYTHING_ELSE = re.compile(r"还有(?:没有)?(?:其他|别的|什么).{0,6}(?:帮|协助|问题|需要|诉求|事)")
# The caller says they can hear (能听到能听到, 听得见你说, 嗯听听得到): an answer to the agent's 听得到吗, nothing
# to answer.
HEARS_YOU = re.compile(
    r"[嗯啊喂哎哦,，。 ]*(?:(?:能|可以)?听?听得?(?:到|见|清楚?)(?:了|的)?[啊呀嗯,，。 ]*)+(?:[你您](?:说|讲))?[啊呀嗯,，。!！ ]*"
)
# The caller hands the floor back (你说, 嗯可以你说, 你说吧): the agent goes on. Read on the caller's last line
# alone: merged with the line before, 你说吧 was answered as that line (8 lines of ../shared/realdata got a recap).
FLOOR_GIVEN = re.compile(
    r"[嗯啊哦哎喂好行对可以的你您,，。 ]*[你您](?:说|讲)(?:[吧啊呀嘛,，。 ]|[你您](?:说|讲))*"
)
# The caller asks whether the agent understood them at all (你有没有听懂我在说什么: a cue of the statement move's
# situation): the apology and the recap of what was understood, not another "recorded".
RECAP_ASK = "我跟您复述一下您反映的问题"
NOTHING_MORE = re.compile(
    r"[嗯啊哦哎好行的呃那嘞,，。 ]*(?:(?:暂时|目前|今天|现在|先|也|就|都)?(?:没有|没了|没事|不用|不需要)[了啦啊呀的嘞]*[,，。 ]*)+"
    r"(?:谢谢[你您]?[了啊嗯呀]*)?[嗯,，。!！ ]*"
)
# The caller asks when, urges or repeats the time back after the agent promised a callback time in this call
# (多久, 尽快吧, 半个小时是吧): the promised time, restated (progress_update's first line, its {callback} slot
# filled from the call). Not when the line asks about something else that takes time (退款多久到账, 骑手什么时候送到).
CALLBACK_ASKED = re.compile(r"多久|多长时间|什么时候|啥时候|几点|尽快|抓紧|快点|赶紧")
NOT_THE_CALLBACK = re.compile(r"到账|退款|退钱|退回|送|到货|到得|能到|骑手|配送|外卖")
CALLBACK_MOVE = "progress_update"
ECHO_CHARS = 10
# The caller stopped mid-sentence (…然后, …但是, 就是那个): the handbooks' move is to listen without interrupting
# (耐心多一点, 专业倾听与记录), so a calm caller gets no recap yet; an upset one still gets the acknowledgement.
# 那个/这个 after a verb is its object (我不想走那个), not a trailing filler.
# 134 of the 2,137 labelled tune-part caller lines end so (17 of them upset).
STILL_TALKING = re.compile(
    r"(?:然后呢?|但是|所以|因为|就是说?|(?<![走要用选是买点吃退])[那这]个|的话|的时候|而且|还有|之后|完了|就说|他说|我说|并且"
    r"|可是|不过|或者|比如)"
    r"[嗯啊呃哦,， ]*$"
)
# A demand for money: asked about, or stated with its amount or multiple (see choose_script).
DEMAND_KEYS = frozenset({"compensation", "negotiate_demands"})
DEMAND_MOVE = "complaint_cannot_answer"
# An ultimatum states its demand too (四点半之前必须回电话要不然我就投诉, 一个小时不然我就打消协了), and so does
# naming what is to be paid (赔点医药费给我, 这个药费看看能不能申请, 我要全部退).
DEMAND_STATED = re.compile(
    r"[0-9一二两三四五六七八九十百千万]+(?:块|元|倍)|退一赔|赔[一二两三四五六七八九十]|(?:要求|要的是|就要).{0,10}(?:赔偿|补偿|赔)"
    r"|(?:不然|否则)(?:的话)?[,， ]*我?就?(?:要|去|会)?(?:打|找|去)?(?:投诉|消协|12315|幺二三|曝光|报警|起诉|工商)"
    r"|医药费|药费|全部退|全额退|退全款"  # the terms named: the medical costs, all of the money
)
# A bare no to what the agent just proposed (…补偿您看可以吗 -> 不可以): the handbook's negotiation move, asking
# what the caller wants (互相协商), not silence for a short turn. 不用 / 不要 decline help politely and stay out.
OFFER_REFUSED = re.compile(
    r"[嗯啊哦那哎我,，。 ]*(?:不可以|不行|不同意|不接受|不认可|不满意)[啊吧呀我的了,，。 ]*"
)
PROPOSED = re.compile(
    r"(?:可以吗|行吗|好吗|好不好|可不可以|行不行|认可吗|同意吗|接受吗|满意吗|您看呢|你看呢)[先生女士呢啊嘛,，。?？ ]*$"
)
REFUSAL_MOVE = "negotiate_demands"
# The agent checked a detail back (您是这个手机号下的订单吗, 有头发是吗, 面包吗) and the caller's short line says no
# to it (不是这个号, 不是头发是钢丝球, 嗯不是): the handbook checks again (knowledge/situations.yaml ``corrected``).
CHECKED_BACK = re.compile(r"(?:吗|吧|对不对|是不是)[先生女士呢啊嘛,，。?？ ]*$")
CORRECTION = re.compile(r"[嗯呃哎啊噢哦,， ]*不是(?!说)")
CORRECTION_CHARS = 16  # longer, the caller goes on to the matter (不是我是要求退款我不要求补偿…)
CORRECTED_MOVE = "corrected"
# An outburst after the caller has already told the problem (two lines with content before it): the handbook's
# soothing line (耐心倾听与共情能力: 非常抱歉给您造成麻烦,我会尽快帮您解决), not 「请您将情况告诉我」, which asks for
# the story again. The opening outburst keeps the latter.
OUTBURST_KEYS = frozenset({"angry_caller", "vent"})
SOOTHE_TOLD = "我会尽快帮您解决"
TOLD_LINES = 2
CLOSING_KEY = "closing"
NOTHING_TEXT = ""  # what "no suggestion" shows: nothing to say, with the reason beside it


@dataclass(frozen=True)
class Cite:
    id: str
    text: str
    source: str
    section: str
    quote: str = ""  # the words of the passage the suggestion rests on


@dataclass(frozen=True)
class Latency:
    script: float | None = None  # ms from the end of the customer's turn to the script
    first_token: float | None = None
    done: float | None = None


@dataclass(frozen=True)
class Suggestion:
    script: str  # the handbook script, slots filled
    text: str  # what the agent should say: the kept rewrite, or the script
    cites: tuple[Cite, ...]
    fallback: bool  # True when ``text`` is the script (no LLM, guard refused, or cancelled)
    reason: str  # why the script was kept ("" when the rewrite was kept)
    latency_ms: Latency
    script_id: str = ""
    situation: str = ""
    final: bool = True  # False while the LLM is still streaming
    streaming_text: str = ""  # the rewrite so far (already passed the rules), shown while streaming
    situation_key: str = ""  # the situation the turn was matched to ("" when none was confident)
    special: bool = False  # a special-situation script (wrong number, can't hear, greeting, farewell...)
    confidence: float = 0.0  # calibrated confidence of the matched situation
    move: str = "script"  # script | general (the handbook's general move) | none (nothing to suggest)
    mood: str = ""  # the customer's mood (the checks' mood model)
    upset: bool = False
    empathy_first: bool = False  # the text opens with empathy or an apology
    none_fits: bool = False  # no handbook passage fits this moment


@dataclass(frozen=True)
class SuggestOptions:
    k: int = 3  # passages cited
    use_llm: bool = True
    max_new_tokens: int | None = None  # None: the suggester's configured budget ([llm] max_new_tokens)
    blocked: frozenset[str] = field(default_factory=frozenset)  # texts trainers blocked: never shown


@dataclass(frozen=True)
class ScriptChoice:
    script: Script
    text: str  # slots filled
    hits: tuple[SearchHit, ...]
    score: float
    situation: SituationMatch | None = None  # the confident situation the script answers
    move: str = "script"  # script | general | none
    mood: str = ""
    upset: bool = False
    empathy_first: bool = False
    none_fits: bool = False
    passages: tuple[str, ...] = ()  # ids of the passages the move rests on, cited first
    why: str = ""  # for move none: why nothing is suggested
    move_key: str = ""  # the situation whose script or general move this is
    quotes: tuple[str, ...] = ()  # the move's clause quotes: what to quote of a cited passage
    no_apology: bool = False  # the caller refused another apology: none in the script, none in a rewrite
    address: str = (
        "您"  # how the rewrite addresses the customer (CallSlots.address, read with the script's slots)
    )


def asks(text: str) -> bool:
    """Whether the caller's line asks something (the general move then confirms and calls back)."""
    return bool(QUESTION_WORDS.search(text)) or bool(FINAL_NE.search(text) and not NOT_YET_NE.search(text))


def _echoes(promised: str, line: str) -> bool:
    """The caller repeats the promised time back (明天一点是吧 after 明天的一点之前): confirm it. Only a short
    line: a long one quoting the time is arguing with it (你还让我耐心等待二十四小时), not checking it."""
    core = re.sub(r"(?:之内|以内|内|之前|以前|前)$", "", promised).replace("的", "")
    return len(core) >= 2 and len(line) <= ECHO_CHARS and core in line.replace("的", "")


def _agent_just_said(earlier: Sequence[Turn]) -> str:
    """The agent's line right before the caller's ("" when the caller spoke last or nobody has)."""
    return earlier[-1].text if earlier and earlier[-1].speaker == "agent" else ""


def _mid_call(earlier: Sequence[Turn]) -> bool:
    """The agent has spoken, or the caller has said more than one thing: past the opening."""
    return any(t.speaker == "agent" for t in earlier) or len(earlier) >= 2


def content_chars(text: str) -> int:
    """Characters that carry content (fillers, backchannels and punctuation removed)."""
    return len(FILLERS.sub("", text))


QUOTE_CHARS = 80


def _quote(text: str, clauses: Sequence[str]) -> str:
    """The sentence of a passage that holds one of the move's clause quotes, else its first sentence."""
    sentences = [part.strip() for part in re.split(r"(?<=[。!?！？;；\n])", text) if part.strip()]
    for clause in clauses:
        for index, sentence in enumerate(sentences):
            if clause in sentence:
                # a heading-only sentence (11、遇到…时) says more with the sentence after it
                if len(sentence) <= len(clause) + 6 and index + 1 < len(sentences):
                    sentence = f"{sentence} {sentences[index + 1]}"
                return sentence[:QUOTE_CHARS]
    return sentences[0][:QUOTE_CHARS] if sentences else ""


def _needed(situation: Situation) -> float:
    return SPECIAL_CONFIDENCE if situation.special else SITUATION_CONFIDENCE


def _match(found: Assessment, key: str) -> SituationMatch | None:
    """The general move's situation, with the confidence the matcher gave it (0 when not among the best)."""
    for match in found.situations:
        if match.situation.key == key:
            return match
    return None


def without_apology(text: str) -> str:
    """The script without its opening apology clause (很抱歉给您添麻烦了,您反映的问题… -> 您反映的问题…)."""
    head, comma, rest = text.partition(",")
    return rest if comma and APOLOGY_WORDS.search(head) and rest else text


def _repeats(text: str, said: str) -> bool:
    """The agent just said (nearly) this: suggesting it again would be a loop."""
    return bool(said) and overlap(text, [said]) >= REPEAT_OVERLAP


class Suggester:
    """Shared, read-only after construction: one per process, used by every call session."""

    def __init__(
        self,
        retriever: Retriever,
        scripts: Sequence[Script],
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        rules: RuleEngine | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        gate: GenerationGate | None = None,
        company: CompanyConfig | None = None,
        scrape_wordings: Sequence[str] = (),
    ) -> None:
        self.retriever = retriever
        # The handbooks' scraped wordings (我于 for 我在) that a rewrite must not bring back.
        self.scrape_wordings = tuple(scrape_wordings)
        self.company = company or CompanyConfig()  # fills the scripts' placeholders (xxxx, 敝姓X, **小时内)
        self._situation_rows = {
            situation.key: rows
            for situation, rows in zip(retriever.situations, retriever.links.passages, strict=True)
        }
        self._clause_rows = {
            situation.key: rows
            for situation, rows in zip(retriever.situations, retriever.clause_rows, strict=True)
        }
        self._situations = {situation.key: situation for situation in retriever.situations}
        self.gate = gate  # shared by every session: how many rewrites run at once
        self.max_new_tokens = max_new_tokens
        self.scripts = [s for s in scripts if s.kind == "script"] or [GENERIC_SCRIPT]
        self.embedder = embedder
        self.generator = generator
        self.rules = rules
        self._script_vectors: np.ndarray | None = None
        if embedder is not None:
            self._script_vectors = embedder.embed(
                [f"{s.situation} {s.text}" for s in self.scripts], kind="passage"
            )

    # -- choosing the script -------------------------------------------------------------------------
    def choose_script(
        self, segments: Sequence[Segment], blocked: frozenset[str] = frozenset()
    ) -> ScriptChoice:
        """The script for the moment: a confident situation's, else the handbooks' general move, else none."""
        if not self.retriever.situations or self.retriever.embedder is None:
            return self._closest_script(segments, blocked)  # no situation layer: the nearest script
        history = turns(segments)
        if not history:
            return ScriptChoice(GENERIC_SCRIPT, "", (), 0.0, move="none", why="no customer turn yet")
        latest_at = max(
            (i for i, turn in enumerate(history) if turn.speaker != "agent"), default=len(history) - 1
        )
        latest = history[latest_at].text
        # The customer's last line is what to answer; the merged turn only when that line says nothing on its
        # own (ASR cut one sentence in two). A merged turn would carry an earlier 再见了 into a new question.
        lines = [s.text.strip() for s in segments if s.speaker != "agent"]
        earlier = history[:latest_at]
        # The mood as the checks read it: a line without cues of its own keeps an upset mood of the customer's
        # last lines (labelled caller lines of ../shared/realdata, tune part: empathy when upset 0.868 -> 0.901).
        # The last line's mood reads every earlier customer line; the merged turn's, the turns before it.
        # A short line that settles the call (谢谢, 好的辛苦了, 没有了) is whole: merged, the question before it
        # would be answered instead of the thanks (6 of 46 thankful tune-part caller lines).
        if lines and (content_chars(lines[-1]) >= MIN_CONTENT_CHARS or self._settles(lines[-1])):
            latest, earlier_lines = lines[-1], lines[:-1]
        else:
            earlier_lines = [t.text for t in earlier if t.speaker != "agent"]
        said = " ".join(t.text for t in earlier[-CONTEXT_TURNS:] if t.speaker == "agent")
        found = assess(self.retriever, latest, k=SEARCH_DEPTH)
        # A correction is read from the agent's question before it (below), never by likeness: a short 不是 line
        # that resembles one must not push a complaint out of the best matches.
        found = replace(
            found, situations=tuple(m for m in found.situations if m.situation.key != CORRECTED_MOVE)
        )
        mood = mood_in_call(latest, earlier_lines).label
        situation, top = self._situation_of(found, latest, earlier)
        # A complaint among the best matches owes empathy, unless the turn is confidently a special or
        # settled situation, or a moment its own words name that is no complaint (a wrong number, a thank-you,
        # 你能听到我说话吗 or 我已经上传了 is not a complaint; the mood still decides). The question move's cue
        # words (为什么, 怎么回事) name no moment: 平白扣费300？这是怎么回事 is a complaint.
        named = situation is not None and (
            situation.situation.special
            or (
                situation.situation.key in found.cued
                and situation.situation.key not in COMPLAINT_KEYS | {QUESTION_MOVE}
            )
        )
        complaint = any(m.situation.key in COMPLAINT_KEYS for m in found.situations[:COMPLAINT_TOP]) and not (
            top is not None and (top.situation.key in SETTLED_KEYS or named)
        )
        upset = mood not in CALM_MOODS or complaint
        refused = bool(APOLOGY_REFUSED.search(latest))  # no apology again: understanding, then the matter

        def nothing(why: str) -> ScriptChoice:
            return ScriptChoice(
                GENERIC_SCRIPT, NOTHING_TEXT, found.hits, 0.0, None, "none", mood, upset, False,
                found.none_fits, why=why,
            )  # fmt: skip

        last_line = lines[-1] if lines else latest
        if HEARS_YOU.fullmatch(last_line):
            return nothing("nothing to suggest: the customer says they can hear; go on")
        if FLOOR_GIVEN.fullmatch(last_line):
            return nothing("nothing to suggest: the customer lets the agent speak; go on")
        if mood in CALM_MOODS and HOLD_REQUEST.search(latest) and not asks(latest):
            return nothing("nothing to suggest: the customer asked for a moment; wait for them")
        if situation is None and mood in CALM_MOODS and STILL_TALKING.search(latest) and not asks(latest):
            return nothing(
                "nothing to suggest yet: the customer stopped mid-sentence; listen, do not interrupt"
            )
        slots = extract_slots(segments)

        def fill(script: Script) -> str:
            return fill_company(fill_script(script.text, slots), self.company)

        def usable(script: Script, text: str) -> bool:
            return not (
                text in blocked
                or script.text in blocked
                or unfilled_placeholders(text)
                or _repeats(text, said)
            )

        def says(key: str, prefer: str = "") -> tuple[Script, str] | None:
            known = self._situations.get(key)
            quotes = known.says if known is not None else ()
            for quote in sorted(quotes, key=lambda q: q != prefer):
                for script in self.scripts:
                    if quote in script.text and usable(script, fill(script)):
                        return script, fill(script)
            return None

        chosen: tuple[Script, str] | None = None
        move = "script"
        move_key = situation.situation.key if situation is not None else ""
        if move_key == CLOSING_KEY and self._situations[CLOSING_KEY].says:
            farewell = self._situations[CLOSING_KEY].says[0]
            plain = next((fill(script) for script in self.scripts if farewell in script.text), "")
            if plain and _repeats(plain, said):
                # The agent has just said this goodbye: the call is over. A longer farewell script would only
                # add words (one promises 我们会尽快反映,并给您答复 to a caller who is hanging up).
                return nothing("nothing to suggest: the agent has said goodbye; the caller is leaving")
        if (
            slots.callback
            and (CALLBACK_ASKED.search(latest) or _echoes(slots.callback, latest))
            and not NOT_THE_CALLBACK.search(latest)
            and (situation is None or not situation.situation.special)
        ):
            restated = says(CALLBACK_MOVE)
            if restated is not None and "{callback}" in restated[0].text:  # not the move's look-it-up line
                chosen, move_key, situation = restated, CALLBACK_MOVE, _match(found, CALLBACK_MOVE)
        just_said = _agent_just_said(earlier)
        offered = PROPOSED.search(just_said)
        # 不是 to an offer (回电您看可以吗) turns it down: there is no detail to check again
        if (
            CHECKED_BACK.search(just_said)
            and not offered
            and history[latest_at].text == last_line  # the caller's first words since the agent's question
            and CORRECTION.match(last_line)
            and len(last_line) <= CORRECTION_CHARS
            and not asks(last_line)
            and (again := says(CORRECTED_MOVE)) is not None
        ):
            # the agent's own question says what the no answers: as sure as the caller's nothing-more to 还有吗
            situation = SituationMatch(self._situations[CORRECTED_MOVE], 0.0, 1.0)
            chosen, move_key = again, CORRECTED_MOVE
        if offered and OFFER_REFUSED.fullmatch(latest) and (asked := says(REFUSAL_MOVE)) is not None:
            chosen, move_key, situation = asked, REFUSAL_MOVE, _match(found, REFUSAL_MOVE)
        if chosen is None and situation is not None and move_key in DEMAND_KEYS:
            # "What would you like us to do?" answers neither a demand already stated (十倍赔偿, 赔我一千, even
            # asked as 退一赔三行不行): that one is recorded and passed up, with an answer to come and no promise
            # (无法当场答复的用户投诉); nor a question about the money (the general question move).
            if DEMAND_STATED.search(latest) and (passed_up := says(DEMAND_MOVE)) is not None:
                chosen, move_key, situation = passed_up, DEMAND_MOVE, _match(found, DEMAND_MOVE)
            elif asks(latest):
                situation = None
        if chosen is None and situation is not None:
            told = sum(content_chars(line) >= MIN_CONTENT_CHARS for line in earlier_lines) >= TOLD_LINES
            if move_key == STATEMENT_MOVE and STATEMENT_MOVE in found.cued:
                prefer = RECAP_ASK
            else:
                prefer = SOOTHE_TOLD if told and move_key in OUTBURST_KEYS else ""
            chosen = says(move_key, prefer=prefer)
        if chosen is None:
            situation = None
            move = "general"
            if content_chars(latest) < MIN_CONTENT_CHARS and mood in CALM_MOODS:
                return nothing(
                    "nothing to suggest: the turn adds nothing to answer (a backchannel or a filler)"
                )
            elif (
                mood in THANKFUL_MOODS
                and not asks(latest)
                and not complaint
                and not THANKS_THEN_BUT.search(latest)
            ):
                move_key = THANKS_MOVE
            else:
                move_key = (
                    QUESTION_MOVE
                    if asks(latest) and not (upset and RHETORICAL.search(latest))
                    else STATEMENT_MOVE
                )
            chosen = says(move_key, prefer="" if upset else CALM_RECAP)
            situation = _match(found, move_key)
        if chosen is None:
            chosen = (GENERIC_SCRIPT, fill(GENERIC_SCRIPT))
        script, text = chosen
        quotes = self._situations[move_key].clauses if move_key in self._situations else ()
        passages = [self.retriever.passages[row].id for row in self._clause_rows.get(move_key, ())]
        if script.passage_id and script.situation_key == move_key:
            passages.insert(0, script.passage_id)
        elif script.passage_id:
            # Words borrowed from another moment (the farewell is the silent-line script's last line): the
            # move's main clause is cited first, then the script's passage, where the words are from.
            passages.append(script.passage_id)
        if text.strip("。.!！ ") in ACKNOWLEDGEMENTS and (action := says(STATEMENT_MOVE)) is not None:
            # An acknowledgement alone answers nothing (你一直说抱歉有什么用, 这处理的也太敷衍了吧: 4 tune-part turns
            # judged not relevant): the handbook's move is to acknowledge, then take the matter on (record and check).
            text = f"{text.rstrip('。.!！')},{without_apology(action[1])}"
            passages += [self.retriever.passages[row].id for row in self._clause_rows.get(STATEMENT_MOVE, ())]
        if refused:
            text = without_apology(text)
        # A goodbye or a thank-you to an upset caller closes with the apology for the trouble; 「遇到这种情况
        # 确实很着急」 before 「感谢您的来电,再见」 answers a worry nobody is voicing any more.
        settled = move_key in SETTLED_KEYS
        if upset and not opens_with_empathy(text) and not (refused and settled):
            text = f"{DEFAULT_EMPATHY if settled else self._empathy(mood, sorry=not refused)},{text}"
            passages += [
                self.retriever.passages[row].id for row in self._situation_rows.get("emotion_acceptance", ())
            ]
        return ScriptChoice(
            script,
            text,
            found.hits,
            situation.confidence if situation is not None else 0.0,
            situation,
            move,
            mood,
            upset,
            opens_with_empathy(text),
            found.none_fits,
            tuple(dict.fromkeys(passages)),
            move_key=move_key,
            quotes=quotes,
            no_apology=refused,
            address=slots.address,
        )

    def _situation_of(
        self, found: Assessment, latest: str, earlier: Sequence[Turn]
    ) -> tuple[SituationMatch | None, SituationMatch | None]:
        """The situation confident enough for its script (None: the general move), and the best match."""
        top = found.situations[0] if found.situations else None
        situation = top if top is not None and top.confidence >= _needed(top.situation) else None
        if situation is not None and situation.situation.key in MID_CALL_SITUATIONS and _mid_call(earlier):
            recording = situation.situation.key == RECORDING_SITUATION and RECORDING_SITUATION in found.cued
            situation = situation if recording else None  # never the opening mid-call
        if situation is not None and GREETING_ONLY.match(latest) and situation.situation.key not in GREETINGS:
            situation = None  # 你好啊那个那个 is a hello (or the caller back at the phone), not a thank-you
        if (
            situation is not None
            and situation.situation.special
            and situation.situation.cues
            and situation.situation.key not in found.cued
        ):
            # A special moment with cue words is offered only on them: on a short ASR fragment e5 finds a
            # thank-you or a goodbye by likeness alone (啊你, 您好同事 -> thanks; 就这样的, 那我没挂上啊 -> closing).
            situation = None
        asked_anything_else = ANYTHING_ELSE.search(_agent_just_said(earlier))
        if asked_anything_else and NOTHING_MORE.fullmatch(latest) and CLOSING_KEY in self._situations:
            situation = _match(found, CLOSING_KEY) or SituationMatch(self._situations[CLOSING_KEY], 0.0, 1.0)
            top = situation  # settled: no complaint empathy for "nothing else"
        return situation, top

    def _cued(self, text: str) -> set[str]:
        """Keys of the situations whose cue words are in a line other than the one assessed (that one's are
        ``Assessment.cued``), read as ``assess`` reads it (NFKC, Simplified): the cues are written in
        Simplified, and 謝謝！ must settle a call as 谢谢! does."""
        return {
            self.retriever.situations[i].key for i in self.retriever.cued_situations(normalize_query(text))
        }

    def _settles(self, line: str) -> bool:
        """The line says thanks, goodbye or "it works now" (a cue of a settled situation)."""
        return bool(self._cued(line) & SETTLED_KEYS)

    def _empathy(self, mood: str, *, sorry: bool = True) -> str:
        """The handbook's empathy line for this mood (as a script quotes it); ``sorry=False``: no apology."""
        quote = EMPATHY_QUOTES.get(mood, DEFAULT_EMPATHY) if sorry else UNDERSTANDING
        if any(quote in script.text for script in self.scripts):
            return quote
        return DEFAULT_EMPATHY if sorry else UNDERSTANDING  # never sorry again to a caller who refused it

    def _closest_script(self, segments: Sequence[Segment], blocked: frozenset[str]) -> ScriptChoice:
        """Without a situation layer: the script closest to the query, its passage and the mood."""
        query = build_query(segments)
        hits = tuple(self.retriever.search(query, k=SEARCH_DEPTH)) if query else ()
        rank_of = {hit.passage.id: rank for rank, hit in enumerate(hits)}
        similarity = np.zeros(len(self.scripts), dtype=np.float32)
        if self._script_vectors is not None and self.embedder is not None and query:
            similarity = self._script_vectors @ self.embedder.embed([query], kind="query")[0]
        slots = extract_slots(segments)
        # The handbooks' first rule for an upset caller is to apologise and empathise, whatever the topic.
        mood = latest_mood([s.text for s in segments if s.speaker != "agent"])
        upset = mood is not None and mood.label not in CALM_MOODS
        best: ScriptChoice | None = None
        for index, script in enumerate(self.scripts):
            text = fill_company(fill_script(script.text, slots), self.company)
            if text in blocked or script.text in blocked:
                continue
            link = rank_of.get(script.passage_id)
            score = float(similarity[index]) + (PASSAGE_LINK_WEIGHT / (1 + link) if link is not None else 0.0)
            if upset and script.situation_key in UPSET_SITUATIONS:
                score += MOOD_WEIGHT
            if best is None or score > best.score:
                best = ScriptChoice(script, text, hits, score, address=slots.address)
        if best is None:  # every script blocked: the neutral one still cites the passages
            best = ScriptChoice(GENERIC_SCRIPT, GENERIC_SCRIPT.text, hits, 0.0, address=slots.address)
        return best

    def cites(self, choice: ScriptChoice, k: int) -> tuple[Cite, ...]:
        """The passages the suggestion rests on: the move's main one (and the script's own passage when its
        words are borrowed from another moment), what retrieval found, the move's others."""
        own = [self.retriever.by_id[i] for i in choice.passages if i in self.retriever.by_id]
        lead = own[:1] + [p for p in own[1:] if p.id == choice.script.passage_id]
        cited: list[Cite] = []
        for passage in [*lead, *(hit.passage for hit in choice.hits), *own]:
            if len(cited) >= k or any(c.id == passage.id for c in cited):
                continue
            quote = _quote(passage.text, choice.quotes)
            cited.append(Cite(passage.id, passage.text, passage.source, passage.section, quote))
        return tuple(cited)

    def warm(self) -> None:
        """Pay the first suggestion's one-off costs now (jieba, query embedding, the LLM's system-prefix
        KV cache), so the first customer turn of a call is as fast as the rest."""
        context = (Segment("customer", 0.0, 0.0, "你好，我的洗衣机坏了"),)
        # Past the gate: a call starting while the app warms up must not wait behind this one token.
        for _ in self.suggest(context, options=SuggestOptions(max_new_tokens=1), gated=False):
            pass

    def rule_violations(self, text: str) -> list[str]:
        if self.rules is None:
            return []
        flags = self.rules.check_utterance(Segment(speaker="agent", start=0.0, end=0.0, text=text))
        return sorted({f"{f.rule}:{f.kind}" for f in flags if f.kind not in NON_SUGGESTION_KINDS})

    # -- the suggestion stream -----------------------------------------------------------------------
    def suggest(
        self,
        segments: Sequence[Segment],
        *,
        options: SuggestOptions = SuggestOptions(),
        stop: threading.Event | None = None,
        turn_ended: float | None = None,
        gated: bool = True,
    ) -> Iterator[Suggestion]:
        """Yield the script at once, then the streaming rewrite, then the final guarded suggestion.

        ``turn_ended`` is the ``time.monotonic()`` at which the customer's turn ended (latencies are
        measured from it; default: now). Setting ``stop`` cancels the LLM; the script stays. ``gated=False``
        generates without waiting for a place at the shared gate (the warm-up's single token).
        """
        started = turn_ended if turn_ended is not None else time.monotonic()

        def ms() -> float:
            return round((time.monotonic() - started) * 1000.0, 1)

        choice = self.choose_script(segments, options.blocked)
        cites = self.cites(choice, options.k)
        latency = Latency(script=ms())
        matched = choice.situation
        base = Suggestion(
            script=choice.text,
            text=choice.text,
            cites=cites,
            fallback=True,
            reason=choice.why,
            latency_ms=latency,
            script_id=choice.script.id if choice.move != "none" else "",
            situation=matched.situation.title if matched is not None else choice.script.situation,
            final=False,
            situation_key=choice.move_key,
            special=choice.move == "script" and matched is not None and matched.situation.special,
            confidence=round(choice.score, 3),
            move=choice.move,
            mood=choice.mood,
            upset=choice.upset,
            empathy_first=choice.empathy_first,
            none_fits=choice.none_fits,
        )
        if choice.move == "none":
            yield replace(base, final=True)
            return
        if not options.use_llm or self.generator is None:
            yield replace(base, final=True, reason="LLM disabled")
            return
        yield base

        history = turns(segments)
        customer = next((t.text for t in reversed(history) if t.speaker != "agent"), "")
        messages = suggestion_messages(customer, choice.text, [c.text for c in cites], choice.address)
        context = [s.text for s in segments]
        sources = [choice.text, *(c.text for c in cites)]
        text = ""
        first_token: float | None = None
        reason = ""
        budget = options.max_new_tokens or self.max_new_tokens
        gate = self.gate if gated else None
        ticket = gate.enter(stop) if gate is not None else None
        if gate is not None and ticket is None:
            cancelled = stop is not None and stop.is_set()
            yield replace(
                base,
                final=True,
                reason="cancelled by a new customer turn" if cancelled else BUSY_REASON,
                latency_ms=Latency(latency.script, None, ms()),
            )
            return
        pieces = self.generator.stream(messages, max_new_tokens=budget, stop=stop)
        try:
            for piece in pieces:
                if first_token is None:
                    first_token = ms()
                text += piece
                # No streamed prefix may show a forbidden phrase or an invented promise: stop at the first.
                violated = self.rule_violations(text)
                invented = unsupported_promises(text, [*sources, *context])
                if violated or invented:
                    reason = (
                        "breaks rule(s): " + ", ".join(violated)
                        if violated
                        else "promise not in the handbook or the call: " + "、".join(invented)
                    )
                    break
                yield replace(base, streaming_text=text, latency_ms=Latency(latency.script, first_token))
                if stop is not None and stop.is_set():
                    break
        finally:
            close = getattr(pieces, "close", None)  # generators: stops the model's compute at once
            if close is not None:
                close()
            if gate is not None and ticket is not None:
                gate.leave(ticket)
        done = ms()
        timing = Latency(latency.script, first_token, done)
        if stop is not None and stop.is_set():
            yield replace(base, final=True, reason="cancelled by a new customer turn", latency_ms=timing)
            return
        if not reason:
            verdict = check_rewrite(
                text.strip(),
                script=choice.text,
                passages=[c.text for c in cites],
                call_context=context,
                rule_violations=self.rule_violations,
                customer_turn=customer,
                empathy_first=choice.empathy_first,
                no_apology=choice.no_apology,
                scrape_wordings=self.scrape_wordings,
            )
            if verdict.ok and text.strip() not in options.blocked:
                yield replace(
                    base, text=text.strip(), fallback=False, final=True, latency_ms=timing, streaming_text=""
                )
                return
            reason = verdict.reason or "blocked by a trainer"
        yield replace(base, final=True, reason=reason, latency_ms=timing, streaming_text="")


def run_to_end(stream: Iterator[Suggestion]) -> Suggestion:
    """The final suggestion of a stream (offline use: CLI, evaluation)."""
    last: Suggestion | None = None
    for last in stream:  # noqa: B007 - we want the last item
        pass
    if last is None:
        raise RuntimeError("the suggestion stream yielded nothing")
    return last


SuggestFn = Callable[[Sequence[Segment]], Iterator[Suggestion]]


def suggestion_dict(suggestion: Suggestion) -> dict[str, object]:
    """The JSON shape of ``copilot suggest`` (and of stored suggestions)."""
    timing = suggestion.latency_ms
    return {
        "suggestion": suggestion.text if suggestion.move != "none" else "none",
        "text": suggestion.text,
        "script": suggestion.script,
        "move": suggestion.move,
        "situation": suggestion.situation,
        "situation_key": suggestion.situation_key,
        "special_situation_script": suggestion.special,
        "situation_confidence": suggestion.confidence,
        "customer_mood": suggestion.mood,
        "customer_upset": suggestion.upset,
        "empathy_first": suggestion.empathy_first,
        "passage_fits": "none" if suggestion.none_fits else "yes",
        "cites": [
            {"id": c.id, "source": c.source, "section": c.section, "quote": c.quote, "text": c.text}
            for c in suggestion.cites
        ],
        "fallback": suggestion.fallback,
        "reason": suggestion.reason,
        "latency_ms": {"script": timing.script, "first_token": timing.first_token, "done": timing.done},
        "script_id": suggestion.script_id,
    }
