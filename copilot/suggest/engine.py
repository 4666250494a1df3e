"""Suggest the agent's next reply at the end of a customer's turn.

1. At once: the handbook script that best fits the moment, with the customer's name and product filled in.
2. Then: the local LLM rewrites it for this call, streamed piece by piece.
3. Always guarded: every streamed prefix and the final text pass the agent's own rules; a rewrite that breaks
   a rule, invents a promise or strays from the cited passages is replaced by the script, with the reason.
Every suggestion cites the passages it rests on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from copilot.judgement import tone
from copilot.judgement.engine import RuleEngine
from copilot.judgement.tone import customer_emotion
from copilot.knowledge.embedding import Embedder
from copilot.knowledge.query import build_query, turns
from copilot.knowledge.retrieval import Retriever
from copilot.suggest.gate import GenerationGate
from copilot.suggest.guard import check_rewrite, unsupported_promises
from copilot.suggest.llm import Generator
from copilot.suggest.prompt import suggestion_messages
from copilot.suggest.slots import extract_slots, fill_script
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


@dataclass(frozen=True)
class Cite:
    id: str
    text: str
    source: str
    section: str


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
    ) -> None:
        self.retriever = retriever
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
        query = build_query(segments)
        hits = tuple(self.retriever.search(query, k=SEARCH_DEPTH)) if query else ()
        rank_of = {hit.passage.id: rank for rank, hit in enumerate(hits)}
        similarity = np.zeros(len(self.scripts), dtype=np.float32)
        if self._script_vectors is not None and self.embedder is not None and query:
            similarity = self._script_vectors @ self.embedder.embed([query], kind="query")[0]
        slots = extract_slots(segments)
        # The handbooks' first rule for an upset caller is to apologise and empathise, whatever the topic.
        latest = next((s.text for s in reversed(segments) if s.speaker != "agent"), "")
        upset = customer_emotion(latest).label == "angry" if latest else False
        best: ScriptChoice | None = None
        for index, script in enumerate(self.scripts):
            text = fill_script(script.text, slots)
            if text in blocked or script.text in blocked:
                continue
            link = rank_of.get(script.passage_id)
            score = float(similarity[index]) + (PASSAGE_LINK_WEIGHT / (1 + link) if link is not None else 0.0)
            if upset and script.situation_key in UPSET_SITUATIONS:
                score += MOOD_WEIGHT
            if best is None or score > best.score:
                best = ScriptChoice(script, text, hits, score)
        if best is None:  # every script blocked: the neutral one still cites the passages
            best = ScriptChoice(GENERIC_SCRIPT, GENERIC_SCRIPT.text, hits, 0.0)
        return best

    def warm(self) -> None:
        """Pay the first suggestion's one-off costs now (jieba, query embedding, the LLM's system-prefix
        KV cache), so the first customer turn of a call is as fast as the rest."""
        context = (Segment("customer", 0.0, 0.0, "你好，我的洗衣机坏了"),)
        # Past the gate: a call starting while the app warms up must not wait behind this one token.
        for _ in self.suggest(context, options=SuggestOptions(max_new_tokens=1), gated=False):
            pass
        tone.warm()  # an upset caller's first turn would otherwise load snownlp

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
        cites = tuple(
            Cite(h.passage.id, h.passage.text, h.passage.source, h.passage.section)
            for h in choice.hits[: options.k]
        )
        # The script's own passage is cited first when retrieval did not bring it in the top k.
        if choice.script.passage_id and choice.script.passage_id not in {c.id for c in cites}:
            linked = [h for h in choice.hits if h.passage.id == choice.script.passage_id]
            if linked:
                p = linked[0].passage
                cites = (Cite(p.id, p.text, p.source, p.section), *cites[: options.k - 1])
        latency = Latency(script=ms())
        base = Suggestion(
            script=choice.text,
            text=choice.text,
            cites=cites,
            fallback=True,
            reason="",
            latency_ms=latency,
            script_id=choice.script.id,
            situation=choice.script.situation,
            final=False,
        )
        if not options.use_llm or self.generator is None:
            yield replace(base, final=True, reason="LLM disabled")
            return
        yield base

        history = turns(segments)
        customer = next((t.text for t in reversed(history) if t.speaker != "agent"), "")
        messages = suggestion_messages(
            customer, choice.text, [c.text for c in cites], extract_slots(segments).address
        )
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
        "script": suggestion.script,
        "text": suggestion.text,
        "cites": [
            {"id": c.id, "text": c.text, "source": c.source, "section": c.section} for c in suggestion.cites
        ],
        "fallback": suggestion.fallback,
        "reason": suggestion.reason,
        "latency_ms": {"script": timing.script, "first_token": timing.first_token, "done": timing.done},
        "script_id": suggestion.script_id,
        "situation": suggestion.situation,
    }
