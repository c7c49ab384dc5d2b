"""`llamadesk paths`: print the data folders in use."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from common.paths import data_paths

    p = data_paths()
    print(f"models:   {p.models}")
    print(f"chats:    {p.chats_db}")
    print(f"settings: {p.settings_file}")
    print(f"logs:     {p.logs}")
    print(f"cache:    {p.cache}")
    return 0
