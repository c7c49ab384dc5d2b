"""The Hugging Face token as the settings form sees it (stored by models.auth, never by us)."""
from __future__ import annotations

from app.threads import run_in_background


def token_hint() -> str:
    from models.auth import find_token

    info = find_token()
    return f"signed in ({info.source}); type a new token to replace it" if info else ""


def save_token_in_background(token: str, on_done) -> None:
    """Check the token with the Hub and save it; ``on_done(message)`` on the GUI thread."""
    from models.auth import save_token

    def job(_handle):
        info = save_token(token)
        return info.get("name", "") if isinstance(info, dict) else ""

    (run_in_background(job, "hf-token")
     .on_success(lambda name: on_done(f"Signed in to Hugging Face{' as ' + name if name else ''}."))
     .on_failure(lambda exc: on_done(str(exc)))
     .start())
