"""The rules engine: real-time flags on each committed agent segment, the scorecard at the end of a
call, and the steps still missing while a call is running. Every finding carries its handbook clause."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from copilot.judgement.operators import (
    Gap,
    SemanticMatcher,
    TextEmbedder,
    chars_per_minute,
    find_cues,
    gaps,
    matches,
    merge_turns,
    overlaps,
    spoken_chars,
)
from copilot.judgement.playbook import (
    Check,
    CueSet,
    CutParams,
    HoldParams,
    OutcomeParams,
    OverlapParams,
    PhrasesParams,
    Playbook,
    SequenceParams,
    SilenceParams,
    SpeechRateParams,
    StageParams,
)
from copilot.judgement.tone import UPSET_MOODS, customer_moods
from copilot.types import CheckResult, Evidence, Flag, Segment, Transcript

EmotionReader = Callable[[str], str]  # customer text -> emotion label
SCORE_DECIMALS = 1
TIMED_KINDS = (HoldParams, SilenceParams, SpeechRateParams, OverlapParams)
NO_SPEECH = "通话中没有语音，无法评分"
MIN_REPLY_CHARS = 5  # an agent turn shorter than this is a backchannel, not a response to the customer
NO_TIMES = "转写没有时间信息，无法判断"


def evidence_of(segment: Segment) -> Evidence:
    return Evidence(start=segment.start, end=segment.end, speaker=segment.speaker, text=segment.text)


def _gap_evidence(gap: Gap) -> Evidence:
    return Evidence(start=gap.start, end=gap.end, speaker="unknown", text=f"（静音 {gap.seconds:.1f} 秒）")


def has_speech(segments: Sequence[Segment]) -> bool:
    """Whether anybody (agent or customer) said anything: a call without speech is not scored."""
    return any(s.speaker in ("agent", "customer") and s.text.strip() for s in segments)


@dataclass(frozen=True)
class _Trigger:
    """A customer turn that calls for an apology, and the agent turns that followed it."""

    segment: Segment
    replies: tuple[Segment, ...]  # at most within_agent_turns agent turns after it
    answered: bool


def _next_agent(segments: Sequence[Segment], index: int) -> Segment | None:
    """The agent's next segment after ``segments[index]``, if the call has one."""
    return next((s for s in segments[index + 1 :] if s.speaker == "agent"), None)


SENTENCE_ENDS = "。！？!?；;"


def _earlier_sentences(text: str, at: int) -> str:
    """The whole sentences of ``text`` before position ``at`` (a merged turn holds several lines)."""
    end = max(text.rfind(mark, 0, at) for mark in SENTENCE_ENDS)
    return text[: end + 1] if end >= 0 else ""


def _unknown(check: Check, reason: str) -> CheckResult:
    return CheckResult(check.id, False, (), check.clause, reason, unknown_reason=reason)


RECORDING_START_S = 10.0  # speech this early in a timed call means the transcript starts with the call


