"""One message as HTML for the chat view: header, body, and its action links.

Links use small URL schemes the view handles itself: ``copy-msg:<id>``,
``copy-code:<id>:<n>``, ``edit:<id>``, ``regen:<id>``, ``continue:<id>``,
``sibling:<id>:<-1|1>``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from app.chat.markdown import MarkdownRenderer, Rendered

PALETTES = {
    "light": {"user_bg": "#eef3fb", "bot_bg": "#ffffff", "muted": "#6b7280", "error": "#b42318",
              "marker": "#b45309", "link": "#2563eb"},
    "dark": {"user_bg": "#25303f", "bot_bg": "#1b1c20", "muted": "#9ca3af", "error": "#f97066",
             "marker": "#fbbf24", "link": "#7aa2f7"},
}


@dataclass
class MessageView:
    """What the view needs to draw one message; built from the chat store's rows."""

    id: str
    role: str                       # "user" | "assistant"
    content: str
    state: str = "complete"         # "complete" | "streaming" | "interrupted" | "truncated" | "error"
    meta: str = ""                  # "SmolLM2 · 162 tok/s · first token 0.12 s"
    sibling_index: int = 0          # 0-based position among alternatives
    sibling_count: int = 1
    error: str = ""
    note: str = ""                  # why a "truncated" reply ended


def render_message(msg: MessageView, md: MarkdownRenderer) -> Rendered:
    pal = PALETTES[md.theme]
    who = "You" if msg.role == "user" else "Assistant"
    bg = pal["user_bg"] if msg.role == "user" else pal["bot_bg"]
    if msg.role == "user":
        body = Rendered("<p>" + html.escape(msg.content).replace("\n", "<br>") + "</p>")
    else:
        body = md.render(msg.content, msg.id)
    links = _action_links(msg)
    head = f'<b>{who}</b>'
    if msg.meta:
        head += f'&nbsp;&nbsp;<span style="color:{pal["muted"]}; font-size:small">{html.escape(msg.meta)}</span>'
    tail = ""
    if msg.state == "streaming" and not msg.content:
        tail = f'<p style="color:{pal["muted"]}">…</p>'
    elif msg.state in ("interrupted", "truncated"):
        why = msg.note if msg.state == "truncated" and msg.note else "Reply stopped before the end."
        tail = (f'<p style="color:{pal["muted"]}; font-size:small">{html.escape(why)} '
                f'<a href="continue:{msg.id}">Continue</a></p>')
    if msg.error:
        tail += (f'<p style="color:{pal["error"]}"><b>Error:</b> {html.escape(msg.error)}</p>')
    footer = f'<p style="font-size:small">{links}</p>' if links and msg.state != "streaming" else ""
    out = (f'<table width="100%" cellspacing="0" cellpadding="10" style="background-color:{bg}; margin-bottom:6px">'
           f'<tr><td>{head}{body.html}{tail}{footer}</td></tr></table>')
    return Rendered(out, body.code_blocks)


def _action_links(msg: MessageView) -> str:
    parts = []
    if msg.sibling_count > 1:
        parts.append(f'<a href="sibling:{msg.id}:-1">&lt;</a> {msg.sibling_index + 1}/{msg.sibling_count} '
                     f'<a href="sibling:{msg.id}:1">&gt;</a>')
    if msg.content:
        parts.append(f'<a href="copy-msg:{msg.id}">Copy</a>')
    if msg.role == "user":
        parts.append(f'<a href="edit:{msg.id}">Edit</a>')
    else:
        parts.append(f'<a href="regen:{msg.id}">Regenerate</a>')
    return "&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts)


def render_memory_marker(n_dropped: int, theme: str) -> str:
    pal = PALETTES[theme]
    text = html.escape(memory_marker_text(n_dropped))
    return f'<p align="center" style="color:{pal["marker"]}; font-size:small">── {text} ──</p>'


def memory_marker_text(n_dropped: int) -> str:
    """The marker's plain text, as tests and screen readers see it."""
    turns = "message" if n_dropped == 1 else "messages"
    return f"The model's memory begins here: {n_dropped} earlier {turns} no longer fit in the context window"


def stats_line(model: str, stats) -> str:
    """'SmolLM2-135M · 162 tok/s · first token 0.12 s · 96 tokens' from engine ReplyStats."""
    parts = [model] if model else []
    if stats is None:
        return " · ".join(parts)
    if getattr(stats, "gen_tps", None):
        parts.append(f"{stats.gen_tps:.0f} tok/s")
    if getattr(stats, "ttft_s", None) is not None:
        parts.append(f"first token {stats.ttft_s:.2f} s")
    if getattr(stats, "gen_tokens", 0):
        parts.append(f"{stats.gen_tokens} tokens")
    return " · ".join(parts)
