"""Load benchmark: N live calls at once in the real app, each replaying a real stereo recording through the
real Whisper model, plus one more call that the app should refuse.

Starts ``python app.py`` (shipped configuration, packaged models from ``COPILOT_HOME``) on a free port, opens
N+1 headless Chromium pages, starts N replays of good_call.wav / bad_call.wav in turn at ``--speed`` x real
time, then asks for one more. Each page records, in the browser, when every committed customer line and
every new suggestion appeared (the panel's ``data-end`` and ``data-script-ms`` attributes tell them apart).
Printed per session and overall:

* line latency: from the scripted end of each customer utterance (the transcript JSON's ``end``, paced from
  the Start click) to the moment the committed line covering it appeared in that page;
* suggestion: from that line appearing to the first new suggestion on the page (and from the scripted end);
* the app process's peak memory (VmHWM), its CPU time, and the machine's load average.

    .venv/bin/python eval/bench_load.py [--sessions 4] [--speed 1] [--llm]

The Start click is taken as the start of the call's clock, so latencies include the start request's
round trip (printed as "start"). Chromium has to run on the same two cores as the app, where an agent's
browser would run on the agent's own machine: its scheduler group and threads are kept at ``--browser-nice``
(default 19) so the app gets the cores first (four pages refreshing every 0.3 s took over a core at equal
priority). A starved page can only see a line late, never early, so this errs toward higher latencies;
``--browser-nice 0`` leaves Chromium's own priorities.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from copilot.config import AppConfig  # noqa: E402
from copilot.evaluation.metrics import percentile  # noqa: E402
from tests.app_process import AppDidNotStart, start_app, stop_app  # noqa: E402

CALLS = REPO.parent / "shared" / "calls"
ARTIFACTS = REPO / "artifacts"  # the app log and a screenshot of each page
ALTERNATING = ("good_call", "bad_call")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    # an agent looks at the panel: no throttling of the page's refresh timer as for a hidden tab
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
START_TIMEOUT = 300.0  # s for the app to answer
SETTLE_SECONDS = 180.0  # s at most for the launch warm-up (models loading) to go quiet
QUIET_CPU = 0.15  # app CPU s per wall s below which the warm-up is taken as done
TAIL_SECONDS = 240.0  # s allowed after the longest call's real end for the last decodes and suggestions
PAGE_MS = 120_000

# Runs in every page before Gradio: logs when each committed customer line and each new suggestion showed.
RECORDER = """
(() => {
  const log = {clicked: null, started: null, finished: null, lines: {}, suggestions: []};
  window.__cpLoad = log;
  let last = null;
  const scan = () => {
    const now = Date.now();
    const status = document.querySelector('#live-status .cp-status');
    if (status && log.clicked !== null) {
      if (log.started === null && !status.classList.contains('cp-idle')) log.started = now;
      if (log.finished === null && status.dataset.finished === 'true') log.finished = now;
    }
    const box = document.querySelector('#live-suggestion .cp-suggestion');
    const sig = box && box.dataset.scriptMs ? box.dataset.scriptMs : null;
    const lines = document.querySelectorAll('#live-transcript .cp-seg.cp-customer:not(.cp-tentative)');
    for (const el of lines) {
      const key = el.dataset.start + '/' + el.dataset.end;
      if (!(key in log.lines)) {
        const text = el.querySelector('.cp-text');
        log.lines[key] = {start: Number(el.dataset.start), end: Number(el.dataset.end),
                          text: text ? text.textContent : '', seen: now, before: last};
      }
    }
    const token = box && box.dataset.firstTokenMs ? 1 : 0;
    const mark = sig + '|' + token;
    if (sig !== null && mark !== (log.suggestions.length ? log.suggestions.at(-1).mark : null)) {
      log.suggestions.push({t: now, sig, mark, token, state: box.dataset.state});
    }
    last = sig;
  };
  new MutationObserver(scan).observe(document, {subtree: true, childList: true, characterData: true,
                                                attributes: true});
  document.addEventListener('click', (e) => {
    if (e.target.closest && e.target.closest('#live-start')) log.clicked = Date.now();
  }, true);
})();
"""


@dataclass
class Session:
    number: int
    call: str  # "good_call" / "bad_call"
    page: Any
    log: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One scripted customer utterance and what the page showed for it (ms; None when never seen)."""

    end: float
    line_ms: float | None
    suggestion_ms: float | None  # after the line appeared
    token_ms: float | None  # the LLM's first words shown, after the line appeared
    text: str


