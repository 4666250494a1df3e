"""The agent's Live view following their own phone calls (``[telephony] enabled``).

The app runs the telephony service (:mod:`copilot.session.telephony.service`) in a thread; an agent types
their extension into the Live view, and a half-second timer asks the service's registry for that extension's
call: when a SIPREC or media-stream call for it starts, the panel attaches to its session (the same panel as a
replay: transcript, flags, suggestion). An agent on a web softphone can make the browser itself the source
(:data:`BROWSER_SOURCE_JS`: headset microphone = agent, the shared softphone tab = customer). The call belongs to the phone system, not to the page: leaving or
stopping the panel detaches it and never ends the call; the call's review is stored by the service when it ends.
"""

from __future__ import annotations

import logging
from typing import Any

from copilot.session.telephony.registry import CallRegistry, LiveEntry
from copilot.ui.context import AppContext
from copilot.ui.live import CallInfo, LiveCall
from copilot.ui.panel import Step

log = logging.getLogger(__name__)

FOLLOW_SECONDS = 0.5  # s between looks for the agent's new call: attached within a second

# The agent's browser as the call's source, for an agent on a web softphone: the headset microphone is the
# agent, the softphone's tab (or the system audio, shared with getDisplayMedia) the customer. The page mixes
# them into two channels and streams them to the media-stream endpoint as binary L16 frames; the panel then
# follows the call by extension like any other. A second click ends the call.
BROWSER_SOURCE_JS = """
async (ext) => {
  if (window.copilotBrowserCall) { window.copilotBrowserCall.stop(); return ext; }
  if (!ext) { alert("请先输入分机号 (type your extension first)"); return ext; }
  const mic = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: true, noiseSuppression: true}});
  const shared = await navigator.mediaDevices.getDisplayMedia({video: true, audio: true});
  const tab = shared.getAudioTracks();
  const release = () => [...mic.getTracks(), ...shared.getTracks()].forEach((t) => t.stop());
  if (!tab.length) { release(); alert("分享软电话标签页时请勾选“分享音频” (share the softphone tab with its audio)"); return ext; }
  const ctx = new AudioContext({sampleRate: 16000});
  const merger = ctx.createChannelMerger(2);
  ctx.createMediaStreamSource(mic).connect(merger, 0, 0);
  ctx.createMediaStreamSource(new MediaStream(tab)).connect(merger, 0, 1);
  const node = ctx.createScriptProcessor(4096, 2, 2);
  const silent = ctx.createGain();
  silent.gain.value = 0;
  merger.connect(node); node.connect(silent); silent.connect(ctx.destination);
  const ws = new WebSocket(`ws://${location.hostname}:__PORT__`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({callId: `browser-${ext}-${Date.now()}`, extension: ext,
    encoding: "audio/l16", sampleRate: ctx.sampleRate, channels: ["agent", "customer"]}));
  node.onaudioprocess = (e) => {
    if (ws.readyState !== 1) return;
    const agent = e.inputBuffer.getChannelData(0), customer = e.inputBuffer.getChannelData(1);
    const frames = new Int16Array(agent.length * 2);
    for (let i = 0; i < agent.length; i++) {
      frames[2 * i] = Math.max(-1, Math.min(1, agent[i])) * 32767;
      frames[2 * i + 1] = Math.max(-1, Math.min(1, customer[i])) * 32767;
    }
    ws.send(frames.buffer);
  };
  const stop = () => {
    window.copilotBrowserCall = null;
    if (ws.readyState === 1) ws.send(JSON.stringify({event: "stop"}));
    ws.close(); node.disconnect(); ctx.close(); release();
  };
  shared.getVideoTracks().forEach((t) => { t.onended = stop; });
  ws.onclose = () => { if (window.copilotBrowserCall) stop(); };
  window.copilotBrowserCall = {stop};
  return ext;
}
"""


class FollowedCall(LiveCall):
    """A phone call shown on a panel; stopping the panel detaches it, the call goes on."""

    def __init__(self, entry: LiveEntry, info: CallInfo) -> None:
        super().__init__(entry.session, info)
        self.entry = entry

    def stop(self) -> None:
        pass  # the phone system ends the call (BYE, stop); the page only looks at it


def follow(
    registry: CallRegistry,
    extension: str,
    current: LiveCall | None,
    steps: tuple[Step, ...],
    pace_target: tuple[float, float],
) -> FollowedCall | None:
    """The extension's call to attach to, or None when the panel already shows it (or there is none)."""
    entry = registry.current(extension)
    if entry is None:
        return None
    if isinstance(current, FollowedCall) and current.entry.call_id == entry.call_id:
        return None
    label = f"{entry.source} · 分机 extension {entry.extension} · {entry.call_id}"
    return FollowedCall(entry, CallInfo(label, steps, pace_target))


def start_telephony(ctx: AppContext) -> None:
    """Start listening for calls when the configuration asks for it (idempotent)."""
    if not ctx.config.telephony.enabled or ctx.telephony is not None:
        return
    from copilot.session.telephony.service import TelephonyService

    service = TelephonyService(ctx.config, ctx.services, lambda: ctx.store)
    service.start()
    ctx.telephony = service
    log.info("telephony: SIPREC on %s:%s", ctx.config.telephony.host, service.siprec and service.siprec.port)


def add_follow(ctx: AppContext, call_state: Any, panel_timer: Any, tick_seconds: float) -> None:
    """An extension box and its timer in the Live view (inside the Blocks being built)."""
    import gradio as gr

    extension = gr.Textbox(
        label="分机号 My extension (the panel follows its calls from the phone system)",
        max_lines=1,
        elem_id="live-extension",
    )
    look = gr.Timer(FOLLOW_SECONDS, active=True)
    port = ctx.config.telephony.media_stream_port
    if port:
        browser = gr.Button(
            "🎧 用本浏览器通话 Headset + softphone tab as the call (again: end it)",
            elem_id="live-browser-call",
        )
        browser.click(None, [extension], [extension], js=BROWSER_SOURCE_JS.replace("__PORT__", str(port)))

    def on_look(ext: str, call: LiveCall | None) -> list[Any]:
        registry = ctx.telephony.registry if ctx.telephony is not None else None
        found = follow(registry, ext or "", call, ctx.steps, ctx.pace_target) if registry else None
        if found is None:
            return [gr.skip(), gr.skip()]
        if call is not None:
            call.stop()  # a replay or microphone call gives way to the agent's phone call
        return [found, gr.Timer(tick_seconds, active=True)]

    look.tick(on_look, [extension, call_state], [call_state, panel_timer], show_progress="hidden")
