"""``copilot listen``: the SIPREC recording server and media-stream endpoint in the foreground.

Prints one JSON line per event (listening, call-started, call-stored with the review id, failed checks and
flags); each call's review is stored like any other (``copilot store show ID``). Ctrl-C ends the calls in
progress, stores them, and exits; so does SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal

from copilot.commands._common import config_from_args, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="take live calls from the phone system (SIPREC, WebSocket media streams)",
        description="Answer SIPREC recording sessions (RFC 7866) from a PBX or SBC and WebSocket media "
        "streams, transcribe both parties live, flag and suggest as in the Live view, and store each "
        "call's review when it ends. Listens on [telephony] host (127.0.0.1 unless configured).",
    )
    parser.add_argument("--host", help="address to listen on (default [telephony] host)")
    parser.add_argument("--sip-port", type=int, help="SIP port, UDP (default [telephony] sip_port)")
    parser.add_argument(
        "--rtp-ports", help="RTP port range, e.g. 40000-40999 (default [telephony] rtp_ports)"
    )
    parser.add_argument(
        "--media-stream-port", type=int, help="WebSocket media-stream port, 0 = off (default from config)"
    )
    parser.add_argument("--no-llm", action="store_true", help="handbook scripts only, no LLM rewrite")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from copilot.config import validate
    from copilot.qa.store import Store
    from copilot.session.engines import Services
    from copilot.session.telephony.service import TelephonyService

    config = config_from_args(args)
    overrides = {
        "host": args.host,
        "sip_port": args.sip_port,
        "rtp_ports": args.rtp_ports,
        "media_stream_port": args.media_stream_port,
    }
    telephony = dataclasses.replace(config.telephony, **{k: v for k, v in overrides.items() if v is not None})
    config = dataclasses.replace(config, telephony=telephony)
    if args.no_llm:
        config = dataclasses.replace(config, llm=dataclasses.replace(config.llm, enabled=False))
    config = validate(config)
    logging.basicConfig(level=logging.WARNING, format="copilot listen: %(levelname)s %(message)s")
    services = Services(config)
    store = Store.open(config=config.store)
    services.suggester.warm()  # models load before the first call, not during it
    _ = services.rules, services.live_transcriber
    service = TelephonyService(config, services, lambda: store, on_event=print_json)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop stores the calls in progress too
    try:
        asyncio.run(service.serve())
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
