"""Benchmark: live calls from the phone system, 1 and 4 SIPREC calls at once, sent by SIPp in real time.

Run from the repository root (models installed, SIPp from the Debian package sip-tester):

    .venv/bin/python eval/bench_siprec.py [--calls 1 4] [--call bad_call]

Each call is a stereo recording of ../shared/calls turned into two RTP legs (G.711 μ-law, tests/sipp_tools.py)
and sent by its own SIPp process as a SIPREC session to one ``TelephonyService`` with the real engines (the
process of ``copilot listen``). For every committed utterance the latency is the time from the end of the
utterance on the call clock to its commit (``PhoneCall.lags``: the jitter buffer, the VAD's end-of-utterance
silence and the decode). Issue #23's targets: p50 <= 0.8 s, p95 <= 1.5 s with four calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from copilot.config import load_config, shared_dir  # noqa: E402
from copilot.evaluation.metrics import percentile  # noqa: E402
from copilot.qa.store import Store  # noqa: E402
from copilot.session.engines import Services  # noqa: E402
from copilot.session.telephony.service import TelephonyService  # noqa: E402
from tests import sipp_tools as sipp  # noqa: E402

END_MARGIN_SECONDS = 1.5  # BYE this long after the last packet is due


def run_calls(service: TelephonyService, port: int, count: int, call: Path, workdir: Path) -> list[dict]:
    """``count`` SIPREC calls at once; the call-stored events they gave."""
    before = len([e for e in service_events if e["event"] in ("call-stored", "call-failed")])
    duration = sipp.write_capture(sipp.legs_of(call), workdir / "call.pcap")
    results: list[subprocess.CompletedProcess[str]] = []
    threads = []
    for n in range(count):
        scenario = sipp.recording_session(
            workdir / f"call{n}.xml",
            workdir / "call.pcap",
            extension=str(1001 + n),
            first_pause_ms=5000,
            rest_pause_ms=int((duration + END_MARGIN_SECONDS) * 1000) - 5000,
        )
        media_port = 20000 + 10 * n  # SIPp plays to P and P+2 from its media ports
        thread = threading.Thread(
            target=lambda s=scenario, m=media_port: results.append(
                sipp.run_sipp(s, port, media_port=m, timeout=duration + 120, workdir=workdir)
            )
        )
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results if r.returncode != 0]
    if failed:
        raise SystemExit(f"SIPp failed: {failed[0].stdout[-1500:]}")
    return sipp.stored_events(service_events, before + count, timeout=300)[before:]


service_events: list[dict] = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 4], help="calls at once, one run each")
    parser.add_argument(
        "--call", default="bad_call", help="a stereo call of ../shared/calls (default bad_call)"
    )
    parser.add_argument("--config", help="TOML configuration")
    args = parser.parse_args()
    config = load_config(args.config)
    telephony = dataclasses.replace(
        config.telephony, sip_port=sipp.free_port(), media_stream_port=0, max_calls=max(args.calls)
    )
    config = dataclasses.replace(config, telephony=telephony)
    services = Services(config)
    services.suggester.warm()
    _ = services.live_transcriber
    recording = shared_dir() / "calls" / f"{args.call}.wav"
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        store = Store.open(f"sqlite:///{workdir / 'bench.db'}")
        service = TelephonyService(config, services, lambda: store, on_event=service_events.append)
        service.start()
        rows = []
        try:
            for count in args.calls:
                started = time.monotonic()
                stored = run_calls(service, telephony.sip_port, count, recording, workdir)
                lags = [lag for e in stored for lag in e.get("commit_lags", [])]
                rows.append(
                    (
                        count,
                        len(lags),
                        percentile(lags, 0.5),
                        percentile(lags, 0.95),
                        max(lags),
                        time.monotonic() - started,
                    )
                )
        finally:
            service.stop()
            store.close()
    print(
        f"SIPREC calls of {args.call} ({recording.name}), real time, committed-text latency after each turn"
    )
    print("| calls at once | utterances | p50 s | p95 s | max s | wall s |")
    print("|---|---|---|---|---|---|")
    for count, n, p50, p95, worst, wall in rows:
        print(f"| {count} | {n} | {p50:.2f} | {p95:.2f} | {worst:.2f} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
