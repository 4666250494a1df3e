"""Live calls in the app without a browser: replay threads, the slot limit, isolation, the microphone path."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from copilot.session.call import CallSession, SessionOptions
from copilot.transcription.audio import SAMPLE_RATE
from copilot.transcription.playback import EndOfAudio, TimedEvent
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Committed
from copilot.ui.app import PANEL_FIELDS, RESEND_BELOW_CHARS, LiveHandlers, shared_calls
from copilot.ui.live import CallInfo, LiveCall, LiveSlots, playbook_steps, to_mono_16k, transcript_events
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber, tone_track
from tests.ui_fakes import Engines, FailingGenerator, FakeServices, context

WAIT = 120.0  # s: generous bound for a replay thread on a loaded machine (not a timing assertion)


@pytest.fixture(scope="module")
def services() -> FakeServices:
    return Engines().services()


def texts(html: str) -> list[str]:
    return re.findall(r'<span class="cp-text">(.*?)</span>', html)


def live_call(services: FakeServices, slot: object = None) -> LiveCall:
    session = CallSession(services, SessionOptions())
    return LiveCall(session, CallInfo("test", playbook_steps(services.rules)), slot)  # type: ignore[arg-type]


def test_slots_refuse_beyond_the_limit_and_come_back_when_released() -> None:
    slots = LiveSlots(4)
    taken = [slots.acquire() for _ in range(4)]
    assert all(taken) and slots.in_use == 4
    assert slots.acquire() is None  # the fifth is refused, not queued
    taken[0].release()  # type: ignore[union-attr]
    taken[0].release()  # type: ignore[union-attr]  # twice is harmless
    assert slots.in_use == 3
    assert slots.acquire() is not None


def test_a_transcript_replayed_as_live_reaches_the_end_with_a_complete_checklist(
    services: FakeServices, shared_dir: Path
) -> None:
    path = shared_dir / "calls" / "good_call.json"
    transcript = read_transcript(path)
    call = live_call(services)
    call.start(lambda stop: transcript_events(transcript, None, stop))
    assert call.wait(WAIT)
    view = call.view()
    assert view.finished and view.checklist_complete
    assert texts(view.transcript) == [s.text for s in sorted(transcript.segments, key=lambda s: s.start)]
    assert "cites:" in view.suggestion


def test_two_calls_at_once_do_not_see_each_other(services: FakeServices, shared_dir: Path) -> None:
    good = read_transcript(shared_dir / "calls" / "good_call.json")
    bad = read_transcript(shared_dir / "calls" / "bad_call.json")
    a, b = live_call(services), live_call(services)
    a.start(lambda stop: transcript_events(good, None, stop))
    b.start(lambda stop: transcript_events(bad, None, stop))
    assert a.wait(WAIT) and b.wait(WAIT)
    va, vb = a.view(), b.view()
    assert set(texts(va.transcript)) == {s.text for s in good.segments}
    assert set(texts(vb.transcript)) == {s.text for s in bad.segments}
    assert "cp-empty" in va.flags and 'data-rule="forbidden"' in vb.flags


def test_a_failing_llm_never_stops_the_transcript(shared_dir: Path) -> None:
    services = Engines(generator=FailingGenerator()).services()
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    call = live_call(services)
    call.start(lambda stop: transcript_events(transcript, None, stop))
    assert call.wait(WAIT)
    view = call.view()
    assert len(texts(view.transcript)) == len(transcript.segments)
    assert "suggestion failed" in view.errors and "the model crashed" in view.errors
    assert view.finished


def test_a_broken_feed_reaches_the_panel_as_a_message_and_frees_its_place(services: FakeServices) -> None:
    slots = LiveSlots(1)
    call = live_call(services, slots.acquire())

    def broken(stop: threading.Event) -> Iterator[TimedEvent]:
        from copilot.errors import AudioError

        raise AudioError("call.wav: truncated header")
        yield  # pragma: no cover

    call.start(broken)
    assert call.wait(WAIT)
    view = call.view()
    assert "truncated header" in view.errors and view.finished
    assert slots.in_use == 0


def test_stopping_a_paced_replay_interrupts_its_wait(services: FakeServices, shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "good_call.json")
    slots = LiveSlots(1)
    call = live_call(services, slots.acquire())
    call.start(lambda stop: transcript_events(transcript, 1.0, stop))  # real time: ~90 s of call
    call.stop()
    assert call.wait(WAIT)
    assert slots.in_use == 0 and call.view().finished


def test_transcript_events_end_with_end_of_audio_in_time_order(shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    events = list(transcript_events(transcript, None, threading.Event()))
    assert isinstance(events[-1].event, EndOfAudio)
    commits = [e for e in events if isinstance(e.event, Committed)]
    assert len(commits) == len(transcript.segments)
    assert [e.audio_time for e in commits] == sorted(e.audio_time for e in commits)


# --- the handlers behind the Live view ----------------------------------------------------------------


def test_starting_a_new_call_resets_the_panel_and_closes_the_old_one(
    tmp_path: Path, services: FakeServices, shared_dir: Path
) -> None:
    ctx = context(tmp_path, services)
    handlers = LiveHandlers(ctx, shared_calls(shared_dir / "calls"))
    upload = str(shared_dir / "calls" / "good_call.json")
    first = handlers.start_replay(None, upload, "1x", False, None)[0]
    assert isinstance(first, LiveCall) and first.running
    out = handlers.start_replay(None, str(shared_dir / "calls" / "bad_call.json"), "max", False, first)
    second = out[0]
    assert second is not first and not first.running and first.view().finished
    assert second.wait(WAIT)
    view = second.view()
    assert "bad_call.json" in view.status and "喂，什么事？" in view.transcript
    assert "欢迎致电" not in view.transcript  # nothing of the first call is left on the panel
    assert ctx.slots.in_use == 0


def test_a_call_beyond_the_limit_is_refused_politely_and_the_others_go_on(
    tmp_path: Path, services: FakeServices, shared_dir: Path
) -> None:
    ctx = context(tmp_path, services, max_live_sessions=2)
    handlers = LiveHandlers(ctx, shared_calls(shared_dir / "calls"))
    good = str(shared_dir / "calls" / "good_call.json")
    running = [handlers.start_replay(None, good, "1x", False, None)[0] for _ in range(2)]
    refused = handlers.start_replay(None, good, "max", False, None)
    assert refused[0] is None  # no call for this browser session
    assert "in use" in refused[2] and "2" in refused[2]
    assert all(call.running for call in running)
    for call in running:
        handlers.stop(call)
    assert ctx.slots.in_use == 0
    accepted = handlers.start_replay(None, good, "max", False, None)[0]
    assert isinstance(accepted, LiveCall) and accepted.wait(WAIT)


def test_the_timer_stops_once_the_call_is_finished_and_skips_unchanged_parts(
    tmp_path: Path, services: FakeServices, shared_dir: Path
) -> None:
    ctx = context(tmp_path, services)
    handlers = LiveHandlers(ctx, {})
    call = handlers.start_replay(None, str(shared_dir / "calls" / "bad_call.json"), "max", False, None)[0]
    assert call.wait(WAIT)
    first = handlers.tick(call)
    assert isinstance(first[0], gr.Timer) and first[0].active is False
    assert isinstance(first[1], gr.Radio) and first[1].interactive  # the speed can be chosen again
    again = handlers.tick(call)
    skipped = [isinstance(part, type(gr.skip())) for part in again[2:]]
    view = call.view()
    long_fields = [len(getattr(view, f)) >= RESEND_BELOW_CHARS for f in PANEL_FIELDS]
    assert skipped == long_fields and any(long_fields)  # the finished call's transcript is long
    assert [p for p in again[2:] if not isinstance(p, type(gr.skip()))] == [
        getattr(view, f) for f, long in zip(PANEL_FIELDS, long_fields, strict=True) if not long
    ]


def test_only_unchanged_parts_at_least_the_resend_size_are_skipped() -> None:
    from copilot.ui.live import changed_parts
    from copilot.ui.panel import render_idle

    old = render_idle()
    new = dataclasses.replace(old, status="<b>new</b>", transcript="x" * 5000)
    fields = ("status", "transcript", "flags")
    assert changed_parts(new, None, fields, resend_below=10) == [new.status, new.transcript, new.flags]
    assert changed_parts(new, old, fields, resend_below=0) == [new.status, new.transcript, None]
    assert len(new.flags) < 1000  # the idle flags box is short: re-sent; the long transcript is skipped
    assert changed_parts(new, new, fields, resend_below=1000) == [new.status, None, new.flags]


def test_a_bad_file_is_a_readable_error_before_any_call_starts(
    tmp_path: Path, services: FakeServices
) -> None:
    ctx = context(tmp_path, services)
    handlers = LiveHandlers(ctx, {})
    fake = tmp_path / "call.wav"
    fake.write_text("not audio at all")
    with pytest.raises(Exception) as caught:
        handlers.start_replay(None, str(fake), "max", False, None)
    assert "call.wav" in str(caught.value)
    assert ctx.slots.in_use == 0


# --- the microphone path -------------------------------------------------------------------------------


def test_browser_chunks_become_mono_16k_float() -> None:
    rate = 48000
    stereo = (np.ones((rate, 2)) * 16384).astype(np.int16)  # 1 s at half scale
    audio = to_mono_16k(rate, stereo)
    assert audio.dtype == np.float32 and audio.shape == (SAMPLE_RATE,)
    assert np.allclose(audio[100:-100], 0.5, atol=0.01)


def test_microphone_audio_is_transcribed_as_the_chosen_speaker(services: FakeServices) -> None:
    line = Line(0.5, 2.0, "您好，我想问一下保修")
    transcriber = ScriptedTranscriber((line,))
    call = live_call(services)
    call.start_microphone("customer", transcriber, EnergyVad())
    audio = tone_track([(line.start, line.end)], 3.0, rate=48000)
    pcm = (audio * 32767).astype(np.int16)
    for i in range(0, len(pcm), 24000):  # the browser sends 0.5 s chunks
        call.push_audio(48000, pcm[i : i + 24000])
    call.end_audio()
    assert call.wait(WAIT)
    state = call.session.state()
    assert [(s.speaker, s.text) for s in state.segments] == [("customer", line.text)]
    assert state.finished and state.suggestion is not None  # a customer turn gets a suggestion


def test_until_the_models_are_loaded_the_idle_panel_shows_their_progress(
    tmp_path: Path, services: FakeServices
) -> None:
    ctx = context(tmp_path, services)
    handlers = LiveHandlers(ctx, {})
    assert ctx.readiness()[0] == 0
    loading = handlers.idle_view().status
    assert 'data-loading="true"' in loading and "正在加载模型" in loading
    timer, status = handlers.watch_loading(None)
    assert timer.active and status == loading  # the page keeps looking
    ctx.warm_up()
    done, total, _ = ctx.readiness()
    assert done == total
    timer, status = handlers.watch_loading(None)
    assert not timer.active and "data-loading" not in status and "没有通话" in status


def test_a_replay_that_falls_behind_its_speed_says_how_fast_it_really_runs(
    tmp_path: Path, services: FakeServices
) -> None:
    import time

    ctx = context(tmp_path, services)
    call = LiveCall(CallSession(services), CallInfo("x", (), speed=4.0))
    stop = threading.Event()

    def until_stopped(_stop: threading.Event) -> Iterator[TimedEvent]:
        stop.wait(10)
        yield from ()

    call.start(until_stopped)
    call._started = time.monotonic() - 20.0  # 20 s of wall time ...
    assert call.lagging_rate(44.0) == pytest.approx(2.2, rel=0.02)  # ... for 44 s of call: 2.2x, not 4x
    assert call.lagging_rate(79.0) is None  # on pace: nothing to say
    stop.set()
    call.wait(5)
    assert call.lagging_rate(44.0) is None  # finished: no rate
    assert ctx.slots.in_use == 0


def test_the_launch_warm_up_loads_the_recogniser_before_the_llm(
    tmp_path: Path, services: FakeServices
) -> None:
    """A call started at launch shows its lines while the LLM still loads: nothing touches the suggester
    before the recogniser, the text dictionaries and the database are ready."""
    loaded: list[str] = []

    class Recording(FakeServices):
        @property
        def live_transcriber(self) -> object:
            loaded.append("asr")
            return self.transcriber

        def __getattribute__(self, name: str) -> object:
            if name == "suggester":
                loaded.append("suggester")
            return super().__getattribute__(name)

    ctx = context(tmp_path, Recording(services.suggester, services.rules, services.transcriber))
    ctx.warm_up()
    assert loaded.index("asr") < loaded.index("suggester")
    assert loaded[: loaded.index("suggester")] == ["asr"]
    assert ctx.readiness()[0] == ctx.readiness()[1]
