"""TensorBoard's view of a sweep: one run per (config, seed), its settings as HParams.

    python -m harness.tensorboard RESULTS [--logdir DIR] [--grid NAME]
    tensorboard --logdir RESULTS/<grid>/tensorboard

The sweep writes these runs as its rows land (`harness.rows.RowWriter`; `--no-tensorboard`
turns that off); the command above writes the same runs from an existing results table (one
written before this module, or merged from several machines). RESULTS is a grid's results
folder or a folder of them, as for the report. Each run, `<logdir>/<model>/<subgrid>/<configId>`,
holds:

- its settings as the HParams plugin's hyperparameters, under the paper's names (family, model,
  subgrid, Table 1's nLayerG ... lr, the family's own settings such as margin, seed) and its
  `status` (ok / diverged / error), so that the HParams tab can filter on it;
- its final scores as scalars (`Iprime`, `fid`, `inceptionScore` and the dataset's own
  measures such as `modesCaptured`), which the HParams tab shows as its metrics, beside the
  final losses (`lossD`, `lossG`);
- its curves: `IprimePerEpoch` (I' after each epoch) and a family's per-epoch measures
  (BEGAN's `MPerEpoch`, `kPerEpoch`), with epochs as steps;
- its sample picture (`samples`, the PNG of samples/ as it is) and every column of its row as
  a table (`row`: every setting, the error message of an error row, provenance).

Every scalar is named after the results-table column it comes from. The HParams tab lists the
metrics in that order (capitals first): I' comes first, and colours its parallel coordinates.

One event file per run, written whole and then renamed into place, its name saying which row
wrote it (`events.out.tfevents.<finishedAt>.<status>`): a run whose file is there is left
alone, so writing a table twice rewrites nothing; a newer row of the config (an error since
retried) replaces the run (a TensorBoard already showing the old one keeps it until restarted).

Why this writer: a run's records are all known when its row lands, so they are built from
TensorBoard's own protos, framed into one buffer (CRC-32C by google_crc32c, in C) and written
in one go: about 1 ms of the sweep driver's time per run. torch's `SummaryWriter` (a thread per
writer, a hand-over per record, tensorboard's CRC-32C in pure Python) takes about 20 ms per run
with its sample picture, minutes of the driver over Table 1. Its `hparams()` also writes an
experiment summary into every run, and TensorBoard takes the first run's as the whole
experiment's (a GAN run's would hide EBGAN's margin); tensorboard's own hparams API needs
TensorFlow. Without an experiment summary TensorBoard derives the hyperparameters from every
run and the metrics from every scalar, so runs added later, of any family, simply join.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import struct
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import google_crc32c
from PIL import Image
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo, SessionStartInfo
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.util.tensor_util import make_tensor_proto

from harness import datasets, families
from harness.errors import HarnessError, report
from harness.lock import FolderLock, LockHeld
from harness.results import PARTS, TABLE, ResultsTable
from harness.settings import TABLE1_SETTINGS

LOGDIR = "tensorboard"      # RESULTS/<grid>/tensorboard
IDENTITY = ("family", "model", "subgrid", "dataset")
FINAL = ("Iprime", "fid", "inceptionScore", "lossD", "lossG")   # every row's; then the dataset's own
PER_EPOCH = "PerEpoch"                                             # IprimePerEpoch, MPerEpoch, ...


class TensorBoardError(HarnessError):
    """The logs cannot be written where they were asked for."""


# -- what a row becomes ------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A numpy scalar (a row read from parquet) as the Python value; None for a missing one."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _finite(value: Any) -> float | None:
    value = _plain(value)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _series(values: Any) -> list:
    """A per-epoch column's values as a list ([] for a row without them)."""
    return [] if values is None or isinstance(values, (str, float, int)) else list(values)


def run_name(row: Mapping[str, Any]) -> str:
    """Where a row's run lives under the log folder: model, then optimizer subgrid (its own
    folders: adam/sgd/lr=0.001), then the config id (one per config and seed). TensorBoard's run
    filter then selects a model or a subgrid by its path."""
    return f"{row['model']}/{row['subgrid']}/{row['configId']}"


def event_file_name(row: Mapping[str, Any]) -> str:
    """The run's one event file, named after the row that wrote it (its finishedAt and status)."""
    return f"events.out.tfevents.{_seconds(row)[1]:.0f}.{row.get('status')}"


