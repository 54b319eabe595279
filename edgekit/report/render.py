"""Render report blocks as markdown (CI job summaries) and one self-contained HTML page.

The HTML has no scripts and no external resources: styles are inline and every plot is an
inline base64 PNG, so the file can be attached to a CI run and opened anywhere offline.
"""
from __future__ import annotations

import base64
import html

from edgekit.report.blocks import Details, Figure, Figures, KeyValues, Paragraph, Report, Table

_ICON = {"warn": "⚠️ ", "ok": "✅ ", "note": "ℹ️ "}


# -- markdown ------------------------------------------------------------------------------
def to_markdown(report: Report) -> str:
    """GitHub-flavoured markdown; plots are named and left to report.html."""
    out = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    if report.cards:
        out += ["| " + " | ".join(label for label, _, _ in report.cards) + " |",
                "|" + "---|" * len(report.cards),
                "| " + " | ".join(_md_card(v, k) for _, v, k in report.cards) + " |", ""]
    for s in report.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            out += _md_block(b) + [""]
    out.append("_Plots: see report.html (self-contained) beside this file._")
    return "\n".join(out).rstrip() + "\n"


def _md_card(value: str, kind: str) -> str:
    return {"pass": f"✅ {value}", "fail": f"❌ {value}"}.get(kind, value)


def _md_block(b) -> list[str]:
    if isinstance(b, Paragraph):
        return [_ICON.get(b.kind, "") + b.text]
    if isinstance(b, KeyValues):
        return [f"- **{k}**: {_md_cell(v)}" for k, v in b.items]
    if isinstance(b, Table):
        return _md_table(b)
    if isinstance(b, Details):
        return [f"<details><summary>{html.escape(b.summary)}</summary>", ""] + _md_table(b.table) + ["", "</details>"]
    if isinstance(b, Figure):
        return [f"_Figure: {b.title} (in report.html)_"]
    if isinstance(b, Figures):
        return [f"_Figures: {', '.join(f.title for f in b.figures)} (in report.html)_"]
    return []


def _md_table(t: Table) -> list[str]:
    sep = ["---:" if a == "r" else "---" for a in t.aligns()]
    lines = ["| " + " | ".join(_md_cell(c) for c in t.columns) + " |", "|" + "|".join(sep) + "|"]
    for i, row in enumerate(t.rows):
        mark = (t.highlight or [""] * len(t.rows))[i]
        cells = [_md_cell(c) for c in row]
        if mark == "fail":
            cells = [f"**{c}**" if c else c for c in cells]
            cells[0] = "❌ " + cells[0]
        elif mark == "best":
            cells[0] = "⭐ " + cells[0]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _md_cell(v: str) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


# -- HTML ----------------------------------------------------------------------------------
CSS = """
:root { --fg:#1d232b; --muted:#5b6573; --line:#dde2e8; --bg:#ffffff; --panel:#f5f7fa; --accent:#1f6feb;
        --pass:#1a7f37; --passbg:#e6f4ea; --fail:#cf222e; --failbg:#fdecee; --best:#fff6d6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#16202c; color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header .sub { color:#b8c4d2; font-size:13px; }
nav { padding:8px 32px; background:var(--panel); border-bottom:1px solid var(--line); font-size:13px; }
nav a { color:var(--accent); margin-right:16px; text-decoration:none; }
main { padding:8px 32px 40px; max-width:1600px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:18px 0 6px; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:150px; background:var(--panel); }
.card .label { color:var(--muted); font-size:12px; }
.card .value { font-size:20px; font-weight:600; }
.card.pass { background:var(--passbg); border-color:#b7dfc2; } .card.pass .value { color:var(--pass); }
.card.fail { background:var(--failbg); border-color:#f1b8bd; } .card.fail .value { color:var(--fail); }
section { margin-top:26px; }
h2 { font-size:19px; border-bottom:2px solid var(--line); padding-bottom:4px; margin:0 0 12px; }
p { margin:8px 0; }
p.warn { background:var(--failbg); border-left:4px solid var(--fail); padding:8px 12px; }
p.ok { background:var(--passbg); border-left:4px solid var(--pass); padding:8px 12px; }
p.note { color:var(--muted); font-style:italic; }
table { border-collapse:collapse; margin:10px 0; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; white-space:nowrap; vertical-align:top; }
th { white-space:normal; }
td.wrap { white-space:normal; min-width:6.5em; overflow-wrap:anywhere; }
.tw { overflow-x:auto; max-width:100%; }
th { background:var(--panel); text-align:left; font-weight:600; }
td.r, th.r { text-align:right; }
tr.pass td:first-child { border-left:4px solid var(--pass); }
tr.fail td { background:var(--failbg); color:var(--fail); font-weight:600; }
tr.best td { background:var(--best); }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:2px 18px; margin:8px 0; }
dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; }
figure { margin:12px 0; } figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
figcaption { color:var(--muted); font-size:12px; }
.figs { display:grid; grid-template-columns:repeat(auto-fit, minmax(520px, 1fr)); gap:16px; }
.figs figure { margin:0; }
details { margin:8px 0; } summary { cursor:pointer; color:var(--accent); }
.result-PASS { color:var(--pass); font-weight:600; } .result-FAIL { color:var(--fail); font-weight:700; }
footer { color:var(--muted); font-size:12px; padding:12px 32px 24px; border-top:1px solid var(--line); }
"""


