"""The agent's Live view following their own phone calls (``[telephony] enabled``).

The app runs the telephony service (:mod:`copilot.session.telephony.service`) in a thread; an agent types
their extension into the Live view, and a half-second timer asks the service's registry for that extension's
call: when a SIPREC or media-stream call for it starts, the panel attaches to its session (the same panel as a
replay: transcript, flags, suggestion). The call belongs to the phone system, not to the page: leaving or
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

    def on_look(ext: str, call: LiveCall | None) -> list[Any]:
        registry = ctx.telephony.registry if ctx.telephony is not None else None
        found = follow(registry, ext or "", call, ctx.steps, ctx.pace_target) if registry else None
        if found is None:
            return [gr.skip(), gr.skip()]
        if call is not None:
            call.stop()  # a replay or microphone call gives way to the agent's phone call
        return [found, gr.Timer(tick_seconds, active=True)]

    look.tick(on_look, [extension, call_state], [call_state, panel_timer], show_progress="hidden")
