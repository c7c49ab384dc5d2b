"""What a GGUF file is, read from its header (no weights loaded).

``read_gguf_info(path)`` gives architecture, name, parameter count, quant type,
size, context length, chat template presence and the BOS/EOS/EOT tokens, plus
warnings such as the Llama 3 instruct file whose EOS is ``<|end_of_text|>``: such a
model never emits that token at the end of a turn, so a chat would run on.
Call ``gguf_validate.validate_gguf`` first on files from outside.

The header is walked directly, with the validator's bounds-checked cursor: the
vocabulary (49K to 128K strings) is skipped over, and only the few tokens named
by id are read. gguf.GGUFReader builds an object for every one of those strings,
which took 3 to 30 seconds a file on a busy 2-core machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

EOS_WARNING = ("EOS is <|end_of_text|> but this is a Llama 3 instruct model, whose turns end with "
               "<|eot_id|>: replies may run on past the end of the answer. Use a GGUF whose EOS is "
               "<|eot_id|> (re-convert it with LlamaDesk).")


@dataclass
class GGUFInfo:
    architecture: Optional[str]
    name: Optional[str]
    parameters: int
    quant: Optional[str]
    file_size: int
    context_length: Optional[int]
    has_chat_template: bool
    bos: Optional[str]
    eos: Optional[str]
    eot: Optional[str]
    is_instruct: bool
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GGUFInfo":
        return cls(**d)


TOKENS_KEY = "tokenizer.ggml.tokens"


@dataclass
class _Header:
    values: dict                          # key -> scalar, or text for string values
    parameters: int                       # elements of every tensor
    tokens: Optional[tuple[int, int]]     # (byte offset, count) of the vocabulary's strings


def _read_header(buf) -> _Header:
    from models.gguf_validate import (_ARRAY, _SCALARS, _STRING, MAX_DIMS, MAX_KEYS, MAX_NAME,
                                      MAX_TENSORS, SUPPORTED_VERSIONS, UnsafeGGUFError, _Cursor,
                                      _name, _skip_strings)

    size = len(buf)
    cur = _Cursor(buf, size)
    cur.need(4, "magic")
    if bytes(buf[:4]) != b"GGUF":
        raise UnsafeGGUFError("not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise UnsafeGGUFError(f"unsupported GGUF version {version} (supported: 2 and 3)")
    n_tensors, n_keys = cur.u64("tensor count"), cur.u64("key count")
    if n_tensors > MAX_TENSORS or n_tensors * 28 > size or n_keys > MAX_KEYS or n_keys * 13 > size:
        raise UnsafeGGUFError(f"tensor or key count out of bounds for a {size}-byte file")
    values: dict = {}
    tokens = None
    for i in range(n_keys):
        key = _name(cur.string(f"key #{i}", MAX_NAME), f"key #{i}")
        vtype = cur.u32(f"type of {key}")
        if vtype in _SCALARS:
            values[key] = cur.unpack(*_SCALARS[vtype], f"value of {key}")
        elif vtype == _STRING:
            values[key] = cur.string(f"string value of {key}").decode("utf-8", "replace")
        elif vtype == _ARRAY:
            etype, count = cur.u32(f"array type of {key}"), cur.u64(f"array length of {key}")
            if etype in _SCALARS:
                cur.need(count * _SCALARS[etype][1], f"array {key} ({count} items)")
                cur.pos += count * _SCALARS[etype][1]
            elif etype == _STRING:
                cur.need(count * 8, f"array {key} ({count} strings)")
                if key == TOKENS_KEY:
                    tokens = (cur.pos, count)
                cur.pos = _skip_strings(buf, cur.pos, size, count, key)
            else:
                raise UnsafeGGUFError(f"array {key} has element type {etype}, which GGUF does not allow")
        else:
            raise UnsafeGGUFError(f"key {key} has unknown value type {vtype}")
    parameters = 0
    for i in range(n_tensors):
        cur.skip_string(f"name of tensor #{i}")
        n_dims = cur.u32(f"dimension count of tensor #{i}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise UnsafeGGUFError(f"tensor #{i} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        count = 1
        for _ in range(n_dims):
            count *= max(0, cur.unpack("<q", 8, f"dimension of tensor #{i}"))
        cur.u32(f"type of tensor #{i}")
        cur.u64(f"data offset of tensor #{i}")
        parameters += count
    return _Header(values, parameters, tokens)


def _token_texts(buf, tokens: Optional[tuple[int, int]], ids, find: Optional[str] = None):
    """({id: text} for the token ``ids``, the id of the token spelled ``find`` or None),
    in one pass over the vocabulary's strings that stops once it has them all."""
    import struct

    if tokens is None:
        return {}, None
    pos, count = tokens
    wanted = {i for i in ids if isinstance(i, int) and 0 <= i < count}
    needle = find.encode("utf-8") if find else None
    found, at = {}, None
    u64 = struct.Struct("<Q").unpack_from
    for i in range(count):
        if len(found) == len(wanted) and (needle is None or at is not None):
            break
        n = u64(buf, pos)[0]
        start, pos = pos + 8, pos + 8 + n
        if i in wanted:
            found[i] = bytes(buf[start:pos]).decode("utf-8", "replace")
        if needle is not None and at is None and n == len(needle) and bytes(buf[start:pos]) == needle:
            at = i
    return found, at


def quant_name(file_type) -> Optional[str]:
    import gguf

    try:
        name = gguf.LlamaFileType(int(file_type)).name
    except (TypeError, ValueError):
        return None
    return name.replace("MOSTLY_", "").replace("ALL_", "")


def read_gguf_info(path, *, total_size: Optional[int] = None) -> GGUFInfo:
    import mmap

    from models.gguf_validate import UnsafeGGUFError

    path = Path(path)
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise UnsafeGGUFError(f"{path.name} is empty, not a GGUF file") from None
        with buf:
            head = _read_header(buf)
            v = head.values
            ids = {k: v.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "eot")}
            texts, eot_found = _token_texts(buf, head.tokens, ids.values(),
                                            "<|eot_id|>" if ids["eot"] is None else None)
    if ids["eot"] is None and eot_found is not None:
        ids["eot"], texts[eot_found] = eot_found, "<|eot_id|>"
    arch, name = v.get("general.architecture"), v.get("general.name")
    template = v.get("tokenizer.chat_template")
    ctx = v.get(f"{arch}.context_length") if arch else None
    token = (lambda i: texts.get(i) if isinstance(i, int) else None)
    info = GGUFInfo(
        architecture=arch, name=name, parameters=head.parameters,
        quant=quant_name(v.get("general.file_type")),
        file_size=total_size or path.stat().st_size,
        context_length=int(ctx) if isinstance(ctx, (int, float)) else None,
        has_chat_template=bool(template), bos=token(ids["bos"]), eos=token(ids["eos"]),
        eot=token(ids["eot"]),
        is_instruct=bool(template) or "instruct" in (name or "").lower())
    llama3 = info.architecture == "llama" and info.eot == "<|eot_id|>"
    if llama3 and info.is_instruct and info.eos == "<|end_of_text|>":
        info.warnings.append(EOS_WARNING)
    return info
