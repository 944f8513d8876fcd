"""JSON as strict parsers read it: every JSON the harness writes (a file or a command's output)
goes through `dumps`.

Python's json module writes a NaN or an infinity as the bare words `NaN` and `Infinity`, which
are not JSON: `JSON.parse`, `jq` and most readers reject the whole document. A score is NaN
when there was nothing to score (samples that are all NaN, a diverged run), so `dumps` writes
every non-finite number as `null`, and refuses (ValueError) anything that would still come out
as one of those words.

This module imports nothing of the harness: it is on the bottom floor, with harness.atomic.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN or infinite number inside dicts, lists and tuples replaced by None,
    and numpy's numbers as Python's (json writes those); everything else as it was."""
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):   # float, numpy.float32, ...
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """json.dumps of `obj` with non-finite numbers as null (finite_or_none) and allow_nan=False.
    `default`, when given, converts what json cannot write; its results are made finite too."""
    default = kwargs.pop("default", None)
    if default is not None:
        kwargs["default"] = lambda o: finite_or_none(default(o))
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