def to_html(report: Report) -> str:
    """One self-contained HTML page (inline CSS and base64 PNGs; no scripts, no external URLs)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(report.title)} · {e(report.subtitle)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<header><h1>{e(report.title)}</h1><div class=\"sub\">{e(report.subtitle)}</div></header>",
             "<nav>" + "".join(f'<a href="#{e(s.anchor)}">{e(s.title)}</a>' for s in report.sections) + "</nav>",
             "<main>"]
    if report.cards:
        parts.append('<div class="cards">' + "".join(
            f'<div class="card {e(kind)}"><div class="label">{e(label)}</div><div class="value">{e(value)}</div></div>'
            for label, value, kind in report.cards) + "</div>")
    for s in report.sections:
        parts.append(f'<section id="{e(s.anchor)}"><h2>{e(s.title)}</h2>')
        parts += [_html_block(b) for b in s.blocks]
        parts.append("</section>")
    version = report.meta.get("edgekit_version") or "?"
    parts += ["</main>", f"<footer>Generated by edgekit {e(str(version))} from {e(str(report.meta.get('manifest', '')))}."
              "</footer>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_block(b) -> str:
    e = html.escape
    if isinstance(b, Paragraph):
        return f'<p class="{e(b.kind)}">{e(b.text)}</p>' if b.kind else f"<p>{e(b.text)}</p>"
    if isinstance(b, KeyValues):
        return '<dl class="kv">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in b.items) + "</dl>"
    if isinstance(b, Table):
        return _html_table(b)
    if isinstance(b, Details):
        return f"<details><summary>{e(b.summary)}</summary>{_html_table(b.table)}</details>"
    if isinstance(b, Figure):
        return _html_figure(b)
    if isinstance(b, Figures):
        return '<div class="figs">' + "".join(_html_figure(f) for f in b.figures) + "</div>"
    return ""


def _html_table(t: Table) -> str:
    e = html.escape
    al = t.aligns()
    head = "".join(f'<th class="{a}">{e(c)}</th>' for c, a in zip(t.columns, al))
    rows = []
    marks = t.highlight or [""] * len(t.rows)
    for row, mark in zip(t.rows, marks):
        cells = []
        for c, a in zip(row, al):
            cls = a + (f" result-{c}" if c in ("PASS", "FAIL") else "") + (" wrap" if len(c) > 16 else "")
            cells.append(f'<td class="{cls}">{e(c)}</td>')
        rows.append(f'<tr class="{e(mark)}">' + "".join(cells) + "</tr>")
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _html_figure(f: Figure) -> str:
    e = html.escape
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(f.alt)}">'
            f"<figcaption>{e(f.alt)}</figcaption></figure>")