class RuleEngine:
    """Applies a :class:`Playbook`. Holds only read-only state, so one engine serves many calls."""

    def __init__(
        self,
        playbook: Playbook,
        *,
        embedder: TextEmbedder | None = None,
        emotion: EmotionReader | None = None,
    ) -> None:
        self.playbook = playbook
        self._emotion = emotion  # None: customer_moods, each line read with the customer's earlier lines
        self._semantic: dict[str, SemanticMatcher] = {}
        if embedder is not None:
            for check in playbook.checks:
                if isinstance(check.params, PhrasesParams) and check.params.semantic is not None:
                    self._semantic[check.id] = SemanticMatcher(check.params.semantic, embedder)

    # --- real time ------------------------------------------------------------------------------

    def check_utterance(
        self, segment: Segment, history: Sequence[Segment] = (), *, next_turn: Segment | None = None
    ) -> list[Flag]:
        """Flags for one committed agent segment, given the segments committed before it (and, in a
        finished call, the agent's next turn, which can resolve a bare refusal)."""
        if segment.speaker != "agent":
            return []
        flags: list[Flag] = []
        previous = next((s for s in reversed(history) if s.speaker == "agent"), None)
        for check in self.playbook.checks:
            params = check.params
            if isinstance(params, PhrasesParams):
                flags.extend(
                    self._phrase_flags(
                        check,
                        params,
                        segment,
                        first_turn=previous is None,
                        next_turn=next_turn,
                        previous_turn=previous,
                    )
                )
            elif isinstance(params, SpeechRateParams) and check.realtime:
                flags.extend(self._rate_flags(check, params, segment))
            elif isinstance(params, OverlapParams) and check.realtime:
                flags.extend(self._overlap_flags(check, params, segment, history))
            elif isinstance(params, SequenceParams):
                flags.extend(self._sequence_flags(check, params, segment, history))
        return flags

    def _phrase_flags(
        self,
        check: Check,
        params: PhrasesParams,
        segment: Segment,
        *,
        first_turn: bool = True,
        next_turn: Segment | None = None,
        previous_turn: Segment | None = None,
    ) -> list[Flag]:
        flags = []
        for item in params.items:
            if item.first_turn_only and not first_turn:
                continue
            resolver = item.resolved_by_next_turn
            if resolver is not None and next_turn is not None and matches(resolver, next_turn.text):
                continue
            reason = item.explained_before
            if reason is not None and previous_turn is not None and matches(reason, previous_turn.text):
                continue
            hits = find_cues(item.cues, segment.text)
            if reason is not None:
                hits = [h for h in hits if not matches(reason, _earlier_sentences(segment.text, h.start))]
            if hits:
                kept = [h for i, h in enumerate(hits) if all(h.start >= k.end for k in hits[:i])]
                words = "、".join(dict.fromkeys(h.text for h in kept))
                flags.append(
                    Flag(
                        rule=check.id,
                        kind=item.kind,
                        severity=item.severity,
                        message=f"「{words}」：{item.message}",
                        evidence=(evidence_of(segment),),
                        clause=item.clause,
                    )
                )
        matcher = self._semantic.get(check.id)
        if matcher is not None and not flags:
            found = matcher.match(segment.text)
            if found is not None:
                score, example = found
                flags.append(
                    Flag(
                        rule=check.id,
                        kind=matcher.spec.kind,
                        severity=check.severity,
                        message=f"与忌语示例「{example}」意思相近（相似度 {score:.2f}）：{check.message}",
                        evidence=(evidence_of(segment),),
                        clause=check.clause,
                    )
                )
        return flags

    def _rate_flags(self, check: Check, params: SpeechRateParams, segment: Segment) -> list[Flag]:
        if segment.duration < params.live_min_duration_s:
            return []
        rate = chars_per_minute([segment])
        low, high = params.min_cpm - params.live_tolerance_cpm, params.max_cpm + params.live_tolerance_cpm
        if rate is None or low <= rate <= high:
            return []
        pace = "太快" if rate > high else "太慢"
        return [
            Flag(
                rule=check.id,
                kind="pace",
                severity=check.severity,
                message=f"语速{pace}：每分钟 {rate:.0f} 字（{check.message}）",
                evidence=(evidence_of(segment),),
                clause=check.clause,
            )
        ]

    def _overlap_flags(
        self, check: Check, params: OverlapParams, segment: Segment, history: Sequence[Segment]
    ) -> list[Flag]:
        found = [o for o in overlaps(segment, history, "customer") if o.seconds >= params.min_overlap_s]
        return [
            Flag(
                rule=check.id,
                kind="overlap",
                severity=check.severity,
                message=f"客户还在说话时插话 {o.seconds:.1f} 秒：{check.message}",
                evidence=(evidence_of(o.other), evidence_of(segment)),
                clause=check.clause,
            )
            for o in found
        ]

    def _sequence_flags(
        self, check: Check, params: SequenceParams, segment: Segment, history: Sequence[Segment]
    ) -> list[Flag]:
        """Raised on the agent turn that used up the allowance without the required response."""
        flags = []
        for trigger in self._triggers(params, [*history, segment]):
            due = bool(trigger.replies) and trigger.replies[-1] is segment
            if not trigger.answered and due and len(trigger.replies) == params.within_agent_turns:
                flags.append(
                    Flag(
                        rule=check.id,
                        kind="missing_response",
                        severity=check.severity,
                        message=check.message,
                        evidence=(evidence_of(trigger.segment), *map(evidence_of, trigger.replies)),
                        clause=check.clause,
                    )
                )
        return flags

    # --- whole call -----------------------------------------------------------------------------

    def call_flags(self, transcript: Transcript) -> list[Flag]:
        """The real-time flags replayed over a finished call, in order."""
        flags: list[Flag] = []
        segments = transcript.segments
        for i, segment in enumerate(segments):
            flags.extend(self.check_utterance(segment, segments[:i], next_turn=_next_agent(segments, i)))
        return flags

    def check_call(self, transcript: Transcript) -> list[CheckResult]:
        """One result per playbook check, in playbook order (over turns, not recogniser segments)."""
        if not has_speech(transcript.segments):
            return [_unknown(check, NO_SPEECH) for check in self.playbook.checks]
        segments = merge_turns(transcript.segments)
        agent = [s for s in segments if s.speaker == "agent"]
        results = []
        for check in self.playbook.checks:
            params = check.params
            if not transcript.timed and isinstance(params, TIMED_KINDS):
                results.append(_unknown(check, NO_TIMES))
            elif isinstance(params, StageParams):
                results.append(self._stage(check, params, agent, segments, timed=transcript.timed))
            elif isinstance(params, PhrasesParams):
                flags = [
                    f
                    for i, s in enumerate(agent)
                    for f in self._phrase_flags(
                        check,
                        params,
                        s,
                        first_turn=i == 0,
                        next_turn=_next_agent(agent, i),
                        previous_turn=agent[i - 1] if i else None,
                    )
                ]
                results.append(self._result_from_flags(check, flags))
            elif isinstance(params, SequenceParams):
                results.append(self._sequence(check, params, segments, timed=transcript.timed))
            elif isinstance(params, HoldParams):
                results.append(self._hold(check, params, segments))
            elif isinstance(params, OutcomeParams):
                results.append(self._outcome(check, params, segments))
            elif isinstance(params, SilenceParams):
                results.append(self._silence(check, params, segments))
            elif isinstance(params, SpeechRateParams):
                results.append(self._speech_rate(check, params, agent))
            elif isinstance(params, OverlapParams):
                flags = [
                    f
                    for i, s in enumerate(segments)
                    if s.speaker == "agent"
                    for f in self._overlap_flags(check, params, s, segments[:i])
                ]
                results.append(self._result_from_flags(check, flags))
        return results

    @staticmethod
    def _result_from_flags(check: Check, flags: Sequence[Flag]) -> CheckResult:
        evidence = tuple(dict.fromkeys(e for f in flags for e in f.evidence))
        message = "；".join(f.message for f in flags) if flags else ""
        return CheckResult(
            id=check.id, passed=not flags, evidence=evidence, clause=check.clause, message=message
        )

    def _stage(
        self,
        check: Check,
        params: StageParams,
        agent: Sequence[Segment],
        segments: Sequence[Segment] = (),
        *,
        timed: bool = True,
    ) -> CheckResult:
        if params.where == "first_agent_turn":
            window = list(agent[:1])
        elif params.where == "last_agent_turns":
            window = list(agent[-params.last_n :])
        else:
            window = list(agent)

        def done(s: Segment) -> bool:
            found = [matches(c, s.text) for c in params.require]
            return any(found) if params.match == "any" else all(found)

        if params.where == "any_agent_turn" or params.match == "any":
            hits = [s for s in window if done(s)]
            passed = bool(hits)
            shown = hits[:1] if params.where == "any_agent_turn" else hits[-1:]
            evidence: tuple[Evidence, ...] = tuple(map(evidence_of, shown))
        else:
            missing = [c.name for c in params.require if not any(matches(c, s.text) for s in window)]
            passed = bool(window) and not missing
            evidence = tuple(
                evidence_of(s) for s in window if any(matches(c, s.text) for c in params.require)
            )
        if passed:
            return CheckResult(check.id, True, evidence, check.clause)
        evidence = tuple(evidence_of(s) for s in window)
        if params.cut is not None and segments:
            reason = self._cut_reason(params, params.cut, segments, timed=timed)
            if reason:
                return CheckResult(check.id, False, evidence, check.clause, reason, unknown_reason=reason)
        return CheckResult(check.id, False, evidence, check.clause, check.message)

    @staticmethod
    def _cut_reason(
        params: StageParams, cut: CutParams, segments: Sequence[Segment], *, timed: bool = True
    ) -> str:
        """Why the transcript cannot show this step (it starts or ends mid-call), or ""."""
        spoken = [s for s in segments if s.speaker in ("agent", "customer") and s.text.strip()]
        if not spoken:
            return NO_SPEECH
        if params.where == "first_agent_turn":
            if cut.continuation is not None and matches(cut.continuation, spoken[0].text):
                return "转写从通话中途开始（转接或同事交接），看不到开场白"
            before = 0
            for s in spoken:
                if s.speaker == "agent":
                    break
                before += spoken_chars(s.text)
            # A recording or live call that has speech within its first seconds holds the call from its
            # start: when the customer talks first there, the agent's opening was missed or never said
            # (live greedy decoding can miss a 0.7-s 喂), not cut off by the transcript.
            from_start = timed and spoken[0].start <= RECORDING_START_S
            if not from_start and (before >= cut.customer_chars or all(s.speaker != "agent" for s in spoken)):
                return "转写从通话中途开始（客服第一句之前客户已在说事），看不到开场白"
            return ""
        if params.where == "last_agent_turns":
            last_agent = next((s for s in reversed(spoken) if s.speaker == "agent"), None)
            if last_agent is not None and cut.open is not None and matches(cut.open, last_agent.text):
                return "转写在通话结束前截断（最后仍在等待或办理中），看不到结束语"
            tail = spoken[-cut.last_turns :]
            # A recording (timed) holds the call to its end; a text excerpt may stop anywhere, so there the
            # end must show (thanks, goodbye, "please hang up") for a missing farewell to count.
            if timed:
                return ""
            if cut.ended is not None and not any(matches(cut.ended, s.text) for s in tail):
                return "转写在通话结束前截断（对话没有收尾），看不到结束语"
        return ""

    def _moods(self, segments: Sequence[Segment]) -> dict[int, str]:
        if self._emotion is not None:
            reader = self._emotion
            return {i: reader(s.text) for i, s in enumerate(segments) if s.speaker == "customer"}
        return {i: label.label for i, label in customer_moods(segments).items()}

    def _triggers(self, params: SequenceParams, segments: Sequence[Segment]) -> list[_Trigger]:
        triggers = []
        moods = self._moods(segments)
        for i, segment in enumerate(segments):
            if segment.speaker != "customer":
                continue
            cue = params.trigger_cues is not None and matches(params.trigger_cues, segment.text)
            if not cue and moods.get(i) not in params.trigger_emotions:
                continue
            # in spoken order (an untimed transcript has every start at 0)
            # backchannels (嗯, 好的, 对对) are not the agent's response: they do not use up the allowance
            replies = tuple(
                s
                for s in segments[i + 1 :]
                if s.speaker == "agent" and spoken_chars(s.text) >= MIN_REPLY_CHARS
            )[: params.within_agent_turns]
            answered = any(matches(params.response, s.text) for s in replies)
            triggers.append(_Trigger(segment, replies, answered))
        return triggers

    def _sequence(
        self, check: Check, params: SequenceParams, segments: Sequence[Segment], *, timed: bool = True
    ) -> CheckResult:
        triggers = self._triggers(params, segments)
        if not triggers:
            reason = "客户没有表现出不满或受到影响，不需要道歉"
            return CheckResult(check.id, False, (), check.clause, reason, unknown_reason=reason)
        if not timed and params.untimed == "anywhere":
            # Without times the turns are a text's or a recogniser's pieces (backchannels, lines out of
            # order), so "within N turns" cannot be judged: the response anywhere in the call answers it.
            given = [s for s in segments if s.speaker == "agent" and matches(params.response, s.text)]
            if given:
                return CheckResult(check.id, True, (evidence_of(given[0]),), check.clause)
        failed = [t for t in triggers if not t.answered]
        if params.answer == "any" and len(failed) < len(triggers):
            failed = []
        if failed:
            evidence = tuple(
                dict.fromkeys(
                    e for t in failed for e in (evidence_of(t.segment), *map(evidence_of, t.replies))
                )
            )
            return CheckResult(check.id, False, evidence, check.clause, check.message)
        evidence = tuple(
            evidence_of(s) for t in triggers for s in t.replies if matches(params.response, s.text)
        )
        return CheckResult(check.id, True, evidence, check.clause)

    def _outcome(self, check: Check, params: OutcomeParams, segments: Sequence[Segment]) -> CheckResult:
        moods = self._moods(segments)
        said = [
            i
            for i, s in enumerate(segments)
            if s.speaker == "customer" and len(s.text.strip()) >= params.min_chars
        ]
        if not said:
            reason = "客户没有说话，看不出结果"
            return CheckResult(check.id, False, (), check.clause, reason, unknown_reason=reason)
        last = said[-params.last_customer_turns :]
        if any(moods.get(i) == "thankful" for i in last):  # thanks at the end: the matter was settled
            return CheckResult(check.id, True, tuple(evidence_of(segments[i]) for i in last), check.clause)
        upset = [i for i in last if moods.get(i) in UPSET_MOODS]
        earlier = [i for i in said if moods.get(i) in UPSET_MOODS]
        if upset or earlier:
            # upset at the end, or upset before and not reconciled (no thanks at the end)
            shown = tuple(evidence_of(segments[i]) for i in (upset or [earlier[-1], *last]))
            return CheckResult(check.id, False, shown, check.clause, check.message)
        reason = "客户始终平静，看不出是否满意"
        shown = tuple(evidence_of(segments[i]) for i in last)
        return CheckResult(check.id, False, shown, check.clause, reason, unknown_reason=reason)

    @staticmethod
    def _announcement(gap: Gap, segments: Sequence[Segment], announce_cues: CueSet) -> Segment | None:
        """The agent turn right before ``gap`` if it announced a hold."""
        before = [s for s in segments if s.speaker == "agent" and s.end <= gap.start + 1e-6]
        if before and matches(announce_cues, before[-1].text):
            return before[-1]
        return None

    def _hold(self, check: Check, params: HoldParams, segments: Sequence[Segment]) -> CheckResult:
        problems: list[str] = []
        evidence: list[Evidence] = []
        for gap in gaps(segments, min(params.min_hold_s, params.dead_air_s)):
            announced = self._announcement(gap, segments, params.announce)
            if announced is None:
                if gap.seconds > params.dead_air_s:
                    problems.append(f"未告知的等待 {gap.seconds:.1f} 秒")
                    evidence.append(_gap_evidence(gap))
                continue
            if gap.seconds < params.min_hold_s:
                continue
            back = next((s for s in segments if s.speaker == "agent" and s.start >= gap.end - 1e-6), None)
            evidence.extend([evidence_of(announced), _gap_evidence(gap)])
            if back is not None:
                evidence.append(evidence_of(back))
            if back is None or not matches(params.thanks, back.text):
                problems.append(f"等待 {gap.seconds:.1f} 秒后没有感谢客户的耐心等候")
            if gap.seconds > params.long_hold_s and not matches(params.no_hangup, announced.text):
                problems.append(f"长时间等待（{gap.seconds:.0f} 秒）前没有提醒客户不要挂线")
        passed = not problems
        message = "；".join(problems) + f"（{check.message}）" if problems else ""
        return CheckResult(check.id, passed, tuple(dict.fromkeys(evidence)), check.clause, message)

    def _silence(self, check: Check, params: SilenceParams, segments: Sequence[Segment]) -> CheckResult:
        dead = [
            g
            for g in gaps(segments, params.max_gap_s)
            if self._announcement(g, segments, params.announce) is None
        ]
        message = "；".join(f"冷场 {g.seconds:.1f} 秒" for g in dead)
        return CheckResult(
            check.id,
            not dead,
            tuple(map(_gap_evidence, dead)),
            check.clause,
            message and f"{message}：{check.message}",
        )

    def _speech_rate(self, check: Check, params: SpeechRateParams, agent: Sequence[Segment]) -> CheckResult:
        rate = chars_per_minute(agent)
        if rate is None:
            return CheckResult(check.id, True, (), check.clause, "没有可计算语速的坐席语音")
        low, high = params.min_cpm - params.call_tolerance_cpm, params.max_cpm + params.call_tolerance_cpm
        passed = low <= rate <= high
        outliers = [f.evidence[0] for s in agent for f in self._rate_flags(check, params, s)]
        message = f"坐席平均语速每分钟 {rate:.0f} 字" + ("" if passed else f"：{check.message}")
        return CheckResult(check.id, passed, tuple(outliers), check.clause, message)

    # --- during the call ------------------------------------------------------------------------

    def missing_steps(self, segments: Sequence[Segment]) -> list[str]:
        """Ids of required steps not (yet) done in the segments so far: greeting, recap, closing,
        and an apology still owed to an upset customer."""
        segments = merge_turns(segments)
        agent = [s for s in segments if s.speaker == "agent"]
        missing = []
        for check in self.playbook.checks:
            params = check.params
            if isinstance(params, StageParams):
                if not self._stage(check, params, agent).passed:  # live: the end is still to come
                    missing.append(check.id)
            elif isinstance(params, SequenceParams) and any(
                not t.answered for t in self._triggers(params, segments)
            ):
                missing.append(check.id)
        return missing

    def score(self, results: Sequence[CheckResult], flags: Sequence[Flag] = ()) -> float:
        """0-100 as a QA scorecard with "not applicable" items: the share of the decided checks' weight
        that passed (weights from the playbook), less the severity penalty of each agent-line violation flag.
        A check the transcript cannot decide is left out of both sides: it neither passes nor fails the call,
        so a call judged on few checks is not pulled to the top by the ones nobody could judge."""
        weights = {c.id: c.weight for c in self.playbook.checks}
        decided = [r for r in results if r.status != "unknown"]
        applicable = sum(weights.get(r.id, 0.0) for r in decided)
        earned = sum(weights.get(r.id, 0.0) for r in decided if r.passed)
        share = 100.0 * earned / applicable if applicable else 100.0
        penalty = sum(self.playbook.flag_penalties.get(f.severity, 0.0) for f in flags)
        return round(max(0.0, share - penalty), SCORE_DECIMALS)
