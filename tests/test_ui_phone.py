"""The Live view following an agent's phone calls: attach to the extension's call, never end it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from copilot.config import TelephonyConfig
from copilot.qa.store import Store
from copilot.session.call import CallSession, SessionOptions
from copilot.session.telephony.registry import CallRegistry
from copilot.types import Segment
from copilot.ui.phone import FollowedCall, follow
from tests.fakes_engines import fake_engines

STEPS = ()
PACE = (180.0, 220.0)


def test_the_panel_attaches_to_the_extensions_new_call_and_only_once() -> None:
    registry = CallRegistry()
    assert follow(registry, "1001", None, STEPS, PACE) is None  # no call yet: the panel stays as it is
    session = CallSession(fake_engines(), SessionOptions(background=False, use_llm=False))
    registry.add("call-1", "1001", "siprec", session)
    registry.add("call-2", "2002", "siprec", CallSession(fake_engines()))
    attached = follow(registry, "1001", None, STEPS, PACE)
    assert isinstance(attached, FollowedCall) and attached.session is session
    assert "1001" in attached.info.source
    assert follow(registry, "1001", attached, STEPS, PACE) is None  # already shown
    session.add_segment(Segment("customer", 0.0, 2.0, "我家洗衣机不脱水了"))
    assert "洗衣机" in attached.view().transcript
    registry.add("call-3", "1001", "media-stream", CallSession(fake_engines()))
    newer = follow(registry, "1001", attached, STEPS, PACE)
    assert newer is not None and newer.entry.call_id == "call-3"


def test_leaving_the_panel_does_not_end_the_phone_call() -> None:
    registry = CallRegistry()
    session = CallSession(fake_engines(), SessionOptions(background=False, use_llm=False))
    registry.add("call-1", "1001", "siprec", session)
    attached = follow(registry, "1001", None, STEPS, PACE)
    assert attached is not None
    attached.stop()
    assert not session.state().finished


def test_the_live_view_has_the_extension_box_and_browser_source_only_with_telephony(tmp_path: Path) -> None:
    from copilot.ui.app import build_app
    from tests.ui_fakes import Engines, app_config

    services = Engines().services()
    store = Store.open(f"sqlite:///{tmp_path / 'copilot.db'}")
    plain = build_app(app_config(), services, store=store, calls_dir=None)  # type: ignore[arg-type]
    config = dataclasses.replace(app_config(), telephony=TelephonyConfig(enabled=True))
    phone_app = build_app(config, services, store=store, calls_dir=None)  # type: ignore[arg-type]
    ids = [getattr(b, "elem_id", None) for b in plain.blocks.values()]
    phone_ids = [getattr(b, "elem_id", None) for b in phone_app.blocks.values()]
    assert "live-extension" not in ids and "live-browser-call" not in ids
    assert "live-extension" in phone_ids and "live-browser-call" in phone_ids
    assert phone_app.copilot_context.telephony is None  # listeners start at launch, not at build
