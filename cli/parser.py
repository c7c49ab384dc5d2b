"""The command-line parser: every subcommand, registered in one place.

Each entry names a module with ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their command runs, except for building ``--help``,
so ``python main.py chat`` does not pay for the converter's imports.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: list[Command] = [
    Command("paths", "cli.paths_cmd", "show where models, chats, settings, logs and the cache live"),
    Command("chats", "cli.chats_cmd", "list, search, export and import conversations; the trash"),
    Command("convert", "cli.convert_cmd", "convert a Hugging Face Llama 3 checkpoint into a verified (4-bit) GGUF"),
    Command("quality", "cli.quality_cmd", "measure how closely a (quantized) GGUF follows the original: KL divergence, "
                                          "same top token, perplexity"),
    Command("search", "cli.search_cmd", "search the Hugging Face Hub for models, or list a repo's files"),
    Command("download", "cli.download_cmd", "download a model from the Hub (resumable, verified)"),
    Command("models", "cli.models_cmd", "list the models on this computer"),
    Command("chat", "cli.chat_cmd", "chat with a model in the terminal (one-shot with --prompt)"),
    Command("serve", "cli.serve_cmd", "serve a model to other programs (OpenAI- and Ollama-compatible API)"),
]


def build_parser(prog: str = "llamadesk") -> argparse.ArgumentParser:
    from common.version import __version__

    parser = argparse.ArgumentParser(
        prog=prog,
        description="LlamaDesk: chat with Llama 3 models on your own computer. "
                    "With no command, opens the window.")
    parser.add_argument("--version", action="version", version=f"LlamaDesk {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of an error (also: LLAMADESK_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        mod = importlib.import_module(cmd.module)
        mod.add_arguments(p)
        p.set_defaults(_module=cmd.module)
    return parser


def run_command(args: argparse.Namespace) -> int:
    mod = importlib.import_module(args._module)
    return int(mod.run(args) or 0)
