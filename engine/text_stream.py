"""Turning token bytes into text safely: whole UTF-8 characters, stop strings held back."""
from __future__ import annotations

import codecs
from typing import Sequence


class Utf8Stream:
    """Bytes in, text out, never splitting a character across pieces.

    A token may end in the middle of a multi-byte character (emoji, CJK, accents
    in byte-level BPE); its bytes wait until the character is complete.
    """

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class StopStringFilter:
    """Passes text through until a stop string appears; never emits any part of one.

    Text that could be the start of a stop string is held back until the next
    piece shows whether it is.
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if not self.stops:
            return text
        if self.stopped:
            return ""
        buf = self._pending + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), 0, -1):
                if buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        self._pending = buf[len(buf) - hold:] if hold else ""
        return buf[:len(buf) - hold]

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return "" if self.stopped else out
