"""The results table: one row per (config, seed), in `RESULTS/<grid>/`.

    trials.parquet        the compacted table
    parts/*.parquet       rows added since the last compaction, one small file per finished trial

Why parts: rewriting the whole table after every finished trial grows with the table, so over
a Table 1-sized sweep it would cost the driver minutes; writing one small part does not.
The driver compacts the parts into `trials.parquet` now and then and at the end.

A reader (`ResultsTable(folder).df`, the report) sees the table followed by the parts in the
order they were written; a config's last row wins. Every file is written atomically (a
temporary file, then `os.replace`): a process killed at any moment leaves complete files only.
Compaction re-reads everything from disk under a file lock (`.table.lock`), writes the merged
table, then deletes the parts it merged, so a concurrent writer can never lose a row: its part
is either merged or left for the next compaction. The table records the names of the parts it
merged last (in its parquet metadata), so parts left behind by a compaction killed before its
deletes are known to be merged: readers skip them, and the next compaction deletes them.
"""
from __future__ import annotations

import fcntl
import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.atomic import write_atomic
from harness.errors import HarnessError

TABLE = "trials.parquet"
PARTS = "parts"
DONE = ("ok", "diverged")  # statuses that count as done; "error" rows are tried again
_META_KEY = b"harness.merged_parts"


class ResultsError(HarnessError):
    """The results table exists but cannot be read."""


def _read(path: Path) -> tuple[pa.Table, set[str]]:
    """A parquet file's rows and the names of the parts merged into it last."""
    try:
        with open(path, "rb") as f:  # one open file: a table replaced meanwhile is read whole, old or new
            table = pq.read_table(f)
    except FileNotFoundError:
        raise
    except Exception as e:  # arrow, OS and format errors alike
        raise ResultsError(str(path), f"cannot be read ({type(e).__name__})",
                           "restore it, or move it away to start the grid afresh") from None
    merged = (table.schema.metadata or {}).get(_META_KEY, b"")
    return table.replace_schema_metadata(None), set(json.loads(merged)) if merged else set()


def _merge(tables: list[pa.Table]) -> pd.DataFrame:
    """Rows of the tables in order, a config's last row winning. The tables are joined as Arrow
    tables (types promoted: a part whose `error` column is all null joins one with messages)
    and converted to pandas once."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pd.DataFrame()
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return df.drop_duplicates("configId", keep="last").reset_index(drop=True)


def _to_parquet(rows: pd.DataFrame | pa.Table, merged_parts: list[str] | None = None) -> bytes:
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
    if merged_parts:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               _META_KEY: json.dumps(merged_parts).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


class ResultsTable:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / TABLE
        self.parts = self.folder / PARTS
        self._seq = 0
        self._df = self._load()[0]
        self._added: list[pa.Table] = []   # merged into df when it is next read

    @property
    def df(self) -> pd.DataFrame:
        """Every row this table holds (as loaded, plus what was added since), a config's last row winning."""
        if self._added:
            loaded = [pa.Table.from_pandas(self._df, preserve_index=False)] if not self._df.empty else []
            self._df, self._added = _merge(loaded + self._added), []
        return self._df

    # -- reading ---------------------------------------------------------------------------

    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []

    def _load(self) -> tuple[pd.DataFrame, list[Path], list[Path]]:
        """(the rows, the parts they include, parts already in the table) as they are on disk now."""
        for attempt in range(5):
            try:
                table, merged = _read(self.path) if self.path.exists() else (pa.table({}), set())
                files = self._part_files()
                parts = [p for p in files if p.name not in merged]
                return _merge([table] + [_read(p)[0] for p in parts]), parts, [p for p in files if p.name in merged]
            except FileNotFoundError:  # a compaction (under its lock) merged and deleted it meanwhile
                if attempt == 4:
                    raise

    def done_ids(self) -> set[str]:
        if self.df.empty:
            return set()
        return set(self.df.loc[self.df["status"].isin(DONE), "configId"])

    # -- writing ---------------------------------------------------------------------------

    def add(self, rows: list[dict]) -> None:
        """Write rows as one new part (atomic; O(rows), whatever the size of the table)."""
        if not rows:
            return
        columns = dict.fromkeys(k for r in rows for k in r)   # every row's keys (a family's own settings)
        new = pa.table({k: [r.get(k) for r in rows] for k in columns})
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.parquet"
        write_atomic(self.parts / name, _to_parquet(new))
        self._added.append(new)

    def n_parts(self) -> int:
        return len(self._part_files())

    def compact(self) -> None:
        """Merge every part on disk into trials.parquet (under the table lock), then delete them."""
        with self.lock():
            df, parts, stale = self._load()
            if parts:
                write_atomic(self.path, _to_parquet(df, merged_parts=[p.name for p in parts]))
            for p in parts + stale:
                p.unlink(missing_ok=True)
            self._df, self._added = df, []

    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock on the table's files, held while they are merged."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".table.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
