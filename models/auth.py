"""Hugging Face tokens: find one, check one, save one.

A token is looked up in ``HF_TOKEN`` (or the older ``HUGGING_FACE_HUB_TOKEN``), then
among LlamaDesk's secrets (``common.secret_store``: the system keyring, or a file only
the user can read), then in huggingface_hub's token file (``$HF_HOME/token``, written
by ``hf auth login``). A token the user types in is saved as a secret. LlamaDesk
never writes a token to its database, settings, logs or exports, and never prints one.
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
    from common import secret_store

    saved = (secret_store.get_secret(secret_store.HF_TOKEN) or "").strip()
    if saved:
        return TokenInfo(saved, "the token saved in LlamaDesk")
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
    """Check the token with the Hub (unless told not to), then keep it as a secret."""
    from common import secret_store

    token = token.strip()
    if not token:
        raise InvalidTokenError("The token is empty.")
    info = whoami(token) if validate else {}
    secret_store.set_secret(secret_store.HF_TOKEN, token)
    return info


def forget_token() -> bool:
    """Delete the token saved in LlamaDesk (not HF_TOKEN, nor ``hf auth login``'s file)."""
    from common import secret_store

    had = secret_store.get_secret(secret_store.HF_TOKEN) is not None
    secret_store.delete_secret(secret_store.HF_TOKEN)
    return had
