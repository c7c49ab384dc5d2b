"""Export conversations: lossless JSON (re-importable) and readable Markdown.

JSON keeps the whole tree, every field and every branch; ids in the file are only
references between its own messages (``parent``, ``active_leaf``), while each
conversation's ``uuid`` is its identity everywhere (an import skips one already here).
Markdown shows the active path, one heading per message with role and time, contents
verbatim.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from chat.records import ASSISTANT, COMPLETE, Conversation, Message, when_text

FORMAT = "llamadesk.chats"
FORMAT_VERSION = 1

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def conversation_record(conv: Conversation, messages: list[Message]) -> dict:
    return {
        "uuid": conv.uuid,
        "title": conv.title,
        "title_is_auto": conv.title_is_auto,
        "system_prompt": conv.system_prompt,
        "model": conv.model,
        "pinned": conv.pinned,
        "archived": conv.archived,
        "created": conv.created,
        "updated": conv.updated,
        "active_leaf": conv.active_leaf_id,
        "messages": [message_record(m) for m in messages],
    }


def message_record(msg: Message) -> dict:
    return {
        "id": msg.id,
        "parent": msg.parent_id,
        "role": msg.role,
        "content": msg.content,
        "created": msg.created,
        "updated": msg.updated,
        "model": msg.model,
        "params": msg.params,
        "stats": msg.stats,
        "token_count": msg.token_count,
        "state": msg.state,
    }


def to_json(store, conv_ids: list[int]) -> str:
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "conversations": [conversation_record(store.get(i), store.messages(i)) for i in conv_ids],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def to_markdown(store, conv_ids: list[int]) -> str:
    parts = [conversation_markdown(store, i) for i in conv_ids]
    return "\n---\n\n".join(parts)


def conversation_markdown(store, conv_id: int) -> str:
    conv = store.get(conv_id)
    lines = [f"# {conv.display_title}", ""]
    about = [f"Created {when_text(conv.created)}", f"updated {when_text(conv.updated)}"]
    if conv.model:
        about.append(f"model {conv.model}")
    lines += ["*" + " · ".join(about) + "*", ""]
    if conv.system_prompt:
        lines += ["**System prompt:**", ""]
        lines += ["> " + ln if ln else ">" for ln in conv.system_prompt.splitlines()]
        lines.append("")
    for msg in store.active_path(conv_id):
        lines += [_heading(store, msg), "", close_open_fence(msg.content).rstrip("\n"), ""]
    return "\n".join(lines)


def _heading(store, msg: Message) -> str:
    bits = ["User" if msg.role != ASSISTANT else "Assistant", when_text(msg.created)]
    if msg.role == ASSISTANT and msg.model:
        bits.append(msg.model)
    siblings, index = store.siblings(msg.id)
    if len(siblings) > 1:
        kind = "reply" if msg.role == ASSISTANT else "version"
        bits.append(f"{kind} {index + 1} of {len(siblings)}")
    if msg.state != COMPLETE:
        bits.append(msg.state)
    return "## " + " · ".join(bits)


def close_open_fence(text: str) -> str:
    """Close a code fence left open (a reply cut off mid-code), so the rest of the
    document is not swallowed into the code block."""
    opener = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if not m:
            continue
        fence, rest = m.group(1), m.group(2)
        if opener is None:
            opener = fence
        elif fence[0] == opener[0] and len(fence) >= len(opener) and not rest.strip():
            opener = None
    if opener is None:
        return text
    return text.rstrip("\n") + "\n" + opener + "\n"
