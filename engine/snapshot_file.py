"""The snapshot file format (engine.snapshots): a checked header, the tokens, the state.

Little-endian::

    magic b"LDKVSNP1" | u32 header length | u32 crc32 of the header | header (JSON:
    format, key, tag, n_tokens, approx_from, payload_len, tokens_crc, payload_crc) |
    n_tokens int32 tokens | payload (the bytes of llama_state_seq_get_data)

``read_meta`` checks everything but the payload (lengths against the file size, the
header's and the tokens' CRC, the format and the key); ``read_payload`` checks the
payload's CRC. Anything wrong raises ``BadSnapshot``, with why in words.
"""
from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

MAGIC = b"LDKVSNP1"
FORMAT = 1
_PREFIX = struct.Struct("<8sII")


class BadSnapshot(Exception):
    """A snapshot file is damaged or belongs to something else (it is removed)."""


@dataclass
class SnapshotMeta:
    """What a snapshot holds, without its (large) payload."""

    name: str                      # file name
    tag: str                       # the conversation
    tokens: np.ndarray             # int32
    approx_from: Optional[int]     # None: exact; else entries from here on went through a shift
    payload_len: int
    payload_crc: int
    data_offset: int = 0           # where the payload starts in the file
    ino: int = 0
    size: int = 0

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def exact(self) -> bool:
        return self.approx_from is None


def encode_prefix(key: dict, tag: str, tokens: np.ndarray, approx_from: Optional[int],
                  payload: memoryview) -> bytes:
    toks = np.ascontiguousarray(tokens, dtype="<i4").tobytes()
    header = json.dumps({"format": FORMAT, "key": key, "tag": tag, "n_tokens": len(tokens),
                         "approx_from": approx_from, "payload_len": payload.nbytes,
                         "tokens_crc": zlib.crc32(toks), "payload_crc": zlib.crc32(payload),
                         "created": time.time()}, sort_keys=True).encode()
    return _PREFIX.pack(MAGIC, len(header), zlib.crc32(header)) + header + toks


def read_meta(path: Path, key: dict) -> SnapshotMeta:
    """The header and tokens of a snapshot file, checked (not the payload: see ``read_payload``)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(_PREFIX.size)
            if len(head) < _PREFIX.size:
                raise BadSnapshot("truncated header")
            magic, hlen, hcrc = _PREFIX.unpack(head)
            if magic != MAGIC:
                raise BadSnapshot("not a snapshot file")
            if hlen > 1 << 20:
                raise BadSnapshot("header too large")
            raw = f.read(hlen)
            if len(raw) != hlen or zlib.crc32(raw) != hcrc:
                raise BadSnapshot("damaged header")
            try:
                h = json.loads(raw)
                n = int(h["n_tokens"])
                plen = int(h["payload_len"])
                approx = h["approx_from"]
                tcrc, pcrc = int(h["tokens_crc"]), int(h["payload_crc"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BadSnapshot(f"unreadable header ({exc})") from None
            if h.get("format") != FORMAT:
                raise BadSnapshot(f"format {h.get('format')}, this version reads {FORMAT}")
            if h.get("key") != key:
                raise BadSnapshot("made with another model file, context size, cache type or llama.cpp build")
            start = _PREFIX.size + hlen
            if n <= 0 or plen <= 0 or st.st_size != start + 4 * n + plen:
                raise BadSnapshot(f"truncated or padded ({st.st_size:,} bytes, header says "
                                  f"{start + 4 * n + plen:,})")
            toks = f.read(4 * n)
            if zlib.crc32(toks) != tcrc:
                raise BadSnapshot("damaged token list")
    except OSError as exc:
        raise BadSnapshot(f"cannot be read ({exc.strerror or exc})") from None
    if approx is not None and not (isinstance(approx, int) and 0 <= approx < n):
        raise BadSnapshot("bad approx_from")
    return SnapshotMeta(name=path.name, tag=str(h.get("tag", "")), tokens=np.frombuffer(toks, dtype="<i4"),
                        approx_from=approx, payload_len=plen, payload_crc=pcrc,
                        data_offset=start + 4 * n, ino=st.st_ino, size=st.st_size)


def read_payload(path: Path, meta: SnapshotMeta):
    """The state bytes of a checked snapshot file, verified against their CRC.

    The file is mapped (copy-on-write), not read into a new buffer: the checksum pass
    brings it in from the page cache and llama.cpp copies it straight into the KV cache,
    which halves what a restore moves (179 MB for 7,900 tokens of the demo model).
    LlamaDesk only ever replaces these files by renaming a new one over them, so a
    mapping never sees one shrink.
    """
    import mmap

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_ino, st.st_size) != (meta.ino, meta.size):
                raise BadSnapshot("replaced while being read")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError) as exc:
        raise BadSnapshot(f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    view = memoryview(mm)[meta.data_offset:]
    if view.nbytes != meta.payload_len:
        raise BadSnapshot("truncated payload")
    if zlib.crc32(view) != meta.payload_crc:
        raise BadSnapshot("damaged state (checksum differs)")
    return view
