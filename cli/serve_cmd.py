"""`llamadesk serve`: a local OpenAI- and Ollama-compatible server for other programs."""
from __future__ import annotations

import argparse
import sys

DEFAULT_PARALLEL = 2
MAX_PARALLEL = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from server.run import DEFAULT_PORT

    parser.add_argument("--model", required=True,
                        help="a GGUF path, or a file name in the models folder (as for `chat`)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs --api-key)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' (also: LLAMADESK_SERVE_KEY)")
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                        help=f"requests generated at once, each with its own window (default {DEFAULT_PARALLEL})")
    parser.add_argument("--n-ctx", type=int, default=None,
                        help="context window of each request (default: from Settings)")
    parser.add_argument("--gpu-layers", default=None, help="layers to offload: a number, or auto (default: from Settings)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: from Settings)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="a web page origin allowed to call the server (repeatable; default none)")


def run(args: argparse.Namespace) -> int:
    import os
    from dataclasses import replace

    from cli.chat_cmd import resolve_model, run_options
    from common.settings import load_settings
    from common.errors import UserError
    from engine import open_backend
    from engine.scheduler import BatchScheduler
    from server.app import ApiState, build_app
    from server.run import Server, bind, url_of

    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise UserError(f"--parallel must be between 1 and {MAX_PARALLEL}; it is {args.parallel}.")
    if args.n_ctx is not None and args.n_ctx < 256:
        raise UserError(f"--n-ctx must be at least 256; it is {args.n_ctx}.")
    settings = load_settings()
    load, _ = run_options(args, settings)    # the settings file, this run's flags over it
    api_key = args.api_key or os.environ.get("LLAMADESK_SERVE_KEY") or None
    sock = bind(args.host, args.port, api_key)     # a busy port fails now, not after loading
    try:
        try:
            path = resolve_model(args.model, settings)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
        slot_ctx = load.n_ctx     # each request's window; the context holds one per parallel slot
        backend = open_backend(path, replace(load, n_ctx=slot_ctx * args.parallel), n_seq_max=args.parallel)
    except BaseException:
        sock.close()
        raise
    if backend.plan_text:
        print(backend.plan_text, file=sys.stderr)
    service = BatchScheduler(backend, parallel=args.parallel, slot_ctx=slot_ctx)
    service.start()
    url = url_of(sock, args.host)
    state = ApiState(service, api_key=api_key, cors_origins=args.cors_origin)
    server = Server(build_app(state), sock, on_stop=service.cancel_all,
                    on_ready=lambda: print(f"Serving {backend.name} on {url}", flush=True))
    try:
        server.run()
    finally:
        if service.stop():        # else a reply is still inside llama.cpp: the exit frees it
            backend.unload()
    print("Server stopped.", file=sys.stderr)
    return 0