# --- the app process -------------------------------------------------------------------------------------


def proc_status(pid: int, key: str) -> float:
    """A /proc/PID/status figure in MB (VmHWM = peak resident memory, VmRSS = now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_bench_app(home: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The app with the shipped configuration and its own database; exits the benchmark if it does not start."""
    env = {k: v for k, v in os.environ.items() if k != "COPILOT_CONFIG"}  # the shipped configuration
    env.update(COPILOT_DB=f"sqlite:///{home / 'copilot.db'}", PYTHONUNBUFFERED="1")
    log = home / "app.log"
    try:
        process, url = start_app(env, log, START_TIMEOUT)
    except AppDidNotStart as e:
        sys.exit(str(e))
    return process, url, log


def settle(pid: int) -> float:
    """Wait until the launch warm-up (models loading) has gone quiet; the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < SETTLE_SECONDS:
        time.sleep(3.0)
        now = cpu_seconds(pid)
        if (now - before) / 3.0 < QUIET_CPU:
            break
        before = now
    return time.monotonic() - started


class Sampler(threading.Thread):
    """The machine's 1-minute load average and the app's resident memory, once a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.load: list[float] = []
        self.rss: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.load.append(os.getloadavg()[0])
            try:
                self.rss.append(proc_status(self.pid, "VmRSS"))
            except OSError:
                return


# --- the pages ---------------------------------------------------------------------------------------------


def choose(page: Any, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option, exact=True).click()


def prepare(page: Any, call: str, speed: int, llm: bool) -> None:
    choose(page, "#live-example", f"{call}.wav (stereo recording)")
    page.locator("#live-speed").get_by_label(f"{speed}x", exact=True).check()
    box = page.locator("#live-llm input[type=checkbox]")
    if box.is_checked() != llm:
        box.click()


def open_page(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport={"width": 480, "height": 1400})
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#live-start", timeout=PAGE_MS)
    return page


def wait_all(sessions: list[Session], deadline: float) -> None:
    from playwright.sync_api import TimeoutError as PageTimeout

    for session in sessions:
        left = max(1.0, deadline - time.monotonic())
        with contextlib.suppress(PageTimeout):  # an unfinished call is reported, not raised
            session.page.wait_for_selector(
                '#live-status .cp-status[data-finished="true"]', timeout=int(left * 1000)
            )


# --- the figures -------------------------------------------------------------------------------------------


def script(call: str) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = json.loads((CALLS / f"{call}.json").read_text(encoding="utf-8"))[
        "segments"
    ]
    return segments


def customer_turns(call: str) -> list[dict[str, Any]]:
    return [s for s in script(call) if s["role"] == "customer"]


def call_length(call: str) -> float:
    return max(s["end"] for s in script(call))


def turns_of(session: Session, speed: int) -> list[Turn]:
    log = session.log
    clicked = log["clicked"]
    lines = list(log["lines"].values())
    suggestions = log["suggestions"]
    turns = []
    for scripted in customer_turns(session.call):
        # the committed line(s) the VAD cut around this utterance; the last piece completes it
        covering = [
            line
            for line in lines
            if min(line["end"], scripted["end"]) - max(line["start"], scripted["start"]) > 0
        ]
        if not covering:
            turns.append(Turn(scripted["end"], None, None, None, "(never committed)"))
            continue
        line = max(covering, key=lambda item: item["end"])
        due = clicked + scripted["end"] * 1000 / speed
        later = [s for s in suggestions if s["t"] >= line["seen"] and s["sig"] != line["before"]]
        shown = later[0]["t"] - line["seen"] if later else None
        tokens = [s for s in later if s["token"] and s["sig"] == later[0]["sig"]] if later else []
        token = tokens[0]["t"] - line["seen"] if tokens else None
        turns.append(Turn(scripted["end"], line["seen"] - due, shown, token, line["text"]))
    return turns


