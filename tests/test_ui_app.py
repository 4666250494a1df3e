"""The app's assembly: three views, readable errors, the README's entry point stays importable."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

import app as entry
from copilot.errors import AudioError
from copilot.ui.app import build_app, friendly, shared_calls
from tests.ui_fakes import Engines, context


def test_the_app_has_the_three_views_and_builds_without_loading_a_model(
    tmp_path: Path, shared_dir: Path
) -> None:
    ctx = context(tmp_path, Engines().services())
    demo = build_app(ctx.config, ctx.services, store=ctx.store, calls_dir=shared_dir / "calls")
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert [t.elem_id for t in tabs] == ["tab-live", "tab-review", "tab-train"]
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"live-start", "live-mic", "live-transcript", "review-files", "train-save", "train-block"} <= ids
    mic = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "live-mic")
    assert isinstance(mic, gr.Audio) and mic.streaming and mic.sources == ["microphone"]


def test_example_calls_are_listed_with_what_they_are(shared_dir: Path) -> None:
    calls = shared_calls(shared_dir / "calls")
    assert calls["good_call.wav (stereo recording)"].endswith("good_call.wav")
    assert calls["good_call.mono.wav (mono recording)"].endswith("good_call.mono.wav")
    assert calls["bad_call.json (transcript)"].endswith("bad_call.json")
    assert shared_calls(shared_dir / "no-such-folder") == {}


def test_library_errors_reach_the_user_as_one_readable_message() -> None:
    def bad_file() -> None:
        raise AudioError("call.wav: not an audio file")

    def bug() -> None:
        raise KeyError("segments")

    with pytest.raises(gr.Error) as caught:
        friendly(bad_file)()
    assert caught.value.message == "call.wav: not an audio file"
    with pytest.raises(gr.Error) as caught:
        friendly(bug)()
    assert "KeyError" in caught.value.message and "Traceback" not in caught.value.message


def test_the_entry_point_is_importable_and_parses_host_and_port() -> None:
    args = entry.parse_args(["--port", "7999", "--host", "127.0.0.1"])
    assert (args.port, args.host) == (7999, "127.0.0.1")


def test_with_a_login_configured_nothing_is_served_before_signing_in(tmp_path: Path) -> None:
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    from copilot.ui.app import launch

    ctx = context(tmp_path, Engines().services(), auth_user="qa", auth_password="s3cret")
    demo = build_app(ctx.config, ctx.services, store=ctx.store, calls_dir=None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, ctx.config, port=port, block=False)
    base = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/config", timeout=30)
        assert refused.value.code == 401
        wrong = urllib.parse.urlencode({"username": "qa", "password": "guess"}).encode()
        with pytest.raises(urllib.error.HTTPError) as bad_login:
            urllib.request.urlopen(f"{base}/login", data=wrong, timeout=30)
        assert bad_login.value.code == 400
        right = urllib.parse.urlencode({"username": "qa", "password": "s3cret"}).encode()
        with urllib.request.urlopen(f"{base}/login", data=right, timeout=30) as response:
            cookie = response.headers["set-cookie"].split(";")[0]
        request = urllib.request.Request(f"{base}/config", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and b"tab-review" in response.read()
    finally:
        demo.close()
