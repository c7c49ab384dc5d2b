"""Hugging Face tokens: find one, check one, save one the way huggingface_hub does.

A token is looked up in ``HF_TOKEN`` (or the older ``HUGGING_FACE_HUB_TOKEN``), then in
huggingface_hub's token file (``$HF_HOME/token``, written by ``hf auth login``). A
token the user types in is saved to that same file, readable only by the user, so
every Hugging Face tool shares it. LlamaDesk never writes a token to its own
database, settings, logs or exports, and never prints one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from common.errors import UserError
from models import hub_env


@dataclass(frozen=True)
class TokenInfo:
    token: str
    source: str          # "HF_TOKEN" | "saved login"

    def __repr__(self) -> str:  # never show the secret
        return f"TokenInfo(source={self.source!r}, token='hf_***')"


class InvalidTokenError(UserError, ValueError):
    """The Hub refused the token."""


def find_token() -> Optional[TokenInfo]:
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = (os.environ.get(var) or "").strip()
        if value:
            return TokenInfo(value, "HF_TOKEN")
    path = hub_env.token_path()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return TokenInfo(value, "saved login") if value else None


def current_token() -> Optional[str]:
    info = find_token()
    return info.token if info else None


def whoami(token: str) -> dict:
    """Ask the Hub who this token belongs to; ``InvalidTokenError`` when it is refused."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if hub_env.offline():
        raise hub_env.OfflineError("checking a token")
    from models import hub_http

    hub_http.install()
    try:
        return HfApi(endpoint=hub_env.endpoint()).whoami(token=token)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            raise InvalidTokenError("The Hugging Face token was rejected: it is wrong, expired or "
                                    "revoked. Create a new one at "
                                    f"{hub_env.endpoint()}/settings/tokens.") from None
        raise


def save_token(token: str, *, validate: bool = True) -> dict:
    """Check the token with the Hub (unless told not to), then save it for every HF tool."""
    token = token.strip()
    if not token:
        raise InvalidTokenError("The token is empty.")
    info = whoami(token) if validate else {}
    path = hub_env.token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token)
    os.replace(tmp, path)
    return info


def forget_token() -> bool:
    """Delete the saved login (not HF_TOKEN, which belongs to the environment)."""
    try:
        hub_env.token_path().unlink()
        return True
    except FileNotFoundError:
        return False