def spread(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "n=0"
    return (
        f"n={len(seen):<2} p50 {percentile(seen, 0.50):6.0f}  p95 {percentile(seen, 0.95):6.0f}  "
        f"max {max(seen):6.0f} ms"
    )


def ms(value: float | None) -> str:
    return f"{value:7.0f}" if value is not None else "      —"


def report_session(session: Session, turns: list[Turn], speed: int, llm: bool) -> None:
    log = session.log
    length = call_length(session.call)
    start = log["started"] - log["clicked"] if log["started"] else None
    finished = (log["finished"] - log["clicked"]) / 1000 if log["finished"] else None
    end = f"finished {finished:.1f} s after Start" if finished is not None else "NOT FINISHED"
    print(
        f"\nsession {session.number}: {session.call}.wav at {speed}x "
        f"(script ends {length / speed:.1f} s after Start; {end}; start {ms(start).strip()} ms)"
    )
    head = "  script end   line ms   sugg ms" + ("  words ms" if llm else "") + "  committed text"
    print(head)
    for turn in turns:
        words = f"  {ms(turn.token_ms)} " if llm else ""
        print(f"  {turn.end:9.2f}s  {ms(turn.line_ms)}   {ms(turn.suggestion_ms)}{words}  {turn.text[:28]}")
    print(f"  line latency          {spread([t.line_ms for t in turns])}")
    print(f"  suggestion after line {spread([t.suggestion_ms for t in turns])}")


def summary(all_turns: list[Turn], llm: bool) -> None:
    print("\noverall (every scripted customer utterance of every session)")
    missed = sum(t.line_ms is None for t in all_turns)
    print(f"  utterances            {len(all_turns)} ({missed} never committed)")
    print(f"  line latency          {spread([t.line_ms for t in all_turns])}")
    print(f"  suggestion after line {spread([t.suggestion_ms for t in all_turns])}")
    totals = [
        t.line_ms + t.suggestion_ms
        for t in all_turns
        if t.line_ms is not None and t.suggestion_ms is not None
    ]
    print(f"  end -> suggestion     {spread(list(totals))}")
    if llm:
        print(f"  LLM words after line  {spread([t.token_ms for t in all_turns])}")


# --- the run -------------------------------------------------------------------------------------------


class BrowserNicer(threading.Thread):
    """Keeps Chromium at ``niceness``, twice a second: its scheduler group and every thread in it.

    A thread's nice value only weighs against threads of the same autogroup (one per session, when
    ``/proc/sys/kernel/sched_autogroup_enabled`` is 1), and Playwright starts Chromium in a session of its
    own: niced threads alone still took half the cores from the app (its decoder threads were runnable and
    preempted, measured). So the group's own nice is set through ``/proc/PID/autogroup`` as well. Chromium
    also resets its threads' priorities (browser process -8, pages 0), hence the renice of each thread.
    """

    def __init__(self, niceness: int) -> None:
        super().__init__(name="browser-nicer", daemon=True)
        self.niceness = niceness
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for process in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError):
                    if not (process / "comm").read_text().startswith("chrom"):
                        continue
                    (process / "autogroup").write_text(str(self.niceness))
                    for task in (process / "task").iterdir():
                        os.setpriority(os.PRIO_PROCESS, int(task.name), self.niceness)


