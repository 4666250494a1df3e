"""Assemble the Gradio Blocks app from its three views and launch it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot.config import Config

if TYPE_CHECKING:
    import gradio as gr

TITLE = "售后通话助手 · Mandarin service-call copilot"


def build_app(config: Config) -> gr.Blocks:
    import gradio as gr

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"## {TITLE}")
        with gr.Tab("Live", id="live"):
            gr.Markdown("Live side panel: transcript, guideline, suggestion, flags.")
        with gr.Tab("Review", id="review"):
            gr.Markdown("QA review of recorded calls.")
        with gr.Tab("Train", id="train"):
            gr.Markdown("Trainers' workbench.")
    return demo


def launch(demo: gr.Blocks, config: Config, *, host: str | None = None, port: int | None = None) -> None:
    auth = (config.app.auth_user, config.app.auth_password) if config.app.auth_user else None
    demo.queue(default_concurrency_limit=config.app.max_live_sessions).launch(
        server_name=host or config.app.host,
        server_port=port or config.app.port,
        auth=auth,
        show_error=False,
    )