def hparams(row: Mapping[str, Any]) -> dict[str, Any]:
    """The run's hyperparameters: who it is, Table 1's settings, its family's own, its seed and
    its status. A setting the row lacks (a table from before it existed) is left out."""
    family = families.find(str(row.get("family")))
    names = (*IDENTITY, *TABLE1_SETTINGS, *(family.settings if family else ()), "seed", "status")
    values = {name: _plain(row.get(name)) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def scalars(row: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """(column, epoch, value) of every finite number the run is drawn with: each per-epoch
    column's curve at epochs 1, 2, ...; the final scores and losses at the last epoch scored."""
    out = []
    for column, values in row.items():
        if column.endswith(PER_EPOCH):
            curve = [(epoch, _finite(v)) for epoch, v in enumerate(_series(values), 1)]
            out += [(column, epoch, v) for epoch, v in curve if v is not None]
    last = len(_series(row.get("IprimePerEpoch")))
    dataset = datasets.find(str(_plain(row.get("dataset")) or datasets.DEFAULT))
    for column in (*FINAL, *(dataset.score_columns if dataset else ())):
        value = _finite(row.get(column))
        if value is not None:
            out.append((column, last, value))
    return out


def row_markdown(row: Mapping[str, Any]) -> str:
    """Every single-valued column of the row as a two-column markdown table (the Text tab)."""
    lines = ["| column | value |", "|---|---|"]
    for column, value in row.items():
        value = None if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) else _plain(value)
        if value is not None:
            lines.append(f"| {column} | {' '.join(str(value).replace('|', '/').split())} |")   # one line
    return "\n".join(lines)


def _seconds(row: Mapping[str, Any]) -> tuple[float, float]:
    """(start, end) of the run in seconds since the epoch, from the row's finishedAt and
    wallTime (0 for a row without them), so that a row always gives the same records."""
    try:
        end = datetime.fromisoformat(str(row["finishedAt"])).timestamp()
    except (KeyError, ValueError):
        end = 0.0
    return max(0.0, end - (_finite(row.get("wallTime")) or 0.0)), end


# -- the records -------------------------------------------------------------------------------

def _plugin_value(tag: str, plugin_metadata, tensor) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, metadata=plugin_metadata, tensor=tensor)])


def hparams_summaries(row: Mapping[str, Any]) -> list[Summary]:
    """The run's session start (its hyperparameters) and end (error rows end as failures, so
    that the HParams tab's status filter finds them too)."""
    start_s, end_s = _seconds(row)
    start = SessionStartInfo(start_time_secs=start_s)
    for name, value in hparams(row).items():
        if isinstance(value, bool):       # before int: a bool is an int to Python
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    status = api_pb2.STATUS_FAILURE if row.get("status") == "error" else api_pb2.STATUS_SUCCESS
    end = SessionEndInfo(status=status, end_time_secs=end_s)
    meta = hparams_metadata.create_summary_metadata
    return [_plugin_value(hparams_metadata.SESSION_START_INFO_TAG, meta(HParamsPluginData(session_start_info=start)),
                          hparams_metadata.NULL_TENSOR),
            _plugin_value(hparams_metadata.SESSION_END_INFO_TAG, meta(HParamsPluginData(session_end_info=end)),
                          hparams_metadata.NULL_TENSOR)]


def image_summary(tag: str, png: bytes) -> Summary:
    """A PNG as an image record, its bytes as they are (no decoding and encoding again)."""
    with Image.open(io.BytesIO(png)) as image:   # reads the header only
        (width, height), channels = image.size, {"L": 1, "LA": 2, "RGBA": 4}.get(image.mode, 3)
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=png))])


def text_summary(tag: str, markdown: str) -> Summary:
    return _plugin_value(tag, text_metadata.create_summary_metadata(display_name=tag, description=""),
                         make_tensor_proto(markdown))


def events(row: Mapping[str, Any], picture: bytes | None) -> list[Event]:
    """Every record of the row's run, in order: the file's version, the session's start and end,
    the scalars, the picture, the row as a table."""
    start, end = _seconds(row)
    last = len(_series(row.get("IprimePerEpoch")))
    out = [Event(wall_time=start, file_version="brain.Event:2")]
    out += [Event(wall_time=start, step=0, summary=s) for s in hparams_summaries(row)]
    out += [Event(wall_time=end, step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))
            for tag, step, value in scalars(row)]
    if picture is not None:
        out.append(Event(wall_time=end, step=last, summary=image_summary("samples", picture)))
    out.append(Event(wall_time=end, step=last, summary=text_summary("row", row_markdown(row))))
    return out


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC-32C, rotated and offset ("masked"), little-endian."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def event_file(records: Iterable[Event]) -> bytes:
    """Records framed as TensorBoard reads them (TFRecord: the length and its checksum, the
    proto and its checksum). tensorboard's own framing computes CRC-32C in Python, 20 ms for a
    sample picture; google_crc32c's C takes microseconds."""
    out = []
    for record in records:
        data = record.SerializeToString()
        length = struct.pack("<Q", len(data))
        out += [length, _masked_crc(length), data, _masked_crc(data)]
    return b"".join(out)


