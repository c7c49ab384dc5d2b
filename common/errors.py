"""The one base class of errors whose message is meant for the user.

Raise a subclass (or ``UserError`` itself) with one sentence that says what went
wrong and, where there is one, what to do. Front ends show ``str(error)`` as it is:
the CLI prints it and exits non-zero, the window shows it. Anything else that
escapes is a bug: it is logged with its traceback and reported as unexpected.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can understand and act on; ``str()`` is the sentence to show."""
