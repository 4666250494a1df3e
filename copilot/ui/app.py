"""Assemble the Gradio Blocks app from its three views and launch it.

Thin over the library: the engines are loaded once per process (one :class:`~copilot.session.engines.Services`
shared read-only through :class:`~copilot.ui.context.AppContext`); every call's state lives in a
``gr.State`` of its browser session; what the live panel shows comes from the pure
:func:`copilot.ui.panel.render_panel`. Errors reach the user as ``gr.Error`` messages, never tracebacks.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from copilot.config import Config, shared_dir
from copilot.errors import CopilotError
from copilot.qa.report.html import esc, mmss
from copilot.qa.review import TRANSCRIPT_SUFFIXES
from copilot.qa.store import Store
from copilot.session.call import CallSession, SessionOptions
from copilot.session.engines import Services
from copilot.transcription.audio import probe
from copilot.transcription.playback import ReplayOptions, replay
from copilot.transcription.streaming import SileroVad
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Role
from copilot.ui import phone
from copilot.ui import review as rv
from copilot.ui import train as tr
from copilot.ui.access import (
    HostAllowList,
    Login,
    View,
    allowed_hosts,
    parse_users,
    remove_uploads,
    views_for,
)
from copilot.ui.context import AppContext
from copilot.ui.live import (
    SPEEDS,
    CallInfo,
    LiveCall,
    busy_message,
    changed_parts,
    source_label,
    transcript_events,
)
from copilot.ui.panel import IDLE_STATUS, PanelView, render_idle, render_loading

log = logging.getLogger(__name__)

TITLE = "售后通话助手 · Mandarin service-call copilot"
GIL_SWITCH_SECONDS = 0.001  # Python's default is 0.005
TICK_SECONDS = 0.3  # s between panel refreshes while a call runs
MAX_SPEED = (
    1000.0  # "max" for recordings: as fast as the decoder goes (tentative decodes skipped when behind)
)
ANALYTICS_EVENTS = 500  # Gradio's per-event timing records kept (and events between their summaries)
RESEND_BELOW_CHARS = 2048  # unchanged panel parts shorter than this are re-sent, not skipped (cheaper)
LOADING_SECONDS = 1.0  # s between looks at the models' loading progress (only until they are loaded)
# One click copies the suggestion (clipboard API; on a page without it, a selection and execCommand).
COPY_JS = """() => {
  const el = document.querySelector('#live-suggestion .cp-say-text');
  const text = el ? el.innerText : '';
  const button = document.querySelector('#live-copy');
  if (!text) return [];
  const done = () => { if (button) { button.dataset.copied = text; } };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, done);
  } else {
    const range = document.createRange(); range.selectNodeContents(el);
    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
    document.execCommand('copy'); sel.removeAllRanges(); done();
  }
  return [];
}"""
# The transcript box follows its newest line: scrolled to the bottom whenever its content changes (the box
# is replaced on each refresh, so this runs once per page and watches the whole Live view).
STICK_TO_NEWEST_JS = """() => {
  const stick = () => document.querySelectorAll('#live-transcript .cp-transcript').forEach((box) => {
    box.scrollTop = box.scrollHeight;
  });
  new MutationObserver(stick).observe(document.body, {subtree: true, childList: true});
}"""
# On the Live column, not <body>: Gradio scopes the app's CSS under its container, so a body class never matched.
DETAILS_JS = (
    "(on) => { document.querySelectorAll('.cp-live').forEach((el) => el.classList.toggle('cp-show-details', on));"
    " return []; }"
)
MIC_STREAM_EVERY = 0.5  # s of microphone audio per chunk sent by the browser
MIC_TIME_LIMIT = 4 * 3600  # s: the longest microphone call
DEFAULT_CALLS_DIR = shared_dir() / "calls"
CALL_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".json")
PANEL_FIELDS = (
    "status",
    "transcript",
    "guideline",
    "suggestion",
    "flags",
    "mood",
    "pace",
    "checklist",
    "errors",
)

CSS = """
.cp-live{max-width:none}
.cp-controls{position:sticky;top:0;z-index:20;background:var(--background-fill-primary);padding:4px 0;
  border-bottom:1px solid var(--border-color-primary)}
