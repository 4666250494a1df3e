"""The page skeleton shared by the call report and the batch dashboard; every text goes through ``esc``."""

from __future__ import annotations

import html

STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:1100px}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f4f4f4}.pass{color:#176f2c;font-weight:bold}.fail{color:#b3261e;font-weight:bold}
.meta{color:#555}.score{font-size:2.2em;font-weight:bold}.quote{color:#444;font-style:italic}
.agent{background:#eef4ff}.customer{background:#fff6e8}.unknown{background:#f3f3f3}
.sev-critical,.sev-major{color:#b3261e;font-weight:bold}.sev-minor{color:#a15c00}
img.plot{max-width:100%;height:auto;display:block;margin:.5em 0}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A self-contained UTF-8 HTML document: inline CSS, plots embedded as data URIs."""
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def mmss(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60:d}:{whole % 60:02d}"


def table(headers: list[str], rows: list[list[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (the caller escaped them already)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
