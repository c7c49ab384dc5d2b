"""The keyboard shortcuts, in one table: the window binds them and the README lists them."""
from __future__ import annotations

# (key sequence, action name on MainWindow, what it does)
SHORTCUTS: list[tuple[str, str, str]] = [
    ("Return", "", "Send the message (in the message box)"),
    ("Shift+Return", "", "New line in the message box"),
    ("Escape", "stop_or_cancel", "Stop generating (or leave editing)"),
    ("Ctrl+N", "new_chat", "New chat"),
    ("Ctrl+F", "focus_search", "Search chats"),
    ("Ctrl+,", "open_settings", "Settings"),
    ("Ctrl+L", "focus_composer", "Focus the message box"),
    ("Ctrl+R", "regenerate_last", "Regenerate the last reply"),
    ("Ctrl+Shift+C", "copy_last_reply", "Copy the last reply"),
    ("Ctrl+E", "edit_last_message", "Edit your last message (makes a branch)"),
    ("Ctrl+Shift+M", "open_model_manager", "Model manager"),
    ("Ctrl+PgUp", "previous_chat", "Previous chat in the list"),
    ("Ctrl+PgDown", "next_chat", "Next chat in the list"),
    ("Ctrl+Q", "close", "Quit (stops generation and downloads, saves the chat)"),
]


def markdown_table() -> str:
    rows = ["| Keys | Action |", "| --- | --- |"]
    rows += [f"| {keys} | {text} |" for keys, _, text in SHORTCUTS]
    return "\n".join(rows)