def run(sessions_wanted: int, speed: int, llm: bool, browser_nice: int = 19) -> int:
    from playwright.sync_api import sync_playwright

    limit = AppConfig().max_live_sessions
    with tempfile.TemporaryDirectory(prefix="bench_load_") as folder:
        clock = time.monotonic()
        process, url, app_log = start_bench_app(Path(folder))
        try:
            print(f"app up in {time.monotonic() - clock:.0f} s (pid {process.pid}, live-call limit {limit})")
            print(f"warm-up settled after {settle(process.pid):.0f} s more")
            sampler = Sampler(process.pid)
            with sync_playwright() as playwright:
                nicer = BrowserNicer(browser_nice)
                if browser_nice:
                    nicer.start()
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                calls = [ALTERNATING[i % 2] for i in range(sessions_wanted)]
                sessions = [Session(i + 1, c, open_page(browser, url)) for i, c in enumerate(calls)]
                extra = open_page(browser, url)
                for session in sessions:
                    prepare(session.page, session.call, speed, llm)
                prepare(extra, "good_call", speed, llm)
                cpu_before, load_before = cpu_seconds(process.pid), os.getloadavg()[0]
                sampler.start()
                began = time.monotonic()
                for session in sessions:
                    session.page.click("#live-start")
                for session in sessions:
                    session.page.wait_for_selector("#live-status .cp-status:not(.cp-idle)", timeout=PAGE_MS)
                extra.click("#live-start")
                refused = refusal(extra)
                longest = max(call_length(c) for c in calls) / speed
                wait_all(sessions, began + longest + TAIL_SECONDS)
                wall = time.monotonic() - began
                sampler.done.set()
                ARTIFACTS.mkdir(exist_ok=True)
                for session in sessions:
                    session.log = session.page.evaluate("window.__cpLoad")
                    session.page.screenshot(
                        path=str(ARTIFACTS / f"bench_load_{session.number}.png"), full_page=True
                    )
                extra.screenshot(path=str(ARTIFACTS / "bench_load_extra.png"), full_page=True)
                cpu = cpu_seconds(process.pid) - cpu_before
                peak = proc_status(process.pid, "VmHWM")
                browser.close()
                nicer.done.set()
            all_turns: list[Turn] = []
            print(
                f"\n{sessions_wanted} sessions at {speed}x, LLM {'on' if llm else 'off'}, browser nice {browser_nice}; "
                f"latencies in ms (line: scripted end -> committed line shown; sugg: line -> new suggestion)"
            )
            for session in sessions:
                turns = turns_of(session, speed)
                report_session(session, turns, speed, llm)
                all_turns += turns
            summary(all_turns, llm)
            expected = sessions_wanted >= limit
            verdict = "yes" if refused == expected else "NO"
            print(
                f"\nextra session ({sessions_wanted + 1}th): {'refused' if refused else 'accepted'}"
                f" (limit {limit}; as expected: {verdict})"
            )
            print(
                f"app peak RSS (VmHWM)   {peak:.0f} MB; RSS during the calls max {max(sampler.rss, default=math.nan):.0f} MB"
            )
            print(
                f"app CPU                {cpu:.0f} s over {wall:.0f} s wall ({cpu / wall:.2f} cores of {os.cpu_count()})"
            )
            loads = sampler.load or [math.nan]
            print(
                f"load average (1 min)   before {load_before:.2f}, max {max(loads):.2f}, "
                f"at end {loads[-1]:.2f}; now {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            unfinished = sum(not s.log.get("finished") for s in sessions)
            return 1 if unfinished or refused != expected else 0
        finally:
            stop_app(process)
            text = app_log.read_text(errors="replace")
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "bench_load_app.log").write_text(text)
            if "Traceback" in text:  # a crash in the app is part of the result
                print(f"\napp log ({text.count('Traceback')} traceback(s)), last lines:", file=sys.stderr)
                print("\n".join(text.splitlines()[-30:]), file=sys.stderr)


def refusal(page: Any) -> bool:
    """True when the page got the polite "all places in use" message instead of a call."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_selector(
            "#live-message .cp-message, #live-status .cp-status:not(.cp-idle)", timeout=PAGE_MS
        )
    except PageTimeout:
        return False
    return "live-call places are in use" in page.inner_text("#live-message")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4, help="live calls at once (default 4)")
    parser.add_argument("--speed", type=int, default=1, choices=[1, 2, 4, 8], help="x real time (default 1)")
    parser.add_argument("--llm", action="store_true", help="LLM rewrite on (default: handbook script only)")
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=19,
        choices=range(20),
        metavar="0-19",
        help="niceness of the Chromium pages (default 19: the app first, as if browsers ran elsewhere)",
    )
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    return run(args.sessions, args.speed, args.llm, args.browser_nice)


if __name__ == "__main__":
    sys.exit(main())
