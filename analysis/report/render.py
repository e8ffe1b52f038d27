"""A tiny document model written out twice: self-contained HTML (figures as base64 PNG) and Markdown.

Text may use **bold** and `code`. The HTML marks every <img> once the browser has decoded it
(data-decoded="yes"/"no") and the <body> with data-images="decoded/total", so a headless browser's
--dump-dom shows whether every figure rendered.
"""
from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1150px;margin:24px auto;
padding:0 18px;color:#1d1d1f;line-height:1.45}h1{font-size:1.7em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:2em}h3{margin-top:1.4em}table{border-collapse:collapse;font-size:.86em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}td:first-child,th:first-child
{text-align:left}.tbl{overflow-x:auto;margin:10px 0 16px}.cap{font-weight:600;margin:4px 0}figure{margin:14px 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.88em;color:#555}code{background:#f4f4f4;padding:1px 4px}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:6px 12px}pre{background:#f7f7f7;padding:8px;
overflow-x:auto;font-size:.85em}nav ul{columns:2}"""

SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute('data-decoded', good ? 'yes' : 'no');
    ok += good ? 1 : 0;
  }
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


@dataclass
class Doc:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        self.blocks.append(("note", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, df: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(("table", df, caption))

    def img(self, path: Path, caption: str) -> None:
        self.blocks.append(("img", Path(path), caption))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))


def cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _inline_html(text: str) -> str:
    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def to_markdown(doc: Doc) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        kind = b[0]
        if kind == "h":
            out += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "note":
            out += ["> " + b[1], ""]
        elif kind == "ul":
            out += [f"- {x}" for x in b[1]] + [""]
        elif kind == "pre":
            out += ["```", b[1].rstrip(), "```", ""]
        elif kind == "img":
            out += [f"![{b[2]}]({b[1].name})", "", f"*{b[2]}*", ""]
        elif kind == "table":
            df, cap = b[1], b[2]
            if cap:
                out += [f"**{cap}**", ""]
            cols = [str(c) for c in df.columns]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |")
            out.append("|" + "|".join("---" for _ in cols) + "|")
            for row in df.itertuples(index=False):
                out.append("| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |")
            out.append("")
    return "\n".join(out)


def to_html(doc: Doc) -> str:
    heads = [b[2] for b in doc.blocks if b[0] == "h" and b[1] == 2]
    body = [f"<h1>{_inline_html(doc.title)}</h1>",
            "<nav><ul>" + "".join(f'<li><a href="#{_slug(h)}">{_inline_html(h)}</a></li>' for h in heads) + "</ul></nav>"]
    for b in doc.blocks:
        kind = b[0]
        if kind == "h":
            body.append(f'<h{b[1]} id="{_slug(b[2])}">{_inline_html(b[2])}</h{b[1]}>')
        elif kind == "p":
            body.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "note":
            body.append(f'<p class="note">{_inline_html(b[1])}</p>')
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "img":
            data = base64.b64encode(b[1].read_bytes()).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}" '
                        f'data-file="{html.escape(b[1].name)}"><figcaption>{_inline_html(b[2])}</figcaption></figure>')
        elif kind == "table":
            df, cap = b[1], b[2]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>"
                           for r in df.itertuples(index=False))
            body.append(f'<div class="tbl"><p class="cap">{_inline_html(cap)}</p><table><thead><tr>{head}</tr></thead>'
                        f"<tbody>{rows}</tbody></table></div>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(doc.title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + f"\n{SCRIPT}\n</body></html>\n")
