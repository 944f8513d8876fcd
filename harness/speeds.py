"""The speed a sweep trains with (`--speed`): a variant of the packed engine by name (fp32, tf32,
bf16, graph, compile and their combinations: harness.engine.Speed), or `auto`, the fastest variant
that passed this device's GPU check.

`python -m harness.gpucheck` saves that verdict per device name in harness/speeds.json, beside
the measured rates (harness/rates.json), and each trial resolves `auto` on the device it trains
on (a cluster's GPUs need not be the driver's). Without a verdict `auto` trains fp32 and the
sweep says so. A row records the speed it trained with (`speed`); configs trained at different
speeds are the same config (the speed is no part of a config's id), as classifiers are.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.engine import Speed, SpeedUnsupported
from harness.errors import HarnessError
from harness.strict_json import dumps

VERDICTS_FILE = Path(__file__).with_name("speeds.json")
AUTO = "auto"
DEFAULT = {"cpu": "fp32", "cuda": AUTO}   # --speed's default by the trials' device kind


def check_name(name: str) -> str:
    """The canonical name of a --speed value ("tf32+graph" -> "graph+tf32"), or a HarnessError."""
    if name == AUTO:
        return name
    try:
        return Speed.parse(name).name
    except SpeedUnsupported as e:
        raise HarnessError(f"--speed {name}", str(e), "pass e.g. --speed fp32, bf16, graph+tf32, or auto") from None


def load_verdicts(path: Path = VERDICTS_FILE) -> dict[str, dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def save_verdict(device_name: str, verdict: dict, path: Path = VERDICTS_FILE) -> None:
    """Record a device's verdict: {"speed": the fastest variant that passed, "passed": [...],
    "measured": what measured it and when, ...}; other devices' verdicts are kept."""
    from harness.atomic import write_atomic
    verdicts = load_verdicts(path)
    verdicts[device_name] = verdict
    write_atomic(path, dumps(verdicts, indent=2, sort_keys=True) + "\n")


def resolve(requested: str, device_name: str, path: Path = VERDICTS_FILE) -> tuple[str, str]:
    """(the variant to train with, why): `auto` -> the device's saved verdict, else fp32."""
    if requested != AUTO:
        return requested, f"--speed {requested}"
    verdict = load_verdicts(path).get(device_name)
    if verdict and verdict.get("speed"):
        return verdict["speed"], (f"--speed auto: {verdict['speed']}, the fastest variant that passed the GPU check "
                                  f"on {device_name} ({verdict.get('measured', 'harness.gpucheck')})")
    return "fp32", (f"--speed auto: fp32, no GPU check verdict for {device_name} in {path.name} "
                    f"(python -m harness.gpucheck OUT records one)")
