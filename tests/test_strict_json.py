"""harness.strict_json: what the harness writes as JSON parses under a strict parser (NaN and
infinities as null), numpy's numbers included."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.strict_json import dumps, finite_or_none


def strict_loads(text: str):
    """json.loads as JSON.parse and jq read: NaN, Infinity and -Infinity are errors."""
    def refuse(word):
        raise ValueError(f"{word} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null_at_any_depth():
    obj = {"Iprime": math.nan, "fid": math.inf, "low": -math.inf, "ok": 1.5, "n": 3, "flag": True, "none": None,
           "nested": {"perEpoch": [0.5, math.nan, (math.inf, 2.0)]}, "name": "NaN"}
    assert strict_loads(dumps(obj)) == {"Iprime": None, "fid": None, "low": None, "ok": 1.5, "n": 3, "flag": True,
                                        "none": None, "nested": {"perEpoch": [0.5, None, [None, 2.0]]}, "name": "NaN"}
    with pytest.raises(ValueError):
        strict_loads(json.dumps(obj))       # what json.dumps alone writes is not JSON


def test_numpy_numbers_are_written_as_numbers_or_null():
    obj = {"f32": np.float32(0.25), "f64": np.float64(np.nan), "i64": np.int64(7), "nan32": np.float32("nan")}
    assert strict_loads(dumps(obj)) == {"f32": 0.25, "f64": None, "i64": 7, "nan32": None}
    assert finite_or_none(np.int64(7)) == 7 and type(finite_or_none(np.int64(7))) is int


def test_default_converts_the_rest_and_its_results_are_made_finite_too():
    text = dumps({"path": Path("/x"), "later": {"rate": math.nan}}, indent=1,
                 default=lambda o: str(o) if isinstance(o, Path) else o)
    assert strict_loads(text) == {"path": "/x", "later": {"rate": None}}
    assert strict_loads(dumps({"obj": object()}, default=lambda o: math.inf)) == {"obj": None}
