"""Conversations: the message tree, the SQLite store, export and import."""
