"""How the tests hold one training run to another, on any CPU.

A pack member against its reference run, or a run against a record, differs by rounding where
the two sides take different kernels: a batched matmul and K plain ones do on an Intel Xeon with
AVX-512 and AMX (2e-6 relative over 3 steps), and Adam makes whole steps of such ulps, so that
a run's final I' moves with them. What holds on every CPU is what the GPU check's comparator
(`harness.tools.correctness.compare`) asks: the losses of the first steps within tight
tolerances (a planted bug shows there, at step 1), then the same status and a final I' within a
coarse bound.

Bit equality is guaranteed only where both sides take the same kernels. It is asserted on top
where this machine is the one tests/golden/smoke_rows.json was recorded on (the same CPU, as its
kernels see it, and the same torch build): there a regression of a single ulp still fails.
`pytest` names the CPU in its header, and whether the bit-level assertions are on.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest
import torch

from harness.provenance import cpu_kernels
from harness.tools.correctness import compare

GOLDEN = Path(__file__).parent / "golden" / "smoke_rows.json"
BIT_RTOL = 1e-5     # per-step (lossD, lossG), relative, where the kernels are the record's
SCORE_TOL = 1e-4    # I' (per epoch and final) and FID, absolute, likewise


@functools.cache
def recorded_machine() -> dict[str, str]:
    """The CPU and torch build the golden record was made with."""
    record = json.loads(GOLDEN.read_text())
    return {"cpu": record.get("cpu", "unrecorded"), "torch": record["torch"]}


def on_recorded_machine() -> bool:
    return recorded_machine() == {"cpu": cpu_kernels(), "torch": torch.__version__}


def machine_line() -> str:
    """One line for pytest's header: this CPU, and which assertions run on it."""
    if on_recorded_machine():
        return f"cpu: {cpu_kernels()}: the golden record's, bit-level assertions on"
    rec = recorded_machine()
    return (f"cpu: {cpu_kernels()}, torch {torch.__version__}: bit-level assertions off (the golden record "
            f"is {rec['cpu']}, torch {rec['torch']}); the calibrated comparator holds every run")


def assert_follows(member, ref, label: str, variant: str = "fp32") -> None:
    """`member` is `ref` up to rounding (on any CPU), and bit for bit on the recorded machine."""
    row = compare(member, ref, variant)
    assert row["status"] == "pass", f"{label} on {cpu_kernels()}: {row['reason']}"
    assert member.steps == ref.steps and len(member.lossHistory) == len(ref.lossHistory) == ref.steps, label
    assert len(member.IprimePerEpoch) == len(ref.IprimePerEpoch), label
    if ref.status != "ok":
        assert math.isnan(member.Iprime) and member.samplesPath is None, label
    if on_recorded_machine():
        assert_bit_level(member, ref, label)


def assert_bit_level(member, ref, label: str) -> None:
    got, want = torch.tensor(member.lossHistory), torch.tensor(ref.lossHistory)
    torch.testing.assert_close(got, want, rtol=BIT_RTOL, atol=0, equal_nan=True,
                               msg=lambda m: f"{label} (bit level, {cpu_kernels()}): {m}")
    assert member.IprimePerEpoch == pytest.approx(ref.IprimePerEpoch, abs=SCORE_TOL), label
    if ref.status == "ok":
        assert member.Iprime == pytest.approx(ref.Iprime, abs=SCORE_TOL), label
        assert member.fid == pytest.approx(ref.fid, abs=SCORE_TOL * max(1.0, abs(ref.fid))), label
        assert member.classHist == ref.classHist, label
