"""One error style for every command: a single line on stderr,

    harness: <what>: <why>; fix: <how>

and an exit status (2, bad input, unless the error says otherwise). Raise a `HarnessError` (or a
subclass) with the three parts; a command's entry point catches it and returns `report(e)`.

This module imports nothing of the harness: it is the bottom of the layers.
"""
from __future__ import annotations

import sys


class HarnessError(Exception):
    """A problem the user can fix: what it concerns, why it is wrong, how to fix it. str() is one line."""

    def __init__(self, what: str, why: str, fix: str, code: int = 2) -> None:
        self.what, self.why, self.fix = what, why, fix
        self.code = code  # the exit status of a command that ends with it
        super().__init__(" ".join(f"{what}: {why}; fix: {fix}".split()))  # one line, whatever the parts hold

    def __reduce__(self):  # picklable (worker processes send errors back), whatever a subclass's __init__ takes
        return _rebuilt, (type(self), str(self), self.__dict__)


def _rebuilt(cls: type, line: str, state: dict) -> HarnessError:
    e = Exception.__new__(cls, line)
    e.__dict__.update(state)
    return e


def report(e: HarnessError) -> int:
    """Print `harness: <what>: <why>; fix: <how>` on stderr; the exit status to return."""
    print(f"harness: {e}", file=sys.stderr, flush=True)
    return e.code
