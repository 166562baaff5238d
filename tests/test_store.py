"""The Parquet results store: schema enforcement, atomic writes, and readability by four engines."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from lrresults import schema as S
from lrresults import store


def _trial_row(**over):
    row = {
        "sweep_id": "s", "spec_hash": "abc", "workload": "synthetic", "strategy": "dals",
        "generation": "SOTA", "regime": "scratch", "stage": "tune", "trial_id": "t0", "trial_index": 0,
        "canonical": True,
        "seed": 0, "hparams": json.dumps({"lr": 0.03}), "status": "ok", "val_accuracy_final": 0.9,
        "val_accuracy_best": 0.95, "epochs_planned": 2, "epochs_run": 2, "wall_seconds": 1.5,
        "device": "cpu", "versions": "{}", "train_loss_final": 0.1,
    }
    row.update(over)
    return row


def test_schema_lists_every_table_and_documents_each_column():
    for name in ("trials", "epochs", "budget"):
        sch = S.schema(name)
        assert all(f.metadata[b"doc"] for f in sch)
        assert f"`{sch.names[0]}`" in S.markdown_table(name)
    with pytest.raises(ValueError, match="valid tables"):
        S.schema("nope")


def test_write_then_read_round_trips_types_and_nulls(tmp_path):
    path = store.write_table("trials", [_trial_row(), _trial_row(trial_id="t1", stage="seed",
                                                              val_accuracy_final=None)], str(tmp_path))
    assert path == f"{tmp_path}/trials.parquet"
    table = store.read_table("trials", str(tmp_path))
    assert table.schema.equals(S.schema("trials"))
    assert table.column("trial_index").type == pa.int32()
    assert table.column("val_accuracy_final").to_pylist() == [0.9, None]
    assert table.column("test_accuracy_final").null_count == 2


def test_rows_with_unknown_or_missing_columns_are_rejected_naming_them(tmp_path):
    with pytest.raises(ValueError, match="unknown columns \\['bogus'\\]"):
        store.write_table("trials", [_trial_row(bogus=1)], str(tmp_path))
    with pytest.raises(ValueError, match="non-nullable columns \\['status'\\]"):
        store.write_table("trials", [_trial_row(status=None)], str(tmp_path))
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_a_failed_rewrite_leaves_the_previous_file_intact(tmp_path):
    store.write_table("trials", [_trial_row()], str(tmp_path))
    with pytest.raises(ValueError):
        store.write_table("trials", [_trial_row(seed="not-an-int")], str(tmp_path))
    assert store.read_table("trials", str(tmp_path)).num_rows == 1
    assert sorted(os.listdir(tmp_path)) == ["trials.parquet"]


def test_missing_table_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="trials.parquet"):
        store.read_table("trials", str(tmp_path))
    assert not store.exists("trials", str(tmp_path))


def test_readable_by_pandas_duckdb_and_polars(tmp_path):
    store.write_table("trials", [_trial_row(), _trial_row(trial_id="t1", seed=1)], str(tmp_path))
    path = str(tmp_path / "trials.parquet")
    import duckdb
    import pandas as pd
    import polars as pl

    assert pd.read_parquet(path)["seed"].tolist() == [0, 1]
    assert duckdb.sql(f"select count(*) from '{path}'").fetchall() == [(2,)]
    assert pl.read_parquet(path)["trial_id"].to_list() == ["t0", "t1"]


def test_uri_paths_go_through_pyarrow_filesystems(tmp_path):
    uri = f"file://{tmp_path}/sweep"
    assert store.write_table("budget", [], uri) == f"{uri}/budget.parquet"
    assert store.read_table("budget", uri).num_rows == 0


def test_one_whole_file_writer_for_tables_and_the_sweeps_files(tmp_path, monkeypatch):
    """A results table and a sweep's own file go through the same `write_whole`: each is flushed to disk
    (one fsync each) before it is renamed into place, and no temporary file is left beside it."""
    from sweeps.record.storage import SweepDir

    synced = []
    real = os.fsync
    monkeypatch.setattr(store.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    store.write_table("trials", [_trial_row()], str(tmp_path))
    SweepDir(str(tmp_path)).write_text("record/run.json", "{}")
    assert len(synced) == 2
    assert (tmp_path / "record" / "run.json").read_text() == "{}"
    assert store.read_table("trials", str(tmp_path)).num_rows == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_write_that_fails_before_the_rename_keeps_the_old_file_and_no_copy(tmp_path, monkeypatch):
    from sweeps.record.storage import SweepDir

    sweep = SweepDir(str(tmp_path))
    sweep.write_text("progress.json", "old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        sweep.write_text("progress.json", "new")
    assert (tmp_path / "progress.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]
