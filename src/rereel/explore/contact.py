"""The clusters contact page: one self-contained index.html linking every group's grid and video."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from rereel.explore.footage import Footage
from rereel.outputs import write_file


@dataclass
class GroupPage:
    number: int
    image: str  # file names relative to index.html
    video: str | None
    shown: list[Footage]  # the nine in the grid, in grid order
    members: list[Footage]  # every shot of the group, nearest the centroid first
    cohesion: float  # mean cosine of the members to their centroid


STYLE = """
body { background:#111; color:#ddd; font:14px/1.4 system-ui, sans-serif; margin:24px; }
h1 { font-weight:600; } h2 { margin:32px 0 8px; font-weight:600; }
.pair { display:flex; gap:12px; flex-wrap:wrap; align-items:flex-start; }
.pair img, .pair video { width:min(100%, 976px); height:auto; background:#000; }
ol.shots { columns:3; font-size:13px; color:#bbb; } a { color:#8cf; }
details { margin-top:6px; color:#999; } .meta { color:#888; }
nav a { margin-right:10px; }
"""


def _shot_line(f: Footage) -> str:
    uri = Path(f.path).resolve().as_uri() + f"#t={f.start:.2f},{f.end:.2f}"
    return f'<li><a href="{html.escape(uri)}">{html.escape(f.name)}</a> {f.start:.2f}–{f.end:.2f} s <span class="meta">#{f.shot_id}</span></li>'


def write_contact_page(path: Path, groups: list[GroupPage], library: str, summary: str) -> Path:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>rereel clusters</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>What the network sees alike</h1>",
        f"<p class='meta'>library {html.escape(library)} · {html.escape(summary)}</p>",
        "<nav>" + "".join(f"<a href='#g{g.number}'>group {g.number}</a>" for g in groups) + "</nav>",
    ]
    for g in groups:
        parts.append(f"<h2 id='g{g.number}'>Group {g.number} <span class='meta'>· {len(g.members)} shot{'' if len(g.members) == 1 else 's'} · "
                     f"cohesion {g.cohesion:.2f}</span></h2><div class='pair'>")
        parts.append(f"<a href='{html.escape(g.image)}'><img src='{html.escape(g.image)}' alt='group {g.number} grid'></a>")
        if g.video:
            parts.append(f"<video src='{html.escape(g.video)}' controls loop muted autoplay playsinline></video>")
        parts.append("</div><ol class='shots'>" + "".join(_shot_line(f) for f in g.shown) + "</ol>")
        rest = [f for f in g.members if f not in g.shown]
        if rest:
            parts.append(f"<details><summary>{len(rest)} more shots in this group</summary><ol class='shots'>"
                         + "".join(_shot_line(f) for f in rest) + "</ol></details>")
    parts.append("</body></html>")
    return write_file(path, lambda tmp: tmp.write_text("\n".join(parts), encoding="utf-8"))
