"""The run cache: one computation per report run, keyed exactly, never stale."""

from __future__ import annotations

import fcntl
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cxkit
from cxkit import cache
from cxkit.data import CXData, end_of_day, resolve_as_of


@pytest.fixture
def run_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


def _counting(kind: str = "test.count", **kw: Any) -> tuple[Any, list[tuple]]:
    calls: list[tuple] = []

    @cache.run_cached(kind, **kw)
    def count_orders(data: CXData, *, as_of: Any = None, scale: int = 1) -> int:
        calls.append((as_of, scale))
        end = resolve_as_of(data, as_of)
        return scale * int(data.upto(end).table("orders").count().to_pandas())

    return count_orders, calls


def test_without_a_run_cache_every_call_computes(
    demo_data: CXData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    fn, calls = _counting()
    assert fn(demo_data) == fn(demo_data)
    assert len(calls) == 2


def test_a_second_call_reads_the_first_result(demo_data: CXData, run_cache: Path) -> None:
    fn, calls = _counting()
    first = fn(demo_data)
    assert fn(demo_data) == first
    assert len(calls) == 1
    assert len(list(run_cache.glob("test.count-*.pkl"))) == 1
    log = Path(f"{run_cache}.log").read_text().splitlines()
    assert [line.split(maxsplit=4)[4] for line in log] == ["miss", "hit"]


def test_the_same_cut_shares_one_entry_other_arguments_do_not(
    demo_data: CXData, run_cache: Path
) -> None:
    fn, calls = _counting()
    end = resolve_as_of(demo_data, None)
    a = fn(demo_data)
    b = fn(demo_data, as_of=end)
    c = fn(demo_data.upto(end))
    assert a == b == c
    assert len(calls) == 1
    earlier = end - pd.Timedelta(days=200)
    d = fn(demo_data, as_of=earlier)
    e = fn(demo_data.upto(earlier))
    assert d == e < a
    assert fn(demo_data, scale=2) == 2 * a
    assert len(calls) == 3


def test_data_without_a_token_is_never_cached(run_cache: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["1", "2"],
            "customer_id": ["a", "b"],
            "ts": ["2024-01-02"] * 2,
            "amount": [1.0, 2.0],
        }
    )
    data = cxkit.load({"orders": orders})
    assert data.cache_token is None
    fn, calls = _counting()
    before = cache.cache_stats()["uncacheable"]
    assert fn(data) == fn(data) == 2
    assert len(calls) == 2
    assert cache.cache_stats()["uncacheable"] == before + 2
    assert not list(run_cache.glob("*.pkl")) if run_cache.exists() else True


def test_the_token_follows_the_files(demo_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_dir, copy)
    before = cxkit.load(copy).cache_token
    assert before is not None and before == cxkit.load(copy).cache_token
    other = tmp_path / "other"
    shutil.copytree(copy, other)
    assert cxkit.load(other).cache_token != before  # another folder is other data
    path = copy / "orders.parquet"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert cxkit.load(copy).cache_token != before


def test_warnings_are_raised_again_on_a_hit(demo_data: CXData, run_cache: Path) -> None:
    @cache.run_cached("test.warns")
    def noisy(data: CXData, *, as_of: Any = None) -> int:
        warnings.warn("the model is shaky", UserWarning, stacklevel=2)
        return 1

    with pytest.warns(UserWarning, match="the model is shaky"):
        noisy(demo_data)
    with pytest.warns(UserWarning, match="the model is shaky"):
        assert noisy(demo_data) == 1


def test_a_damaged_entry_is_recomputed(demo_data: CXData, run_cache: Path) -> None:
    fn, calls = _counting()
    value = fn(demo_data)
    (entry,) = run_cache.glob("test.count-*.pkl")
    entry.write_bytes(b"not a pickle")
    assert fn(demo_data) == value
    assert len(calls) == 2


def test_a_caller_waits_for_the_one_computing(demo_data: CXData, run_cache: Path) -> None:
    """While another process holds an entry's lock, a caller waits, then reads its result."""
    fn, calls = _counting()
    value = fn(demo_data)
    (entry,) = run_cache.glob("test.count-*.pkl")
    saved = entry.read_bytes()
    entry.unlink()
    lock = entry.with_suffix(".lock")
    got: list[int] = []
    with open(lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: got.append(fn(demo_data)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the caller should wait while the lock is held"
        entry.write_bytes(saved)  # the other process finishes and stores its result
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    worker.join(timeout=30)
    assert got == [value]
    assert len(calls) == 1  # read, not recomputed


def test_a_lock_held_too_long_means_compute_without_storing(
    demo_data: CXData, run_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn, calls = _counting()
    value = fn(demo_data)
    (entry,) = run_cache.glob("test.count-*.pkl")
    entry.unlink()
    monkeypatch.setattr(cache, "LOCK_WAIT_S", 0.3)
    with open(entry.with_suffix(".lock"), "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        assert fn(demo_data) == value
    assert len(calls) == 2
    assert not entry.exists()
    assert "lock wait timed out" in Path(f"{run_cache}.log").read_text()


def test_store_and_lookup_share_the_decorated_key(demo_data: CXData, run_cache: Path) -> None:
    from cxkit.validate import validate

    assert cache.store("validate", {"data": demo_data, "as_of": None}, ["stored"])
    assert cache.lookup("validate", {"data": demo_data, "as_of": None}) == (True, ["stored"])
    assert validate(demo_data) == ["stored"]  # the decorated function reads the stored entry
    assert cache.lookup("validate", {"data": demo_data, "as_of": "2020-01-01"}) == (False, None)


def test_a_cut_at_that_is_not_a_parameter_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="no parameter 'as_of'"):

        @cache.run_cached("test.bad")
        def f(data: CXData) -> int:
            return 0


def test_a_function_that_rounds_its_cut_is_keyed_on_its_own_cut(
    demo_data: CXData, run_cache: Path
) -> None:
    """A function that rounds a missing as_of up to the end of the day (as churn once
    did) is never keyed like an explicit as_of at a time of day."""

    def _cutoff_end(data: CXData, as_of: Any) -> pd.Timestamp:
        ts = resolve_as_of(data, as_of)
        return end_of_day(ts.normalize() if as_of is None else ts)

    calls: list[Any] = []

    @cache.run_cached("test.rounds", resolve=_cutoff_end)
    def cut_end(data: CXData, *, as_of: Any = None) -> str:
        calls.append(as_of)
        return str(_cutoff_end(data, as_of))

    noon = resolve_as_of(demo_data, None).normalize() - pd.Timedelta(days=3, hours=-12)
    explicit = cut_end(demo_data, as_of=noon)
    from_data = cut_end(demo_data.upto(noon))
    assert explicit == str(noon) and from_data == str(
        noon.normalize() + pd.Timedelta("1D") - pd.Timedelta("1us")
    )
    assert len(calls) == 2
    assert cut_end(demo_data.upto(noon)) == from_data and len(calls) == 2


def test_unhashable_cells_and_bad_dates_compute_without_the_cache(
    demo_data: CXData, run_cache: Path
) -> None:
    calls: list[int] = []

    @cache.run_cached("test.odd")
    def f(data: CXData, *, as_of: Any = None, extra: Any = None) -> int:
        calls.append(1)
        return 1

    f(demo_data, extra=pd.Series([[1, 2], [3]]))
    f(demo_data, extra=pd.Series([[1, 2], [3]]))
    f(demo_data, as_of="not a date")
    assert len(calls) == 3
    assert not list(run_cache.glob("test.odd-*.pkl"))