class RunLogs:
    """The runs under one log folder: `write(row)` writes a row's run unless it is there.

    `folder` is the grid's results folder, where a row's samplesPath points."""

    def __init__(self, logdir: Path, folder: Path):
        self.logdir, self.folder = Path(logdir), Path(folder)

    def has(self, row: Mapping[str, Any]) -> bool:
        """Whether the row's run is there, written from this very row."""
        return (self.logdir / run_name(row) / event_file_name(row)).is_file()

    def write(self, row: Mapping[str, Any]) -> bool:
        """Write the row's run; False when it is already there. A run written from another row of
        the config (an error since retried) is replaced. The file is written under a name
        TensorBoard ignores and then renamed: an event file that is there is whole. No fsync:
        these logs are a view of the table, which the command writes again."""
        if self.has(row):
            return False
        run = self.logdir / run_name(row)
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        pending = run / ".pending"
        pending.write_bytes(event_file(events(row, self._picture(row))))
        os.replace(pending, run / event_file_name(row))
        return True

    def _picture(self, row: Mapping[str, Any]) -> bytes | None:
        """The bytes of the row's sample picture; None for a row without one (diverged, error)."""
        path = _plain(row.get("samplesPath"))
        if not path:
            return None
        try:
            return (self.folder / path).read_bytes()   # relative to the grid folder, or absolute
        except FileNotFoundError:
            return None


# -- from a results table ----------------------------------------------------------------------

def grid_folders(results: Path, grid: str | None = None) -> list[Path]:
    """RESULTS itself if it is one grid's results folder, else its sub-folders that are."""
    def holds_table(folder: Path) -> bool:
        return (folder / TABLE).exists() or any((folder / PARTS).glob("*.parquet"))
    results = Path(results)
    if not results.is_dir():
        raise TensorBoardError(f"results folder {results}", "does not exist",
                               "pass the folder the sweep wrote (RESULTS or RESULTS/<grid name>)")
    folders = [results] if holds_table(results) else sorted(p for p in results.iterdir() if holds_table(p))
    folders = [f for f in folders if grid is None or f.name == grid]
    if not folders:
        raise TensorBoardError(f"results folder {results}", f"holds no results table{' of ' + grid if grid else ''}",
                               "run the sweep first, or pass the folder that holds trials.parquet")
    return folders


def write_table(folder: Path, logdir: Path, rows: Iterable[Mapping[str, Any]] | None = None) -> tuple[int, int]:
    """Every row's run of a grid's results table (or of `rows`): (runs written, already there)."""
    logs = RunLogs(logdir, folder)
    rows = ResultsTable(folder).df.to_dict("records") if rows is None else list(rows)
    written = sum(logs.write(row) for row in rows)
    return written, len(rows) - written


def write_grid(folder: Path, logdir: Path | None = None) -> tuple[Path, int, int]:
    """A grid's runs into `logdir`, or into its own tensorboard/ under the folder's sweep lock (a
    sweep running there writes its runs itself; two writers would race on a run): (the log
    folder, runs written, runs already there)."""
    if logdir is not None:
        return (logdir, *write_table(folder, logdir))
    try:
        with FolderLock(folder):
            return (folder / LOGDIR, *write_table(folder, folder / LOGDIR))
    except LockHeld as e:
        raise TensorBoardError(e.what, e.why, "let that sweep finish (a sweep writes its runs itself as its rows "
                               "land), or pass --logdir DIR to write them elsewhere") from None


def main(argv: list[str] | None = None) -> int:
    """Every grid's runs under RESULTS; the exit status (0, or 2 with one line on stderr)."""
    p = argparse.ArgumentParser(prog="python -m harness.tensorboard", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="RESULTS or RESULTS/<grid name>, as the sweep wrote it")
    p.add_argument("--logdir", type=Path, default=None,
                   help="where the runs go (default RESULTS/<grid>/tensorboard; <logdir>/<grid> if several)")
    p.add_argument("--grid", default=None, help="only this grid (its folder's name)")
    args = p.parse_args(argv)
    try:
        folders = grid_folders(args.results, args.grid)
        for folder in folders:
            logdir = args.logdir / folder.name if args.logdir and len(folders) > 1 else args.logdir
            logdir, written, there = write_grid(folder, logdir)
            print(f"{folder.name}: {written} runs written, {there} already there; "
                  f"view them: tensorboard --logdir {logdir}", flush=True)
    except HarnessError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
