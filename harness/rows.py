"""The sweep's sink: each finished trial's rows and sample PNGs into the results folder (and each
row's TensorBoard run, harness/tensorboard.py), a line per config, and '[done/total] ETA'
weighed by cost. The executors call it as trials progress (harness/executors/__init__.py gives
the contract)."""
from __future__ import annotations

import datetime as dt
import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomic import write_atomic
from harness.config import TrainConfig, scored_epochs
from harness.costmodel import fmt_duration
from harness.engine.loop import TrainResult
from harness.executors import SweepStop, disk_full
from harness.grid import Grid
from harness.results import ResultsTable
from harness.tensorboard import LOGDIR, RunLogs

COMPACT_EVERY_S = 30.0  # the driver merges the table's parts into trials.parquet this often


def row_for(cfg: TrainConfig, grid_name: str, result: dict) -> dict:
    """One results-table row: the paper's settings, identities, then the trainer's outputs."""
    return {**cfg.to_dict(), "model": cfg.model, "subgrid": cfg.subgrid, "configId": cfg.config_id,
            "settingsId": cfg.settings_id, "grid": grid_name, **result,
            "finishedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


@dataclass
class Progress:
    """'[done/total] ETA' of this invocation, weighing the work left by its cost, not its count.

    Costs are the cost model's seconds per pack (one unit per pack when no rate is measured). The
    observed speed is the cost finished (running packs counted by their epochs done) per second of
    wall time; the ETA is the cost left at that speed, or the projection before anything finished.
    What a resumed pack trained before this invocation (harness.engine.resume) is neither this
    invocation's speed nor left to do."""
    total: int
    already: int
    costs: list[float]
    projected: float | None
    started: float = field(default_factory=time.monotonic)
    finished: int = 0
    running: dict[int, float] = field(default_factory=dict)   # pack -> fraction done
    before: dict[int, float] = field(default_factory=dict)    # pack -> fraction done before it resumed
    cost_done: float = 0.0

    def __post_init__(self) -> None:
        self.cost_total = sum(self.costs)

    def epoch(self, pack: int, fraction: float, step: float = 0.0) -> None:
        """The pack's fraction done after an epoch; `step`, one epoch's fraction: a pack whose first
        report is past its first epoch resumed, and had `fraction - step` done before."""
        if self.running.get(pack, 0.0) == 0.0 and fraction > step + 1e-9:
            self.before[pack] = fraction - step
        self.running[pack] = fraction

    def pack_finished(self, pack: int, configs: int) -> None:
        self.running.pop(pack, None)
        self.finished += configs
        self.cost_done += self.costs[pack] * (1 - self.before.get(pack, 0.0))

    def eta_seconds(self) -> float | None:
        elapsed = time.monotonic() - self.started
        done = self.cost_done + sum(self.costs[p] * (f - self.before.get(p, 0.0)) for p, f in self.running.items())
        left = self.cost_total - sum(self.costs[p] * f for p, f in self.before.items()) - done
        if done > 0 and elapsed > 0 and self.finished:
            return left * elapsed / done
        if self.projected is not None:
            return max(0.0, self.projected - elapsed)
        return None

    def line(self) -> str:
        done = self.already + self.finished
        elapsed = dt.timedelta(seconds=round(time.monotonic() - self.started))
        eta = self.eta_seconds()
        return (f"[{done}/{self.total} done, {100 * done / self.total:.1f}%] elapsed {elapsed}, "
                f"ETA {fmt_duration(eta) if eta is not None else 'unknown'}")


class RowWriter:
    """The executors' sink: writes each finished trial's rows and PNGs into the results folder,
    and each row's TensorBoard run (`tensorboard=False`: none), prints a line per config and the
    progress line, compacts the table now and then. A full disk stops the sweep (`stop_reason`)."""

    def __init__(self, grid: Grid, table: ResultsTable, packs: list[list[TrainConfig]], progress: Progress,
                 stop: Callable[[], bool] | None = None, extra: dict | None = None, tensorboard: bool = False):
        self.grid, self.table, self.packs, self.progress = grid, table, packs, progress
        self.extra = extra or {}          # columns every row of this sweep gets (a sample's seed)
        self.written: set[str] = set()
        self.stop_reason: SweepStop | None = None
        self.interrupted = threading.Event()
        self.external_stop = stop
        self.last_compact = time.monotonic()
        self.board = RunLogs(table.folder / LOGDIR, table.folder) if tensorboard else None
        if self.board is not None:
            print(f"TensorBoard: tensorboard --logdir {self.board.logdir}", flush=True)

    @property
    def stopping(self) -> bool:
        """Asked before every training step (local executor) and between trials: Ctrl-C or SIGTERM,
        a full disk, or the caller's own `stop` (a deadline)."""
        if self.external_stop is not None and not self.interrupted.is_set() and self.external_stop():
            self.interrupted.set()
        return self.interrupted.is_set() or self.stop_reason is not None

    def started(self, pack: int) -> None:
        self.progress.epoch(pack, 0.0)

    def epoch(self, pack: int, epoch: int, scores: dict[str, float]) -> None:
        n = max(1, scored_epochs(self.packs[pack][0]))
        self.progress.epoch(pack, min(1.0, epoch / n), 1 / n)

    def finished(self, pack: int, rows: list[dict]) -> None:
        configs = {c.config_id: c for c in self.packs[pack]}
        out = []
        try:
            for r in rows:
                res = r["result"]
                if r.get("png") is not None:
                    rel = Path("samples") / f"{r['configId']}.png"
                    write_atomic(self.table.folder / rel, r["png"])
                    res["samplesPath"] = str(rel)
                out.append((configs[r["configId"]], res))
            self._write(pack, out)
        except OSError as e:
            self._os_error(e)

    def failed(self, pack: int, message: str, provenance: dict | None = None) -> None:
        """Error rows for the pack's configs without a row, with the failed trial's provenance
        columns (where and with what it failed) when the executor has them."""
        missing = [c for c in self.packs[pack] if c.config_id not in self.written]
        try:
            self._write(pack, [(c, {**TrainResult.failed(message[:500]), **(provenance or {})}) for c in missing])
        except OSError as e:
            self._os_error(e)

    def stop(self, reason: SweepStop) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def _os_error(self, e: OSError) -> None:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            self.stop_reason = disk_full(self.table.folder, "the results folder")
        else:
            self.stop_reason = SweepStop(f"the results folder {self.table.folder}", f"cannot be written ({e})",
                                         "check the folder and run the same command to resume", 2)

    def _write(self, pack: int, rows: list[tuple[TrainConfig, dict]]) -> None:
        written = [{**row_for(cfg, self.grid.name, res), **self.extra} for cfg, res in rows]
        self.table.add(written)
        self._tensorboard(written)
        self.written.update(cfg.config_id for cfg, _ in rows)
        self.progress.pack_finished(pack, len(rows))
        for cfg, res in rows:
            score = f"I'={res['Iprime']:.3f}" if res["status"] == "ok" else res["status"]
            if res["status"] == "error":
                score += f" ({res['error']})"
            print(f"finished {cfg.config_id} {cfg.model} nLayerG={cfg.nLayerG} nLayerD={cfg.nLayerD} "
                  f"sizeG={cfg.sizeG} sizeD={cfg.sizeD} dropoutD={cfg.dropoutD} {cfg.subgrid} "
                  f"seed={cfg.seed}: {score}", flush=True)
        print(self.progress.line(), flush=True)
        if time.monotonic() - self.last_compact > COMPACT_EVERY_S:
            self.compact()

    def _tensorboard(self, rows: list[dict]) -> None:
        """Each row's TensorBoard run. The rows are what counts: a run that cannot be written (but
        for the disk, which stops the sweep as for rows) turns the logs off with a line saying how
        to write them later."""
        if self.board is None:
            return
        try:
            for row in rows:
                self.board.write(row)
        except Exception as e:
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise   # finished() stops the sweep
            print(f"warning: TensorBoard logs turned off: {type(e).__name__}: {e}; the rows are kept; write the "
                  f"runs later with: python -m harness.tensorboard {self.table.folder}", flush=True)
            self.board = None

    def compact(self) -> None:
        self.table.compact()
        self.last_compact = time.monotonic()
