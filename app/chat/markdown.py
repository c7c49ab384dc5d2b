"""Markdown to the HTML subset QTextBrowser renders, with highlighted code blocks.

Each fenced code block gets a "Copy" link (``copy-code:<message>:<n>``); the block
texts are returned alongside the HTML so the view can put them on the clipboard.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

CODE_STYLES = {"light": "friendly", "dark": "monokai"}


@dataclass
class Rendered:
    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    def __init__(self, theme: str = "light"):
        self.theme = theme
        self._formatter = HtmlFormatter(noclasses=True, nowrap=True, style=CODE_STYLES[theme])
        self._md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
        # markdown-it binds rules to its renderer, so pass a plain function
        def fence(_renderer, tokens, idx, options, env):
            return self._render_fence(tokens, idx, env)

        self._md.add_render_rule("fence", fence)
        self._md.add_render_rule("code_block", fence)

    def render(self, text: str, message_key: str = "") -> Rendered:
        env = {"code_blocks": [], "key": message_key}
        body = self._md.render(text, env)
        return Rendered(body, env["code_blocks"])

    def _render_fence(self, tokens, idx, env):
        token = tokens[idx]
        code = token.content
        lang = (token.info or "").strip().split(" ")[0]
        blocks = env["code_blocks"]
        n = len(blocks)
        blocks.append(code)
        body = self._highlight(code, lang)
        bg = "#f4f5f7" if self.theme == "light" else "#1e1f24"
        edge = "#d8dbe0" if self.theme == "light" else "#3a3d45"
        label = html.escape(lang or "code")
        return (f'<table width="100%" cellspacing="0" cellpadding="6" '
                f'style="background-color:{bg}; border: 1px solid {edge}; margin-top:4px; margin-bottom:4px">'
                f'<tr><td><span style="font-size:small; color:#888">{label}</span>'
                f'&nbsp;&nbsp;<a href="copy-code:{env["key"]}:{n}" style="font-size:small">Copy code</a></td></tr>'
                f'<tr><td><pre style="font-family:monospace">{body}</pre></td></tr></table>')

    def _highlight(self, code: str, lang: str) -> str:
        try:
            lexer = get_lexer_by_name(lang) if lang else None
        except ClassNotFound:
            lexer = None
        if lexer is None:
            if not lang and len(code) > 40:
                try:
                    lexer = guess_lexer(code)
                except ClassNotFound:
                    lexer = None
            if lexer is None:
                return html.escape(code)
        return highlight(code, lexer, self._formatter).rstrip("\n")
