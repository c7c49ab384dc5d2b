"""How huggingface_hub talks to the network: bounded waits, no retries when the Hub is unreachable.

huggingface_hub retries network errors with backoff (1 + 2 + 4 + 8 + 8 s for a search or a
file's metadata) and logs each retry as a warning on the terminal; its shared client has
no timeout at all, so an unanswered connect waits for the operating system (minutes).
Offline, that is 23 s of retry lines before an error a person cannot act on.

``install()`` (idempotent; every Hub call in ``models`` runs it first) gives
huggingface_hub a client whose transport

- bounds each wait it was given none for (``CONNECT_TIMEOUT_S`` to connect,
  ``READ_TIMEOUT_S`` for an answer);
- turns a failed connection (no DNS answer, refused, connect timeout) into
  ``HubUnreachable`` at once: not an httpx network error, so huggingface_hub does not
  retry it. A refused connection or an unknown host name does not heal in seconds.

Retries for what does heal (5xx, 429, a dropped read) stay huggingface_hub's; its log
lines (one per retry) go to LlamaDesk's log file with everything else, not to the terminal.
"""
from __future__ import annotations

import logging
import threading

from models.hub_errors import HubUnreachable, unreachable_message

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0

_installed = False
_lock = threading.Lock()


def _transport_class():
    import httpx2

    class FailFastTransport(httpx2.BaseTransport):
        """The default transport, with bounded waits and connection failures made final."""

        def __init__(self):
            self._inner = httpx2.HTTPTransport()

        def handle_request(self, request):
            timeout = dict(request.extensions.get("timeout") or {})
            if timeout.get("connect") is None:
                timeout["connect"] = CONNECT_TIMEOUT_S
            for key in ("read", "write", "pool"):
                if timeout.get(key) is None:
                    timeout[key] = READ_TIMEOUT_S
            request.extensions = {**request.extensions, "timeout": timeout}
            try:
                return self._inner.handle_request(request)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                raise HubUnreachable(unreachable_message(), detail=str(exc)) from exc

        def close(self) -> None:
            self._inner.close()

    return FailFastTransport


def _client_factory():
    import httpx2
    from huggingface_hub.utils import _http as hf_http

    # huggingface_hub's own client carries its request hooks (offline guard, request id):
    # keep them, change only the transport.
    default = getattr(hf_http, "default_client_factory", None)
    hooks = {}
    if default is not None:
        base = default()
        hooks = base.event_hooks
        base.close()
    return httpx2.Client(event_hooks=hooks, follow_redirects=True, timeout=None,
                         transport=_transport_class()())


def _route_log() -> None:
    """huggingface_hub prints its log on stderr through its own handler: drop that handler,
    so its records reach the root logger's (the log file) and nothing else."""
    hf_log = logging.getLogger("huggingface_hub")
    for handler in list(hf_log.handlers):
        if type(handler) is logging.StreamHandler:
            hf_log.removeHandler(handler)
    hf_log.addHandler(logging.NullHandler())   # never Python's last-resort printing either
    hf_log.propagate = True


def install() -> None:
    """Make huggingface_hub fail fast and quietly when the Hub cannot be reached."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        from huggingface_hub import set_client_factory

        _route_log()
        set_client_factory(_client_factory)
        _installed = True
