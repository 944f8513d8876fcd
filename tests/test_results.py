"""The results table: rows replaced by configId, done = ok/diverged, parts and compaction, a bad
file, writers that compact concurrently, a compaction killed before its deletes."""
import subprocess
import sys

import pandas as pd
import pytest

from harness.results import ResultsError, ResultsTable
from tests.helpers import REPO


def row(cid, status, iprime=1.0):
    return {"configId": cid, "status": status, "Iprime": iprime, "IprimePerEpoch": [0.5, iprime],
            "classHist": [1] * 10, "error": None if status != "error" else "boom"}


def test_add_replace_and_done_ids(tmp_path):
    t = ResultsTable(tmp_path / "g")
    assert t.done_ids() == set()
    t.add([row("a", "ok"), row("b", "error")])
    t.add([row("c", "diverged", float("nan"))])
    again = ResultsTable(tmp_path / "g")                     # re-read from disk
    assert set(again.df["configId"]) == {"a", "b", "c"} and again.done_ids() == {"a", "c"}
    again.add([row("b", "ok", 2.0)])                         # the retried error is replaced
    final = ResultsTable(tmp_path / "g").df.set_index("configId")
    assert len(final) == 3 and final.loc["b", "status"] == "ok" and list(final.loc["b", "IprimePerEpoch"]) == [0.5, 2.0]
    assert len(list((tmp_path / "g" / "parts").iterdir())) == 3       # one part per add, nothing else
    again.compact()                                                    # parts merged into the table
    assert not list((tmp_path / "g" / "parts").iterdir())
    assert {p.name for p in (tmp_path / "g").iterdir()} == {"trials.parquet", "parts", ".table.lock"}
    merged = ResultsTable(tmp_path / "g").df.set_index("configId")
    pd.testing.assert_frame_equal(merged.drop(columns="error"), final.drop(columns="error"))
    assert merged["error"].isna().equals(final["error"].isna())


def test_rows_of_different_columns_in_one_part_keep_every_column(tmp_path):
    t = ResultsTable(tmp_path)
    t.add([{"configId": "a", "status": "ok", "margin": 10.0}, {"configId": "b", "status": "ok", "gamma": 0.5}])
    df = ResultsTable(tmp_path).df.set_index("configId")
    assert df.loc["a", "margin"] == 10.0 and pd.isna(df.loc["a", "gamma"])
    assert df.loc["b", "gamma"] == 0.5 and pd.isna(df.loc["b", "margin"])


def test_unreadable_table_is_reported_not_replaced(tmp_path):
    (tmp_path / "trials.parquet").write_bytes(b"PAR1 torn")
    with pytest.raises(ResultsError, match="trials.parquet: cannot be read"):
        ResultsTable(tmp_path)
    assert (tmp_path / "trials.parquet").read_bytes() == b"PAR1 torn"


def test_rows_written_concurrently_are_all_kept(tmp_path):
    """Two writers add parts while each compacts: every row survives the merges."""
    code = """
import sys
from harness.results import ResultsTable
t = ResultsTable(sys.argv[1])
for i in range(40):
    t.add([{"configId": f"{sys.argv[2]}{i}", "status": "ok", "Iprime": float(i)}])
    if i % 7 == 0:
        t.compact()
t.compact()
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), w], cwd=REPO) for w in "ab"]
    reads = 0
    while any(p.poll() is None for p in procs):   # a reader meanwhile sees whole tables only
        ResultsTable(tmp_path)
        reads += 1
    assert all(p.wait() == 0 for p in procs) and reads
    df = ResultsTable(tmp_path).df
    assert sorted(df["configId"]) == sorted(f"{w}{i}" for w in "ab" for i in range(40))
    assert not list((tmp_path / "parts").glob("*.parquet"))


def test_a_part_left_by_a_killed_compaction_is_not_replayed(tmp_path):
    t = ResultsTable(tmp_path)
    t.add([{"configId": "x", "status": "error", "Iprime": float("nan")}])
    old_part = next((tmp_path / "parts").glob("*.parquet")).read_bytes()
    t.add([{"configId": "x", "status": "ok", "Iprime": 1.0}])
    names = sorted(p.name for p in (tmp_path / "parts").glob("*.parquet"))
    t.compact()
    # a compaction killed before its deletes would leave merged parts behind
    (tmp_path / "parts" / names[0]).write_bytes(old_part)
    assert ResultsTable(tmp_path).df.set_index("configId").loc["x", "status"] == "ok"
    t.add([{"configId": "y", "status": "ok", "Iprime": 2.0}])
    t.compact()   # the next compaction deletes the leftover, and the row stays right
    assert [p.name for p in (tmp_path / "parts").glob("*.parquet")] == []
    assert ResultsTable(tmp_path).df.set_index("configId").loc["x", "status"] == "ok"
