"""The ASGI application: both dialects' routes over one model service, with the checks
every request passes first (browser origin, API key) and errors in each dialect's shape.

A *model service* is what answers: anything with ``name``, ``model_path``,
``slot_ctx``, ``template_source``, ``submit(GenerationRequest)`` and ``snapshot()``
(``engine.scheduler.BatchScheduler`` headless; the window passes its own model's).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from common.version import __version__
from server import ollama_api, openai_api
from server.protocol import ApiError

log = logging.getLogger(__name__)


class ApiState:
    """What the routes share: the model service, access rules, counters."""

    def __init__(self, service, *, api_key: Optional[str] = None, cors_origins: Sequence[str] = (),
                 on_request: Optional[Callable[[int], None]] = None):
        self.service = service
        self.api_key = api_key or None
        self.cors_origins = tuple(cors_origins)
        self.on_request = on_request
        self.requests = 0
        self._lock = threading.Lock()
        self._info = None
        self.fingerprint = f"llamadesk-{__version__}"

    # --- the model ----------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.service.name

    @property
    def template_source(self) -> str:
        return self.service.template_source or ""

    def serves(self, name: str) -> bool:
        """Whether a request naming ``name`` means the loaded model (its name, file name or path)."""
        wanted = name.strip()
        if wanted.endswith(":latest"):
            wanted = wanted[: -len(":latest")]
        path = Path(self.service.model_path)
        return wanted.casefold() in {self.model_id.casefold(), path.name.casefold(),
                                     path.stem.casefold(), str(path).casefold()}

    def gguf_info(self):
        if self._info is None:
            try:
                from models.gguf_info import read_gguf_info

                self._info = read_gguf_info(self.service.model_path)
            except Exception:  # details are a courtesy; never fail a request for them
                log.warning("could not read the GGUF header of %s", self.service.model_path)
                return None
        return self._info

    def library_entries(self) -> list[dict]:
        """The loaded model first, then the library's other usable GGUFs."""
        loaded = Path(self.service.model_path)
        out = [self._entry(self.model_id, loaded, True)]
        try:
            from models.library import scan

            seen = {_resolved(loaded)}
            for e in scan():
                if e.kind != "gguf" or not e.usable or _resolved(Path(e.path)) in seen:
                    continue
                seen.add(_resolved(Path(e.path)))
                out.append(self._entry(e.name, Path(e.path), False))
        except Exception:  # a broken library still lists the loaded model
            log.warning("could not list the model library", exc_info=True)
        return out

    def library_ids(self) -> list[str]:
        return [e["id"] for e in self.library_entries()]

    @staticmethod
    def _entry(name: str, path: Path, loaded: bool) -> dict:
        from datetime import datetime, timezone

        try:
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime
        except OSError:
            size, mtime = 0, 0.0
        stamp = datetime.fromtimestamp(mtime, timezone.utc).isoformat().replace("+00:00", "Z")
        digest = hashlib.sha256(f"{path}:{size}:{mtime}".encode()).hexdigest()
        return {"id": name, "path": str(path), "size": size, "modified_at": stamp, "digest": digest,
                "loaded": loaded}

    def defaults(self):
        """Sampling defaults: the user's settings, the same file the window and the CLI read."""
        from common.settings import load_settings

        return load_settings().params

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1
            n = self.requests
        if self.on_request is not None:
            try:
                self.on_request(n)
            except Exception:
                log.exception("request observer failed")

    # --- access -------------------------------------------------------------
    def check_access(self, request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in self.cors_origins:
            raise ApiError(403, f"Requests from web pages at {origin} are not allowed; start the "
                           "server with --cors-origin to allow one.", type="permission_error",
                           code="origin_not_allowed")
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given, self.api_key.encode("utf-8")):
            raise ApiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>' "
                           "with the key the server was started with.", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _error_for(path: str):
    return ollama_api.error_response if path.startswith("/api/") else openai_api.error_response


def _guard(fn):
    """Run a route after the access checks; any failure becomes an error in the route's dialect."""
    async def handler(request):
        state: ApiState = request.app.state.api
        try:
            state.check_access(request)
            return await fn(request)
        except ApiError as err:
            return _error_for(request.url.path)(err)
        except Exception:  # a bug in one request must not take the server down, nor show a traceback
            log.exception("request %s failed", request.url.path)
            return _error_for(request.url.path)(ApiError(
                500, "The server failed on this request; it keeps running. Details are in its log.",
                type="server_error"))
    handler.__name__ = fn.__name__
    return handler


async def _root(request):
    return PlainTextResponse("LlamaDesk is running")


async def _status(request):
    state: ApiState = request.app.state.api
    return JSONResponse({"model": state.model_id, "requests": state.requests, **state.service.snapshot()})


async def _model(request):
    state: ApiState = request.app.state.api
    mid = request.path_params["model"]
    if mid not in state.library_ids():
        raise ApiError(404, f"The model {mid!r} does not exist here.", param="model", code="model_not_found")
    return JSONResponse({"id": mid, "object": "model", "created": 0, "owned_by": "llamadesk"})


async def _http_error(request, exc: HTTPException):
    if exc.status_code == 404:
        msg = f"There is no {request.url.path} here; see /v1/models, /v1/chat/completions, /api/chat."
        code = "not_found"
    elif exc.status_code == 405:
        msg = f"{request.method} is not allowed on {request.url.path}."
        code = "method_not_allowed"
    else:
        msg, code = exc.detail or "The request was refused.", None
    return _error_for(request.url.path)(ApiError(exc.status_code, msg, code=code, headers=exc.headers))


async def _internal_error(request, exc: Exception):
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return _error_for(request.url.path)(ApiError(500, "The server failed on this request; it keeps running.",
                                                 type="server_error"))


def build_app(state: ApiState) -> Starlette:
    g = _guard
    routes = [
        Route("/", _root, methods=["GET", "HEAD"]),
        Route("/llamadesk/status", g(_status), methods=["GET"]),
        Route("/v1/models", g(openai_api.list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", g(_model), methods=["GET"]),
        Route("/v1/chat/completions", g(openai_api.chat_completions), methods=["POST"]),
        Route("/v1/completions", g(openai_api.completions), methods=["POST"]),
        Route("/api/version", g(ollama_api.version), methods=["GET"]),
        Route("/api/tags", g(ollama_api.tags), methods=["GET"]),
        Route("/api/show", g(ollama_api.show), methods=["POST"]),
        Route("/api/chat", g(ollama_api.chat), methods=["POST"]),
        Route("/api/generate", g(ollama_api.generate), methods=["POST"]),
    ]
    middleware = []
    if state.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(state.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.api = state
    return app
