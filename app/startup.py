"""Opening the chats for the window: it always opens, or says why.

- The database is not a database, or SQLite finds it damaged: the user chooses to
  keep it aside (renamed with the time, never deleted) and start a new one, to open
  it read-only when SQLite can still read it, or to quit.
- Another process holds the chats (a window that did not answer, or the CLI
  importing): they open read-only, and the window says so in a banner.
- The folder cannot be written: read-only as well, when the file can be read.

Each way ends in ``OpenedChats``: the store (None: the user chose to quit) and the
sentences the window shows in its banner.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtWidgets import QMessageBox

from chat import recovery
from chat.records import ChatStoreError, StoreLockedError
from chat.store import ChatStore
from common.errors import user_message

KEEP_ASIDE, READ_ONLY, QUIT = "keep-aside", "read-only", "quit"


@dataclass
class OpenedChats:
    store: Optional[ChatStore]
    notices: list[str] = field(default_factory=list)


class DatabaseProblemDialog(QMessageBox):
    """Asks what to do with a chat database that cannot be used as it is."""

    def __init__(self, path: Path, problem: str, can_read: bool, parent=None):
        super().__init__(parent)
        self.setIcon(QMessageBox.Warning)
        self.setWindowTitle("LlamaDesk: the chats cannot be opened")
        self.setText("Your chat database is damaged or is not a chat database.")
        read = (" SQLite can still read it, so you can also open it read-only to look at or "
                "export your chats.") if can_read else ""
        where = "" if str(path) in problem else f"{path}\n\n"
        self.setInformativeText(
            f"{where}{problem[:300]}\n\nLlamaDesk can keep it aside (it is renamed, never "
            f"deleted) and start a new, empty one.{read}")
        self.keep_aside_button = self.addButton("Keep it aside and start anew", QMessageBox.AcceptRole)
        self.read_only_button = self.addButton("Open read-only", QMessageBox.ActionRole) if can_read else None
        self.quit_button = self.addButton("Quit", QMessageBox.RejectRole)
        self.setDefaultButton(self.keep_aside_button)
        self.setEscapeButton(self.quit_button)

    def choice(self) -> str:
        clicked = self.clickedButton()
        if clicked is self.keep_aside_button:
            return KEEP_ASIDE
        if self.read_only_button is not None and clicked is self.read_only_button:
            return READ_ONLY
        return QUIT


def ask_with_dialog(path: Path, problem: str, can_read: bool) -> str:
    dialog = DatabaseProblemDialog(path, problem, can_read)
    dialog.exec()
    return dialog.choice()


def tell_with_dialog(text: str) -> None:
    box = QMessageBox(QMessageBox.Critical, "LlamaDesk: the chats cannot be opened", text)
    box.exec()


def open_chats(path: Path, *, ask: Callable[[Path, str, bool], str] = ask_with_dialog,
               tell: Callable[[str], None] = tell_with_dialog) -> OpenedChats:
    """Open the chat database for the window, asking the user when it is damaged."""
    try:
        damage = recovery.problem(path)
    except StoreLockedError:
        return _read_only(path, "Another LlamaDesk (a window or a command) has your chats open, so "
                                "they are read-only here: you can read and export them, not change them.",
                          tell)
    except ChatStoreError as exc:          # e.g. written by a newer LlamaDesk
        tell(f"The chats cannot be opened: {exc}")
        return OpenedChats(None)
    except OSError as exc:                 # the folder cannot be written
        return _read_only(path, f"The chats are read-only here: {user_message(exc) or exc}", tell)
    notices = []
    if damage:
        choice = ask(path, damage, recovery.readable(path))
        if choice == QUIT:
            return OpenedChats(None)
        if choice == READ_ONLY:
            return _read_only(path, "Your chat database is damaged, so it is open read-only: you can "
                                    "read and export your chats. Restart LlamaDesk to keep it aside "
                                    "and start anew.", tell)
        try:
            kept = recovery.keep_aside(path)
        except OSError as exc:
            tell(f"The damaged chat database could not be kept aside: {user_message(exc) or exc}")
            return OpenedChats(None)
        notices.append(f"Your damaged chat database was kept as {kept.name} (in {kept.parent}); "
                       "new chats start in a new one.")
    try:
        return OpenedChats(ChatStore.open(path), notices)
    except StoreLockedError:               # another instance got there between the check and now
        return _read_only(path, "Another LlamaDesk has your chats open, so they are read-only here.", tell)
    except (ChatStoreError, sqlite3.Error, OSError) as exc:
        tell(f"The chats cannot be opened: {user_message(exc) or exc}")
        return OpenedChats(None)


def _read_only(path: Path, notice: str, tell) -> OpenedChats:
    try:
        return OpenedChats(ChatStore.open(path, read_only=True), [notice])
    except (ChatStoreError, sqlite3.Error, OSError) as exc:
        tell(f"The chats cannot be opened, not even read-only: {user_message(exc) or exc}")
        return OpenedChats(None)
