"""Soak benchmark: the app's resident memory over time while live calls are replayed, one after another.

Starts ``python app.py`` as the README does (shipped configuration, its own database), and measures:

* the time until the page answers, and the app's RSS then;
* on the fresh app, right after it answers: the time from pressing Start on a replay to the first
  transcript line on the page (the issue's bound: 20 s);
* then ``--sessions`` headless Chromium pages that replay good_call.wav / bad_call.wav in turn, each
  starting its next call as soon as the last one finished, for ``--minutes``; the app's RSS (VmRSS),
  sampled every ``--every`` s, printed as it goes, with the number of calls finished so far;
* at the end: RSS once it answered, after the first four finished calls, and min / max / last over the
  soak, and the growth from the first to the last quarter of the samples.

    .venv/bin/python eval/bench_soak.py                       # an hour, 4 pages, 4x real time, LLM on
    .venv/bin/python eval/bench_soak.py --minutes 10 --speed 8   # a shorter run
    .venv/bin/python eval/bench_soak.py --minutes 0            # start-up only: RSS and the first line

Chromium runs on the same machine; as in ``eval/bench_load.py`` its processes are kept at nice 19 so the
app gets the cores first (an agent's browser runs on the agent's own PC).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "eval"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_load import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    BrowserNicer,
    choose,
    prepare,
    proc_status,
    start_bench_app,
)

from tests.app_process import stop_app  # noqa: E402

CALLS = ("good_call", "bad_call")
PAGE_MS = 120_000
FIRST_LINE_MS = 180_000  # the first line is timed, not required: wait this long before giving up
LINE = "#live-transcript .cp-seg:not(.cp-tentative)"
FINISHED = '#live-status .cp-status[data-finished="true"]'
POLL_SECONDS = 1.0
FIRST_CALLS = 4  # "after four replayed calls"


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 480, "height": 1000}).new_page()
    page.goto(url, timeout=PAGE_MS)
    page.wait_for_selector("#live-start", timeout=PAGE_MS)
    return page


def start_call(page: Any, call: str, speed: int, llm: bool) -> None:
    prepare(page, call, speed, llm)
    page.click("#live-start")


def first_line_seconds(page: Any) -> float:
    """Seconds from pressing Start (already set up) to the first committed transcript line shown."""
    from playwright.sync_api import TimeoutError as PageTimeout

    clicked = time.monotonic()
    page.click("#live-start")
    try:
        page.wait_for_selector(LINE, timeout=FIRST_LINE_MS)
    except PageTimeout:
        return math.nan
    return time.monotonic() - clicked


def mb(value: float) -> str:
    return f"{value:6.0f} MB" if not math.isnan(value) else "     — "


def soak(minutes: float, sessions: int, speed: int, llm: bool, every: float, browser_nice: int) -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench_soak_") as folder:
        began = time.monotonic()
        process, url, app_log = start_bench_app(Path(folder))
        pid = process.pid
        try:
            answered = time.monotonic() - began
            rss_answer = proc_status(pid, "VmRSS")
            print(f"app answers after {answered:.0f} s (pid {pid}); RSS {rss_answer:.0f} MB", flush=True)
            with sync_playwright() as playwright:
                nicer = BrowserNicer(browser_nice)
                if browser_nice:
                    nicer.start()
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                first = open_page(browser, url)
                choose(first, "#live-example", f"{CALLS[0]}.wav (stereo recording)")
                first.locator("#live-speed").get_by_label("1x", exact=True).check()
                waited = first_line_seconds(first)
                print(
                    f"fresh app: first line {waited:.1f} s after Start at 1x "
                    f"({time.monotonic() - began:.0f} s after launch); RSS {proc_status(pid, 'VmRSS'):.0f} MB",
                    flush=True,
                )
                first.click("#live-stop")
                samples: list[tuple[float, float, int]] = []
                finished = 0
                after_first: float = math.nan
                if minutes > 0:
                    pages = [first, *(open_page(browser, url) for _ in range(sessions - 1))]
                    turn = [i for i in range(len(pages))]
                    for i, page in enumerate(pages):
                        start_call(page, CALLS[i % 2], speed, llm)
                    running = [True] * len(pages)
                    soak_began = time.monotonic()
                    next_sample = soak_began
                    print(f"\n{'min':>6} {'RSS':>9} {'calls done':>11}", flush=True)
                    while time.monotonic() - soak_began < minutes * 60:
                        for i, page in enumerate(pages):
                            if running[i] and page.locator(FINISHED).count():
                                finished += 1
                                if finished == FIRST_CALLS:
                                    after_first = proc_status(pid, "VmRSS")
                                turn[i] += 1
                                start_call(page, CALLS[turn[i] % 2], speed, llm)
                        if time.monotonic() >= next_sample:
                            rss = proc_status(pid, "VmRSS")
                            at = (time.monotonic() - soak_began) / 60
                            samples.append((at, rss, finished))
                            print(f"{at:6.1f} {rss:6.0f} MB {finished:11d}", flush=True)
                            next_sample += every
                        time.sleep(POLL_SECONDS)
                    ARTIFACTS.mkdir(exist_ok=True)
                    pages[0].screenshot(path=str(ARTIFACTS / "bench_soak_page1.png"), full_page=True)
                browser.close()
                nicer.done.set()
            peak = proc_status(pid, "VmHWM")
            print(f"\nRSS once the app answers        {mb(rss_answer)}")
            print(f"RSS after {FIRST_CALLS} finished calls        {mb(after_first)}")
            if samples:
                values = [rss for _, rss, _ in samples]
                quarter = max(1, len(values) // 4)
                early, late = statistics.mean(values[:quarter]), statistics.mean(values[-quarter:])
                print(
                    f"RSS over {samples[-1][0]:.0f} min of soak     min {min(values):.0f}  max {max(values):.0f}  "
                    f"last {values[-1]:.0f} MB; last quarter - first quarter {late - early:+.0f} MB"
                )
                print(f"calls finished                  {finished} ({sessions} pages at {speed}x)")
            print(f"peak RSS (VmHWM)                {mb(peak)}")
            return 0
        finally:
            stop_app(process)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "bench_soak_app.log").write_text(app_log.read_text(errors="replace"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=60.0, help="soak length (default 60; 0: start-up only)"
    )
    parser.add_argument("--sessions", type=int, default=4, help="pages replaying calls at once (default 4)")
    parser.add_argument("--speed", type=int, default=4, choices=[1, 2, 4, 8], help="x real time (default 4)")
    parser.add_argument(
        "--no-llm", action="store_true", help="handbook scripts only (default: LLM rewrite on)"
    )
    parser.add_argument("--every", type=float, default=30.0, help="s between RSS samples (default 30)")
    parser.add_argument("--browser-nice", type=int, default=19, help="Chromium's niceness (default 19)")
    args = parser.parse_args()
    if args.sessions < 1 or args.minutes < 0 or args.every <= 0:
        parser.error("--sessions >= 1, --minutes >= 0 and --every > 0")
    return soak(args.minutes, args.sessions, args.speed, not args.no_llm, args.every, args.browser_nice)


if __name__ == "__main__":
    sys.exit(main())
