"""The committed CDNOW files match the published raw files row for row."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import datasets
from cxkit.errors import DataError

RAW_DIR = datasets._RAW_DIRS[0]


def _raw(sample: bool) -> pd.DataFrame:
    path = RAW_DIR / datasets.RAW[sample]
    if not path.exists():
        pytest.skip(
            f"the raw CDNOW file {path} is absent (it lives in ../shared, next to the repo)"
        )
    return datasets.read_cdnow_raw(path)


@pytest.mark.parametrize("sample", [True, False], ids=["sample", "master"])
def test_committed_file_matches_raw_row_for_row(sample: bool) -> None:
    raw = _raw(sample)
    committed = datasets.cdnow_orders(sample)
    pd.testing.assert_frame_equal(committed, raw)


def test_raw_sample_is_the_published_one() -> None:
    raw = _raw(True)
    assert len(raw) == 6_919
    assert raw.customer_id.nunique() == 2_357
    master = _raw(False)
    assert len(master) == 69_659
    assert master.customer_id.nunique() == 23_570
    # The sample is a subset of the master: same order ids, same values.
    joined = raw.merge(master, on="order_id", suffixes=("", "_m"))
    assert len(joined) == len(raw)
    assert (joined.amount == joined.amount_m).all() and (joined.ts == joined.ts_m).all()


def test_load_cdnow_folder_keeps_ids_as_strings() -> None:
    data = cxkit.load(datasets._REPO / "data" / "cdnow")
    orders = data.to_pandas("orders")
    assert data.names == ["orders"]
    assert list(orders.columns) == ["order_id", "customer_id", "ts", "amount", "items"]
    assert orders.customer_id.iloc[0] == "00004"
    assert orders.order_id.iloc[0] == "00004-01"
    assert orders.order_id.is_unique
    assert orders.ts.min() == pd.Timestamp("1997-01-01")
    assert orders.ts.max() == pd.Timestamp("1998-06-30")
    assert str(orders.ts.dtype) == "datetime64[ns]"


def test_cdnow_master_loads() -> None:
    data = datasets.cdnow(sample=False)
    assert data.table("orders").count().to_pandas() == 69_659


def test_falls_back_to_raw_files(monkeypatch: pytest.MonkeyPatch) -> None:
    _raw(True)
    monkeypatch.setattr(datasets, "_committed_path", lambda sample: None)
    orders = datasets.cdnow_orders(True)
    assert len(orders) == 6_919
    assert datasets.cdnow(True).table("orders").count().to_pandas() == 6_919


def test_missing_everywhere_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_committed_path", lambda sample: None)
    monkeypatch.setattr(datasets, "_raw_path", lambda sample: None)
    with pytest.raises(DataError, match="CDNOW sample file was not found"):
        datasets.cdnow_orders(True)


def test_raw_checksums_match_the_readme() -> None:
    import hashlib
    import re

    readme = (datasets._REPO / "data" / "cdnow" / "README.md").read_text()
    listed = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)", readme))
    assert set(listed) == {"CDNOW_master.txt", "CDNOW_sample.txt"}
    for sample in (True, False):
        path = RAW_DIR / datasets.RAW[sample]
        if not path.exists():
            pytest.skip(f"the raw CDNOW file {path} is absent (it lives in ../shared)")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[path.name]
