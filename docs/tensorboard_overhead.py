"""What the sweep's TensorBoard runs cost its driver, on the overhead grid of `python -m harness.bench --sweep`.

    PYTHONPATH=. python docs/tensorboard_overhead.py --data-dir DIR [--sample 800] [--order off,on,off,on,on,off]

The tiny Table 1 grid of the sweep benchmark (Table 1's counts and packing, widths of 4-7 units,
one step per run), a stratified random sample of it (--sample N configs, so that a run takes
minutes, not the whole grid's), through the real sweep (embedded Ray Tune, 2 slots), with the
TensorBoard runs off and on in the order given (alternated, so that a machine whose load drifts
biases neither). Prints each sweep's wall time and driver CPU, then the effect of `on` on the
wall time with the drift fitted out (least squares: wall ~ 1 + position + on).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.data import resolve_data_dir
from harness.executors import SweepOptions
from harness.grid import load_grid
from harness.results import ResultsTable
from harness.sweep import run_sweep
from harness.tools.bench import table1_pack_size, tiny_table1_grid


def one_sweep(grid, results: Path, data_dir: str, sample: int, tensorboard: bool) -> tuple[float, float, int, int]:
    """(wall s, driver CPU s, rows, TensorBoard runs) of one sweep of the sample."""
    t0, c0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    with contextlib.redirect_stdout(io.StringIO()):
        run_sweep(grid, SweepOptions(results=results, executor="ray", data_dir=data_dir, pack_size=table1_pack_size,
                                     sample=sample, tensorboard=tensorboard))
    wall, c1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF)
    logs = results / grid.name / "tensorboard"
    runs = len(list(logs.rglob("events.out.tfevents.*"))) if logs.exists() else 0
    return wall, c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, len(ResultsTable(results / grid.name).df), runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", type=int, default=800)
    p.add_argument("--order", default="off,on,off,on,on,off")
    args = p.parse_args()
    data_dir = str(resolve_data_dir(args.data_dir))
    order = args.order.split(",")
    work = Path(tempfile.mkdtemp(prefix="tb-overhead-"))
    try:
        grid = load_grid(tiny_table1_grid(work))
        walls = []
        for i, mode in enumerate(order):
            wall, cpu, rows, runs = one_sweep(grid, work / f"{i}-{mode}", data_dir, args.sample, mode == "on")
            walls.append(wall)
            print(f"{mode:>3}: {rows} rows, {runs} TensorBoard runs, wall {wall:.1f} s, driver CPU {cpu:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    on = np.array([m == "on" for m in order], float)
    x = np.c_[np.ones(len(order)), np.arange(len(order)), on]
    coef, *_ = np.linalg.lstsq(x, np.array(walls), rcond=None)
    resid = np.array(walls) - x @ coef
    se = np.sqrt(resid @ resid / max(1, len(order) - 3) * np.linalg.inv(x.T @ x)[2, 2])
    off_mean = np.mean([w for w, m in zip(walls, order) if m == "off"])
    print(f"TensorBoard on, drift fitted out: {coef[2]:+.1f} s +- {se:.1f} s "
          f"({100 * coef[2] / off_mean:+.1f}% +- {100 * se / off_mean:.1f}% of the mean off sweep)")


if __name__ == "__main__":
    main()