.cp-buttons{gap:4px!important}
.cp-toggles{gap:4px}
.cp-seg{padding:3px 6px;margin:2px 0;border-radius:4px;line-height:1.45}
.cp-agent{background:#eef4ff;border-left:3px solid #3b6fd8;margin-right:14%}
.cp-customer{background:#fff4e5;border-left:3px solid #e08a00;margin-left:14%}
.cp-unknown{background:#f3f3f3;border-left:3px solid #999}
.cp-tentative{color:#8a8a8a;font-style:italic;background:#fafafa}
.cp-time{color:#777;font-size:.8em}.cp-meta{color:#666;font-size:.85em}
.cp-transcript{height:min(42vh,460px);overflow-y:auto;
  border:1px solid var(--border-color-primary);border-radius:6px;padding:4px}
@media (min-width:1000px){.cp-transcript{height:calc(100vh - 250px);min-height:360px}}
#live-message:not(:has(.cp-message)),#live-errors:not(:has(.cp-errors)){display:none!important}
.cp-title h3{margin:0}
.cp-controls .wrap{gap:4px!important}
#live-speed label{padding:2px 8px!important}
.cp-copy{max-width:160px;align-self:flex-end}
.cp-empty{color:#888}
.cp-tag{display:inline-block;background:#555;color:#fff;border-radius:3px;padding:0 5px;margin-right:6px;font-size:.78em}
.cp-suggestion{border:2px solid #3b6fd8;border-radius:8px;padding:8px 10px;background:#f7faff}
.cp-suggestion.cp-empty{border:1px dashed #bbb;background:none}
.cp-suggestion[data-state=streaming]{border-color:#7a9be0}
.cp-say{font-size:1.35em;font-weight:600;line-height:1.5;margin:4px 0;color:#111}
.cp-kind{display:block;font-size:.62em;color:#3b6fd8;font-weight:600;letter-spacing:.05em}
.cp-reason{color:#555;font-size:.92em}
.cp-script{color:#222;margin:4px 0}.cp-streaming{color:#1b5e20;margin:4px 0}
.cp-cursor{animation:cpblink 1s step-start infinite}
@keyframes cpblink{50%{opacity:0}}
.cp-chip{display:inline-block;border-radius:12px;padding:1px 9px;margin:2px 4px 2px 0;font-size:.9em;background:#eee}
.cp-situation{background:#e8eefc;color:#28448f}
.cp-flags{line-height:1.9}
.cp-flag.cp-chip{background:#fdecea;color:#8c1d18;border:1px solid #f0aaa5}
.cp-flag.cp-sev-minor,.cp-flag.cp-sev-info{background:#fff8e1;color:#6d4500;border-color:#edd188}
.cp-flag.cp-old{opacity:.5}
.cp-flag.cp-fresh{font-weight:600}
.cp-badge{font-size:.8em;opacity:.85}
.cp-details{display:none;color:#666;font-size:.82em}
.cp-live.cp-show-details .cp-details{display:block}
.cp-guideline{font-size:.9em;color:#333}.cp-guideline .cp-where{font-weight:600}
.cp-quote{color:#444}
.cp-clause{font-size:.85em;color:#555}
.cp-compact{gap:6px}
.cp-mood-angry b,.cp-mood-distressed b{color:#b3261e}.cp-mood-anxious b{color:#a15c00}
.cp-mood-satisfied b,.cp-mood-thankful b{color:#176f2c}
.cp-gauge{position:relative;height:8px;background:#eee;border-radius:4px;margin-top:3px}
.cp-band{position:absolute;top:0;height:8px;background:#a5d6a7;border-radius:4px}
.cp-marker{position:absolute;top:-3px;width:4px;height:14px;background:#222;border-radius:2px}
.cp-pace-fast b,.cp-pace-slow b{color:#a15c00}
.cp-checklist ul{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px}
.cp-step{border-radius:12px;padding:1px 9px;font-size:.9em;background:#f1f1f1}
.cp-done,.cp-ok{color:#176f2c;background:#e8f5e9}.cp-missing{color:#b3261e;background:#fdecea}
.cp-step.cp-unknown{color:#555;background:#f1f1f1;border:1px dashed #aaa}
.cp-checklist .cp-head{font-size:.9em}
.cp-checklist[data-complete=true] .cp-head{color:#176f2c;font-weight:600}
.cp-errors{color:#b3261e}.cp-message{color:#b3261e;font-weight:600}
.cp-status{font-size:.95em}
.cp-progress{height:6px;background:#eee;border-radius:3px;margin-top:4px;max-width:360px}
.cp-progress div{height:6px;background:#3b6fd8;border-radius:3px}
.cp-scorecard table,.cp-review-transcript table{border-collapse:collapse;width:100%}
.cp-scorecard td,.cp-scorecard th,.cp-review-transcript td,.cp-review-transcript th{border:1px solid #ddd;padding:3px 5px;vertical-align:top}
.cp-fail td:nth-child(2){color:#b3261e;font-weight:600}.cp-pass td:nth-child(2){color:#176f2c}
.cp-unknown td:nth-child(2){color:#666}
.cp-score{background:#333;color:#fff;border-radius:4px;padding:0 6px}
"""

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn library errors into readable ``gr.Error`` messages, and anything else into one line too."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except CopilotError as e:
            raise gr.Error(str(e), print_exception=False) from e
        except Exception as e:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(f"{fn.__name__} failed: {type(e).__name__}: {e}", print_exception=False) from e

    return wrapper  # type: ignore[return-value]


def shared_calls(folder: Path | None) -> dict[str, str]:
    """The example calls beside the repository (``../shared/calls``): label -> path."""
    if folder is None or not folder.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in CALL_SUFFIXES or not path.is_file():
            continue
        if path.suffix.lower() == ".json":
            kind = "transcript"
        else:
            try:
                kind = "stereo recording" if probe(path).channels == 2 else "mono recording"
            except CopilotError:
                continue
        found[f"{path.name} ({kind})"] = str(path)
    return found


def _call_picker(
    calls: dict[str, str], prefix: str, *, default: str, example_label: str, upload_label: str
) -> tuple[gr.Dropdown, gr.File]:
    """An example call (from ``../shared/calls``) or an uploaded one: the upload wins when given."""
    choices = list(calls)
    value = next((c for c in choices if c.startswith(default)), choices[0] if choices else None)
    example = gr.Dropdown(choices, value=value, label=example_label, elem_id=f"{prefix}-example")
    upload = gr.File(
        label=upload_label,
        file_types=list(CALL_SUFFIXES),
        type="filepath",
        height=110,
        elem_id=f"{prefix}-upload",
    )
    return example, upload


def require(ctx: AppContext, request: gr.Request | None, view: View) -> None:
    """Refuse an action of a view the signed-in user's role does not open (the tab is hidden too, but an
    event can be sent without the page)."""
    name = getattr(request, "username", None) if request is not None else None
    if view not in views_for(ctx.users, name):
        raise gr.Error("没有权限 (your role does not open this view)", print_exception=False)


def _speed_control(free: bool) -> Any:
    """The speed can only change between calls: during one it is locked, and says so (it was ignored)."""
    label = "速度 Speed" if free else "速度 Speed（本次通话中不可更改 · fixed during this call）"
    return gr.Radio(interactive=free, label=label)


def _message(text: str) -> str:
    return f'<div class="cp-message">{esc(text)}</div>' if text else ""


def _panel_values(view: PanelView) -> list[str]:
    return [getattr(view, f) for f in PANEL_FIELDS]


class LiveHandlers:
    """The Live view's event handlers (closures over the app context only, never over a call)."""

    def __init__(self, ctx: AppContext, calls: dict[str, str]) -> None:
        self.ctx = ctx
        self.calls = calls

    def idle_view(self) -> PanelView:
        return render_idle(self.ctx.steps, self.ctx.pace_target, status=self.idle_status())

    def idle_status(self) -> str:
        """No call: while the models load, their progress; then "no call"."""
        done, total, current = self.ctx.readiness()
        return IDLE_STATUS if done >= total else render_loading(done, total, current)

    def watch_loading(self, call: LiveCall | None) -> list[Any]:
        """Page timer until the models are loaded: the idle status follows their progress."""
        ready = self.ctx.readiness()[0] >= self.ctx.readiness()[1]
        status = gr.skip() if call is not None else self.idle_status()
        return [gr.Timer(active=not ready), status]

    def _new_call(
        self, old: LiveCall | None, use_llm: bool, source: str, *, speed: float | None = None
    ) -> LiveCall | None:
        if old is not None:
            old.stop()  # a new call resets the panel: the old session is closed and its place freed
        slot = self.ctx.slots.acquire()
        if slot is None:
            return None
        options = SessionOptions(
            redact=self.ctx.config.privacy.redact, use_llm=use_llm, blocked=self.ctx.blocked()
        )
        session = CallSession(self.ctx.services, options)
        return LiveCall(session, CallInfo(source, self.ctx.steps, self.ctx.pace_target, speed=speed), slot)

    def _busy(self) -> list[Any]:
        return [
            None,
            gr.Timer(active=False),
            _message(busy_message(self.ctx.slots.limit)),
            _speed_control(True),
            *_panel_values(self.idle_view()),
        ]

    def start_replay(
        self,
        choice: str | None,
        upload: str | None,
        speed: str,
        use_llm: bool,
        call: LiveCall | None,
        request: gr.Request | None = None,
    ) -> list[Any]:
        require(self.ctx, request, "live")
        path = Path(upload) if upload else (Path(self.calls[choice]) if choice in self.calls else None)
        if path is None:
            raise gr.Error("Choose an example call or upload a recording / JSON transcript first.")
        if speed not in SPEEDS:
            raise gr.Error(f"unknown speed {speed!r}")
        pace = SPEEDS[speed]
        config = self.ctx.config
        if path.suffix.lower() in TRANSCRIPT_SUFFIXES:
            transcript = read_transcript(path)  # a bad file fails here, before any call starts

            def events(stop: threading.Event) -> Any:
                return transcript_events(transcript, pace, stop)
        else:
            probe(path)  # a bad recording fails here with a readable message
            transcriber = self.ctx.services.live_transcriber

            def events(stop: threading.Event) -> Any:
                def pause(seconds: float) -> None:
                    stop.wait(seconds)  # a stopped call does not sleep out its pacing

                options = ReplayOptions(speed=pace or MAX_SPEED)
                return replay(path, config.asr, transcriber, options, sleep=pause)

        new = self._new_call(call, use_llm, source_label(path, speed), speed=pace)
        if new is None:
            return self._busy()
        new.start(events)
        view = new.view()
        new.last_view = view
        return [new, gr.Timer(TICK_SECONDS, active=True), "", _speed_control(False), *_panel_values(view)]

    def stop(self, call: LiveCall | None) -> list[Any]:
        if call is None:
            return [
                None,
                gr.Timer(active=False),
                "",
                _speed_control(True),
                *_panel_values(self.idle_view()),
            ]
        call.stop()
        view = call.view()
        call.last_view = view
        stopped = _message("通话已停止 (call stopped)")
        return [call, gr.Timer(active=False), stopped, _speed_control(True), *_panel_values(view)]

    def tick(self, call: LiveCall | None) -> list[Any]:
        if call is None:
            return [gr.Timer(active=False), gr.skip(), *[gr.skip() for _ in PANEL_FIELDS]]
        view = call.view()
        parts = changed_parts(view, call.last_view, PANEL_FIELDS, resend_below=RESEND_BELOW_CHARS)
        call.last_view = view
        timer = gr.Timer(active=not view.finished)
        speed = _speed_control(True) if view.finished else gr.skip()  # a speed can be chosen again
        return [timer, speed, *[gr.skip() if p is None else p for p in parts]]

    def mic_chunk(self, chunk: Any, role: Role, use_llm: bool, call: LiveCall | None) -> list[Any]:
        if chunk is None:
            return [gr.skip(), gr.skip(), gr.skip()]
        started: list[Any] = [gr.skip(), gr.skip(), gr.skip()]
        if call is None or not call.is_microphone or not call.running:
            new = self._new_call(call, use_llm, f"microphone ({role})")
            if new is None:
                return [None, gr.skip(), _message(busy_message(self.ctx.slots.limit))]
            new.start_microphone(role, self.ctx.services.live_transcriber, SileroVad())
            call = new
            started = [new, gr.Timer(TICK_SECONDS, active=True), ""]
        rate, samples = chunk
        call.push_audio(int(rate), samples)
        return started

    def mic_stop(self, call: LiveCall | None) -> None:
        if call is not None and call.is_microphone:
            call.end_audio()


def _release_call(call: Any) -> None:
    """``gr.State`` delete callback: the browser session is gone, so is its call."""
    if isinstance(call, LiveCall):
        call.stop()


def _build_live(ctx: AppContext, calls: dict[str, str]) -> None:
    h = LiveHandlers(ctx, calls)
    call_state = gr.State(None, delete_callback=_release_call)
    timer = gr.Timer(TICK_SECONDS, active=False)
    loading = gr.Timer(LOADING_SECONDS, active=True)
    idle = h.idle_view()
    with gr.Column(elem_classes="cp-live"):
        # Controls first and always there (they used to fold away into the source panel during a call).
        with gr.Row(elem_classes="cp-controls", equal_height=True):
            choices = list(calls)
            value = next(
                (c for c in choices if c.startswith("good_call.wav")), choices[0] if choices else None
            )
            example = gr.Dropdown(
                choices,
                value=value,
                label="回放通话 Call to replay",
                elem_id="live-example",
                scale=3,
                min_width=200,
            )
            speed = gr.Radio(
                list(SPEEDS), value="1x", label="速度 Speed", elem_id="live-speed", scale=2, min_width=200
            )
            with gr.Column(scale=1, min_width=140, elem_classes="cp-buttons"):
                start = gr.Button("▶ 开始 Start", variant="primary", elem_id="live-start", size="sm")
                stop = gr.Button("■ 停止 Stop", elem_id="live-stop", size="sm")
            with gr.Column(scale=1, min_width=140, elem_classes="cp-toggles"):
                use_llm = gr.Checkbox(value=True, label="AI 改写 LLM", elem_id="live-llm", container=False)
                details = gr.Checkbox(
                    value=False, label="显示细节 details", elem_id="live-details", container=False
                )
        status = gr.HTML(idle.status, elem_id="live-status", padding=False, min_height=0)
        message = gr.HTML("", elem_id="live-message", padding=False, min_height=0, elem_classes="cp-thin")
        errors = gr.HTML(
            idle.errors, elem_id="live-errors", padding=False, min_height=0, elem_classes="cp-thin"
        )
        with gr.Row(elem_classes="cp-main", equal_height=False):
            with gr.Column(scale=5, min_width=340, elem_classes="cp-say-col"):
                suggestion = gr.HTML(idle.suggestion, elem_id="live-suggestion")
                copy = gr.Button("复制建议 Copy", elem_id="live-copy", size="sm", elem_classes="cp-copy")
                with gr.Row(elem_classes="cp-compact"):
                    mood = gr.HTML(idle.mood, elem_id="live-mood", min_width=120)
                    pace = gr.HTML(idle.pace, elem_id="live-pace", min_width=160)
                flags = gr.HTML(idle.flags, elem_id="live-flags")
            with gr.Column(scale=5, min_width=340, elem_classes="cp-transcript-col"):
                transcript = gr.HTML(idle.transcript, elem_id="live-transcript")
            with gr.Column(scale=3, min_width=260, elem_classes="cp-steps-col"):
                checklist = gr.HTML(idle.checklist, elem_id="live-checklist")
                guideline = gr.HTML(idle.guideline, elem_id="live-guideline")
        with gr.Accordion("上传录音或用麦克风 Upload a call / microphone", open=False, elem_id="live-more"):
            upload = gr.File(
                label="上传立体声录音（左声道=坐席）或 JSON 转写 · stereo recording (left = agent) or JSON transcript",
                file_types=list(CALL_SUFFIXES),
                type="filepath",
                height=110,
                elem_id="live-upload",
            )
            mic_role = gr.Radio(
                [("我是坐席 the mic is the agent", "agent"), ("客户 the mic is the customer", "customer")],
                value="agent",
                label="麦克风说话人 Microphone speaker",
                elem_id="live-mic-role",
            )
            mic = gr.Audio(
                sources=["microphone"],
                streaming=True,
                type="numpy",
                label="麦克风 Microphone (live call)",
                elem_id="live-mic",
            )
    copy.click(None, None, None, js=COPY_JS)
    details.change(None, [details], None, js=DETAILS_JS)
    loading.tick(h.watch_loading, [call_state], [loading, status], show_progress="hidden")
    by_field = {
        "status": status,
        "transcript": transcript,
        "guideline": guideline,
        "suggestion": suggestion,
        "flags": flags,
        "mood": mood,
        "pace": pace,
        "checklist": checklist,
        "errors": errors,
    }
    panel = [by_field[f] for f in PANEL_FIELDS]
    start.click(
        friendly(h.start_replay),
        [example, upload, speed, use_llm, call_state],
        [call_state, timer, message, speed, *panel],
        concurrency_limit=None,
    )
    stop.click(
        friendly(h.stop),
        [call_state],
        [call_state, timer, message, speed, *panel],
        concurrency_limit=None,
    )
    timer.tick(
        friendly(h.tick),
        [call_state],
        [timer, speed, *panel],
        concurrency_limit=None,
        show_progress="hidden",
    )
    mic.stream(
        friendly(h.mic_chunk),
        [mic, mic_role, use_llm, call_state],
        [call_state, timer, message],
        stream_every=MIC_STREAM_EVERY,
        time_limit=MIC_TIME_LIMIT,
        concurrency_limit=None,
    )
    mic.stop_recording(friendly(h.mic_stop), [call_state], None)
    if ctx.config.telephony.enabled:
        phone.add_follow(ctx, call_state, timer, TICK_SECONDS)


def _remove_folder(folder: Any) -> None:
    """``gr.State`` delete callback: a session's report downloads go when the session does."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_reviewed_audio(calls: Any) -> None:
    """``gr.State`` delete callback: a session's uploaded recordings go when the session does."""
    remove_uploads(c.audio for c in calls or () if getattr(c, "audio", None))


# The Review tab's findings (timeline marks, scorecard evidence) carry their evidence-row number in
# data-finding; a click (or Enter / space on a focused one) marks it picked and sends the number to Python.
PICK_FINDING_JS = """
const pick = (event) => {
  const found = event.target.closest && event.target.closest('[data-finding]');
  if (!found || !element.contains(found)) return;
  if (event.type === 'keydown' && event.key !== 'Enter' && event.key !== ' ') return;
  event.preventDefault();
  const n = found.dataset.finding;
  element.querySelectorAll('.cp-picked').forEach((e) => e.classList.remove('cp-picked'));
  element.querySelectorAll(`[data-finding="${n}"]`).forEach((e) => e.classList.add('cp-picked'));
  trigger('click', {finding: Number(n)});
};
element.addEventListener('click', pick);
element.addEventListener('keydown', pick);
"""
REVIEW_CSS = """
.cp-finding{cursor:pointer;border-bottom:1px dotted #b3261e}
.cp-finding:hover,.cp-finding:focus{background:#fdecea;outline:none}
.cp-finding.cp-picked{background:#fde0dc;outline:2px solid #b3261e}
.cp-tl-finding:focus{outline:none}
.cp-tl-finding:hover rect,.cp-tl-finding:focus rect,.cp-tl-finding.cp-picked rect{stroke:#111;stroke-width:2}
.cp-timeline{margin:6px 0 10px}
.cp-tl-note,.cp-unknown-reason{color:#555}
.cp-tl-unknowns{margin:2px 0;padding-left:18px;font-size:.9em}
"""


def _build_review(ctx: AppContext) -> list[Any]:
    reviewed = gr.State((), delete_callback=_remove_reviewed_audio)
    evidence_rows = gr.State([])
    listing_ids = gr.State([])
    downloads_dir = gr.State(None, delete_callback=_remove_folder)

    gr.Markdown("Upload one or many recordings (stereo: left = agent) or JSON transcripts.")
    with gr.Row():
        files = gr.File(
            file_count="multiple",
            file_types=list(CALL_SUFFIXES),
            type="filepath",
            label="Calls to review",
            elem_id="review-files",
        )
        with gr.Column():
            agent = gr.Textbox(label="Agent id for these calls (optional)", elem_id="review-agent")
            go = gr.Button("审核 Review", variant="primary", elem_id="review-go")
    message = gr.HTML("", elem_id="review-message")
    # A finding in a call's timeline or scorecard is clicked: the same player as an evidence row plays it.
    scorecards = gr.HTML("", elem_id="review-scorecards", js_on_load=PICK_FINDING_JS, css_template=REVIEW_CSS)
    gr.Markdown(
        "**Evidence** — click a row (or a finding in the timeline or scorecard) to hear that moment of the recording"
    )
    evidence = gr.Dataframe(
        headers=rv.EVIDENCE_HEADERS, interactive=False, wrap=True, elem_id="review-evidence"
    )
    clip_note = gr.HTML("", elem_id="review-clip-note")
    clip = gr.Audio(label="Evidence audio", interactive=False, autoplay=True, elem_id="review-clip")
    transcripts = gr.HTML("", elem_id="review-transcripts")
    downloads = gr.File(
        label="Downloads (HTML / JSON / CSV)",
        file_count="multiple",
        interactive=False,
        elem_id="review-downloads",
    )
    with gr.Accordion("Earlier reviews (from the database)", open=True):
        with gr.Row():
            f_agent = gr.Textbox(label="Agent", elem_id="search-agent")
            f_text = gr.Textbox(label="Text in transcript", elem_id="search-text")
            f_failed = gr.Dropdown(
                ["", *ctx.check_ids], value="", label="Failed check", elem_id="search-failed"
            )
            search = gr.Button("Search", elem_id="search-go")
        listing = gr.Dataframe(headers=rv.LISTING_HEADERS, interactive=False, elem_id="review-listing")

    def show(calls: tuple[rv.ReviewedCall, ...], errors: tuple[str, ...], old_dir: str | None) -> list[Any]:
        if old_dir:
            shutil.rmtree(old_dir, ignore_errors=True)
        rows = rv.evidence_rows(calls)
        names = [c.name for c in calls]
        files_out = rv.write_downloads(calls) if calls else []
        new_dir = str(Path(files_out[0]).parent) if files_out else None
        note = "; ".join(errors)
        return [
            calls,
            rows,
            new_dir,
            _message(f"Could not review: {note}" if note else ""),
            rv.scorecards_html(calls),
            [r.cells(names[r.call_index]) for r in rows] or None,
            "".join(rv.transcript_html(c) for c in calls),
            files_out or None,
            None,
            "",
        ]

    outputs = [
        reviewed,
        evidence_rows,
        downloads_dir,
        message,
        scorecards,
        evidence,
        transcripts,
        downloads,
        clip,
        clip_note,
    ]

    def run_review(
        paths: list[str] | None,
        agent_id: str,
        old_dir: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        require(ctx, request, "review")
        if not paths:
            raise gr.Error("Upload at least one recording or JSON transcript.")
        try:
            result = rv.review_uploads(
                paths,
                ctx,
                agent=(agent_id or "").strip(),  # None until the box is first used
                # the bar moves as each file is done: before file i+1 it stands at i/n
                progress=lambda done, total, name: progress(
                    (done, total), desc=rv.progress_text(done, total, name)
                ),
            )
        finally:
            # Transcripts go at once; recordings stay while the reviewer plays their evidence and go with the
            # browser session (the reviewed calls' delete callback), or Gradio's hourly cache cleaning.
            remove_uploads(p for p in paths if Path(p).suffix.lower() in TRANSCRIPT_SUFFIXES)
        return [*show(result.calls, result.errors, old_dir), *listing_values()]

    def listing_values(
        agent_id: str = "", text: str = "", failed: str = "", request: gr.Request | None = None
    ) -> list[Any]:
        require(ctx, request, "review")
        found = rv.search_reviews(ctx, agent=agent_id or "", text=text or "", failed_check=failed or "")
        return [rv.listing_rows(found) or None, [c.id for c in found]]

    def open_earlier(
        ids: list[int], old_dir: str | None, evt: gr.SelectData, request: gr.Request
    ) -> list[Any]:
        require(ctx, request, "review")
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(row, int) or not 0 <= row < len(ids):
            return [gr.skip() for _ in outputs]
        return show((rv.open_stored(ctx, ids[row]),), (), old_dir)

    def play_row(rows: list[rv.EvidenceRow], calls: tuple[rv.ReviewedCall, ...], row: object) -> list[Any]:
        """The clip and note of evidence row ``row``: what a click on a row or on a finding plays."""
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < len(rows):
            return [gr.skip(), gr.skip()]
        item = rows[row]
        call = calls[item.call_index]
        when = f"{mmss(item.start)}–{mmss(item.end)}" if item.moment else "—"
        where = f"{call.name} · {item.item} · {when} · “{item.quote}”"
        attrs = f'data-row="{row}" data-start="{item.start:.2f}" data-end="{item.end:.2f}"'
        if not item.moment:
            note = f"{where}: no moment in the call to play (no times, or a check failed for what is absent)"
            return [None, f'<div class="cp-clip" {attrs}>{_message(note)}</div>']
        if call.audio is None:
            note = f"{where}: no recording for this call (a transcript, or audio not kept)"
            return [None, f'<div class="cp-clip" {attrs}>{_message(note)}</div>']
        return [
            rv.clip(call.audio, item.start, item.end),
            f'<div class="cp-clip cp-meta" {attrs}>▶ {esc(where)}</div>',
        ]

    def play(rows: list[rv.EvidenceRow], calls: tuple[rv.ReviewedCall, ...], evt: gr.SelectData) -> list[Any]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return play_row(rows, calls, row)

    def play_finding(
        rows: list[rv.EvidenceRow], calls: tuple[rv.ReviewedCall, ...], evt: gr.EventData
    ) -> list[Any]:
        data = evt._data if isinstance(evt._data, dict) else {}  # what PICK_FINDING_JS sent
        return play_row(rows, calls, data.get("finding"))

    go.click(
        friendly(run_review),
        [files, agent, downloads_dir],
        [*outputs, listing, listing_ids],
        concurrency_limit=ctx.config.app.max_live_sessions,
    )
    search.click(friendly(listing_values), [f_agent, f_text, f_failed], [listing, listing_ids])
    listing.select(friendly(open_earlier), [listing_ids, downloads_dir], outputs)
    evidence.select(friendly(play), [evidence_rows, reviewed], [clip, clip_note])
    scorecards.click(friendly(play_finding), [evidence_rows, reviewed], [clip, clip_note])
    return [listing, listing_ids]


def _build_train(ctx: AppContext, calls: dict[str, str]) -> list[Any]:
    turns = gr.State([])
    selected = gr.State(None)

    gr.Markdown("### Evaluation suites")
    with gr.Row():
        suite = gr.Dropdown(tr.suite_names(), value=None, label="Suite", elem_id="train-suite", min_width=240)
        run = gr.Button("Run suite", elem_id="train-run")
    about = gr.HTML("", elem_id="train-suite-about")
    metrics = gr.Dataframe(
        headers=tr.METRIC_HEADERS,
        interactive=False,
        wrap=True,
        column_widths=["30%", "14%", "14%", "20%", "22%"],
        label="Result: against eval/floors.toml and the last run of this configuration",
        elem_id="train-metrics",
    )
    with gr.Accordion("Suite output", open=False):
        suite_text = gr.Code(label="Result", language=None, elem_id="train-suite-text")
    gr.Markdown("#### Compare two stored runs of the suite")
    with gr.Row():
        # min_width: on a narrow screen the two stack, each wide enough to read its run
        run_a = gr.Dropdown([], value=None, label="Run A", elem_id="train-run-a", min_width=360)
        run_b = gr.Dropdown([], value=None, label="Run B", elem_id="train-run-b", min_width=360)
    compared = gr.Dataframe(
        headers=tr.COMPARE_HEADERS,
        interactive=False,
        wrap=True,
        column_widths=["34%", "20%", "20%", "26%"],
        label="A vs B",
        elem_id="train-compare",
    )
    history = gr.Dataframe(
        headers=tr.HISTORY_HEADERS,
        interactive=False,
        label="Earlier runs",
        elem_id="train-history",
    )

    gr.Markdown("### Replay a recorded call: what the copilot suggested vs what the agent said")
    with gr.Row():
        example, upload = _call_picker(
            calls,
            "train",
            default="bad_call.json",
            example_label="Example call",
            upload_label="…or upload a JSON transcript / recording",
        )
        with gr.Column():
            use_llm = gr.Checkbox(value=True, label="LLM rewrite", elem_id="train-llm")
            go = gr.Button("Replay call", variant="primary", elem_id="train-go")
    message = gr.HTML("", elem_id="train-message")
    table = gr.Dataframe(
        headers=tr.TURN_HEADERS,
        interactive=False,
        wrap=True,
        # widths in px, not %: at 480 px the seven columns scroll sideways instead of one character per line
        column_widths=["44px", "64px", "220px", "240px", "220px", "96px", "120px"],
        elem_id="train-turns",
    )
    gr.Markdown(
        "Click a turn, then rate its suggestion or block it (a blocked text is not suggested again until it "
        "is unblocked in the block list below)."
    )
    detail = gr.HTML("", elem_id="train-detail")
    with gr.Row():
        rating = gr.Radio(
            [("好 good", "good"), ("差 bad", "bad")], value=None, label="评价 Rating", elem_id="train-rating"
        )
        comment = gr.Textbox(label="Comment", elem_id="train-comment")
    with gr.Row():
        save = gr.Button("Save rating", elem_id="train-save")
        block = gr.Button("Block this suggestion", variant="stop", elem_id="train-block")
    rate_message = gr.HTML("", elem_id="train-rate-message")
    ratings = gr.Dataframe(
        headers=["id", "rating", "suggestion", "comment", "rater", "when"],
        interactive=False,
        wrap=True,
        label="Ratings",
        elem_id="train-ratings",
    )
    blocked = gr.Dataframe(
        headers=tr.BLOCK_HEADERS,
        interactive=False,
        wrap=True,
        label="Block list (click a row, then Unblock)",
        elem_id="train-blocklist",
    )
    unblocking = gr.State(None)  # the blocked text whose row was clicked
    with gr.Row():
        picked_block = gr.HTML("", elem_id="train-block-picked")
        unblock = gr.Button("Unblock", elem_id="train-unblock")

    def runs_of(name: str | None) -> list[Any]:
        choices = tr.stored_run_choices(ctx, name)
        a = choices[1][1] if len(choices) > 1 else None
        b = choices[0][1] if choices else None
        return [
            gr.Dropdown(choices=choices, value=a),
            gr.Dropdown(choices=choices, value=b),
            tr.compare_stored(ctx, a, b) or None,
        ]

    def describe(name: str | None, request: gr.Request) -> list[Any]:
        require(ctx, request, "train")
        return [tr.suite_description(name), "", None, *runs_of(name)]  # an earlier suite's result goes

    def run_suite(name: str | None, request: gr.Request) -> list[Any]:
        require(ctx, request, "train")
        if not name:
            raise gr.Error("Choose a suite.")
        outcome, rows, _run_id = tr.run_and_record(ctx, name)
        return [outcome.text, rows or None, tr.eval_history_rows(ctx) or None, *runs_of(name)]

    def compare(a: int | None, b: int | None, request: gr.Request) -> Any:
        require(ctx, request, "train")
        return tr.compare_stored(ctx, a, b) or None

    def replay_call(choice: str | None, path: str | None, llm: bool, request: gr.Request) -> list[Any]:
        require(ctx, request, "train")
        chosen = path or calls.get(choice or "")
        if not chosen:
            raise gr.Error("Choose an example call or upload one.")
        transcript = tr.load_call(chosen, ctx)
        views = tr.compare_turns(transcript, ctx, use_llm=llm, blocked=ctx.blocked())
        note = "" if views else _message("No customer turns in this call.")
        first = tr.turn_detail_html(views[0]) if views else ""
        return [views, 0 if views else None, [v.cells() for v in views] or None, first, note]

    def pick(views: list[tr.TurnView], evt: gr.SelectData) -> list[Any]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(row, int) or not 0 <= row < len(views):
            return [gr.skip(), gr.skip()]
        return [row, tr.turn_detail_html(views[row])]

    def chosen(views: list[tr.TurnView], index: int | None) -> tr.TurnView:
        if index is None or not 0 <= index < len(views):
            raise gr.Error("Replay a call and click a turn first.")
        return views[index]

    def save_rating(
        views: list[tr.TurnView], index: int | None, value: str | None, note: str, request: gr.Request
    ) -> list[Any]:
        require(ctx, request, "train")
        # before the turn: without a rating nothing is stored, whatever else is missing
        tr.require_rating(value)
        text = chosen(views, index).suggestion  # as the trainer saw it (redacted)
        rating_id = tr.rate(ctx, text, value, note, rater=getattr(request, "username", None) or "")
        return [_ok(f"Rating #{rating_id} saved ({value})."), tr.ratings_rows(ctx) or None]

    def block_it(views: list[tr.TurnView], index: int | None, note: str, request: gr.Request) -> list[Any]:
        require(ctx, request, "train")
        turn = chosen(views, index)
        tr.block(ctx, turn.raw_suggestion or turn.suggestion, note)  # what the suggester must not produce
        return [_ok("Blocked: it will not be suggested again."), tr.blocklist_rows(ctx) or None]

    def pick_block(evt: gr.SelectData) -> list[Any]:
        row = evt.row_value or []
        text = str(row[0]) if row and row[0] else None
        shown = f'<div class="cp-block-picked">Unblock: {esc(text)}</div>' if text else ""
        return [text, shown]

    def unblock_it(text: str | None, request: gr.Request) -> list[Any]:
        require(ctx, request, "train")
        tr.unblock(ctx, text)
        done = _ok("Unblocked: later suggestions may use it again.")
        return [tr.blocklist_rows(ctx) or None, None, done, ""]  # the "Blocked" note above is stale now

    compared_by = [run_a, run_b, compared]
    suite.change(friendly(describe), [suite], [about, suite_text, metrics, *compared_by])
    run.click(friendly(run_suite), [suite], [suite_text, metrics, history, *compared_by], concurrency_limit=1)
    for box in (run_a, run_b):
        box.input(friendly(compare), [run_a, run_b], [compared])
    go.click(
        friendly(replay_call),
        [example, upload, use_llm],
        [turns, selected, table, detail, message],
        concurrency_limit=ctx.config.app.max_live_sessions,
    )
    table.select(friendly(pick), [turns], [selected, detail])
    save.click(friendly(save_rating), [turns, selected, rating, comment], [rate_message, ratings])
    block.click(friendly(block_it), [turns, selected, comment], [rate_message, blocked])
    blocked.select(friendly(pick_block), None, [unblocking, picked_block])
    unblock.click(friendly(unblock_it), [unblocking], [blocked, unblocking, picked_block, rate_message])
    return [ratings, blocked, history]


def _ok(text: str) -> str:
    return f'<div class="cp-ok-message">{esc(text)}</div>'


def build_app(
    config: Config,
    services: Services | None = None,
    *,
    store: Store | None = None,
    calls_dir: Path | None = DEFAULT_CALLS_DIR,
) -> gr.Blocks:
    """The app: Live (agents' side panel), Review (QA), Train (trainers). Loads no model by itself."""
    ctx = AppContext(config, services, store)
    calls = shared_calls(calls_dir)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"### {TITLE}", elem_classes="cp-title")
        with gr.Tabs() as tabs:
            with gr.Tab("实时 Live", id="live", elem_id="tab-live") as live_tab:
                _build_live(ctx, calls)
            with gr.Tab("质检 Review", id="review", elem_id="tab-review") as review_tab:
                review_tables = _build_review(ctx)
            with gr.Tab("培训 Train", id="train", elem_id="tab-train") as train_tab:
                train_tables = _build_train(ctx, calls)
        by_view = {"live": live_tab, "review": review_tab, "train": train_tab}

        def on_load(request: gr.Request) -> list[Any]:
            name = getattr(request, "username", None)
            views = views_for(ctx.users, name)
            first = next((v for v in by_view if v in views), "live")
            # Only a role without Live is moved to its own view: a page already on another tab stays there.
            selected = gr.skip() if "live" in views else gr.Tabs(selected=first)
            shown = [gr.skip() if view in views else gr.Tab(visible=False) for view in by_view]
            review = _review_listing(ctx) if "review" in views else [None, []]
            train = _train_tables(ctx) if "train" in views else [None, None, None]
            return [selected, *shown, *review, *train]

        # Each role sees its own views; listings come from the database each time a page opens.
        demo.load(friendly(on_load), None, [tabs, *by_view.values(), *review_tables, *train_tables])
    for function in demo.fns.values():  # no API description, before sign-in or after: the app is no API
        function.api_visibility = "undocumented"
    demo.copilot_context = ctx
    return demo


def _review_listing(ctx: AppContext) -> list[Any]:
    found = rv.search_reviews(ctx)
    return [rv.listing_rows(found) or None, [c.id for c in found]]


def _train_tables(ctx: AppContext) -> list[Any]:
    return [tr.ratings_rows(ctx) or None, tr.blocklist_rows(ctx) or None, tr.eval_history_rows(ctx) or None]


def launch(
    demo: gr.Blocks,
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    block: bool = True,
) -> None:
    """Serve on 127.0.0.1 unless told otherwise. With users configured ([app] users, or auth_user) every
    view asks for a sign-in, and each role sees its own views (copilot/ui/access.py)."""
    from starlette.middleware import Middleware

    ctx: AppContext | None = getattr(demo, "copilot_context", None)
    users = ctx.users if ctx is not None else parse_users(config.app)
    auth = Login(users) if users else None
    # Gradio summarises its recorded events with pandas after every event; with a panel refreshing every
    # 0.3 s per call that costs a core. Keep few records and summarise rarely.
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(ANALYTICS_EVENTS))
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVENTS))
    # The event loop runs Python for every panel refresh; each call's feeder thread needs the interpreter
    # lock back after every VAD or decoder call. With the default 5-ms switch interval those hand-backs
    # queued behind the loop and the calls fell behind the clock.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    if ctx is not None:
        phone.start_telephony(ctx)
        threading.Thread(target=_warm, args=(ctx,), name="warm-up", daemon=True).start()
    hosts = allowed_hosts(config.app, host)
    demo.queue(default_concurrency_limit=config.app.max_live_sessions).launch(
        server_name=host or config.app.host,
        server_port=port or config.app.port,
        auth=auth,
        auth_message="售后通话助手 · 请登录 sign in" if auth else None,
        show_error=False,
        css=CSS,
        js=STICK_TO_NEWEST_JS,
        prevent_thread_lock=not block,
        footer_links=[],
        max_file_size=f"{config.app.max_upload_mb}mb",
        app_kwargs={"middleware": [Middleware(HostAllowList, allowed=hosts)]},
    )


def _warm(ctx: AppContext) -> None:
    try:
        ctx.warm_up()
    except Exception:  # the first call will report the same problem to its user
        log.exception("warm-up failed")
