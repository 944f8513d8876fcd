"""The results table: rows replaced by configId, done = ok/diverged, parts and compaction, bad file.
(Concurrent writers and interrupted compactions: tests/test_sweep.py.)"""
import pandas as pd
import pytest

from harness.results import ResultsError, ResultsTable


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
    with pytest.raises(ResultsError, match="trials.parquet cannot be read"):
        ResultsTable(tmp_path)
    assert (tmp_path / "trials.parquet").read_bytes() == b"PAR1 torn"
