"""Hub failures turned into messages a person can act on.

The Hub answers a gated repo with 401 when no token was sent, 403 when the account
has not accepted the licence, and 401 "Invalid credentials" for a wrong token.
huggingface_hub raises ``GatedRepoError`` (a ``RepositoryNotFoundError``) for the
first two, so the status code and whether a token was sent decide the message.
"""
from __future__ import annotations

from typing import Optional

from common.errors import UserError
from models import hub_env


class HubAccessError(UserError, RuntimeError):
    """A Hub request failed for a reason the user can fix; ``str()`` says how."""

    kind = "error"

    def __init__(self, message: str, repo_id: Optional[str] = None):
        super().__init__(message)
        self.repo_id = repo_id


class SignInRequired(HubAccessError):
    kind = "sign_in"


class LicenceNotAccepted(HubAccessError):
    kind = "licence"


class TokenRejected(HubAccessError):
    kind = "bad_token"


class RepoNotFound(HubAccessError):
    kind = "not_found"


class HubUnreachable(HubAccessError):
    """No connection to the Hub at all (no network, unknown host, refused): worth no retry."""

    kind = "unreachable"

    def __init__(self, message: str, repo_id: Optional[str] = None, *, detail: str = ""):
        super().__init__(message, repo_id)
        self.detail = detail   # the system's own words (e.g. "[Errno -2] Name or service not known")


def unreachable_message() -> str:
    where = "" if hub_env.endpoint() == hub_env.DEFAULT_ENDPOINT else f" at {hub_env.endpoint()}"
    return (f"Can't reach the Hugging Face Hub{where} (no network?). "
            "Models already on this computer still work.")


def sign_in_message(repo_id: str) -> str:
    return (f"{repo_id} is a gated model: sign in with a Hugging Face token to download it "
            f"(set HF_TOKEN, run `hf auth login`, or enter a token in LlamaDesk; "
            f"create one at {hub_env.endpoint()}/settings/tokens).")


def licence_message(repo_id: str) -> str:
    return (f"Your Hugging Face account has no access to {repo_id} yet: accept the licence at "
            f"{hub_env.repo_url(repo_id)} and try again.")


def token_rejected_message(source: Optional[str]) -> str:
    where = f" (from {source})" if source else ""
    return (f"The Hugging Face token{where} was rejected: it is wrong, expired or revoked. "
            f"Create a new one at {hub_env.endpoint()}/settings/tokens and sign in again.")


def translate(exc: BaseException, repo_id: str, token_source: Optional[str]) -> BaseException:
    """Map a huggingface_hub/httpx error to a ``HubAccessError`` when one applies."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError, RemoteEntryNotFoundError)

    if isinstance(exc, HubAccessError):
        return exc
    if is_connection_failure(exc):
        return HubUnreachable(unreachable_message(), repo_id, detail=str(exc))
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status == 401 and token_source is not None:
        return TokenRejected(token_rejected_message(token_source), repo_id)
    if isinstance(exc, GatedRepoError) or (status in (401, 403) and isinstance(exc, HfHubHTTPError)):
        if status == 403:
            return LicenceNotAccepted(licence_message(repo_id), repo_id)
        return SignInRequired(sign_in_message(repo_id), repo_id)
    if isinstance(exc, RevisionNotFoundError):
        return RepoNotFound(f"{repo_id} has no revision by that name.", repo_id)
    if isinstance(exc, RemoteEntryNotFoundError):
        return RepoNotFound(f"{repo_id} has no such file.", repo_id)
    if isinstance(exc, RepositoryNotFoundError):
        return RepoNotFound(f"No model repository {repo_id} on {hub_env.endpoint()} "
                            "(check the name; private repos need a token).", repo_id)
    return exc


def is_connection_failure(exc: BaseException) -> bool:
    """A failed connect from either HTTP stack (huggingface_hub's httpx2, our downloads' httpx)."""
    import sys

    for name in ("httpx2", "httpx"):
        lib = sys.modules.get(name)   # an error from a stack means that stack is imported
        if lib is not None and isinstance(exc, (lib.ConnectError, lib.ConnectTimeout)):
            return True
    return False
