"""The conversation list: new, search, rename, pin, archive, delete with undo."""
