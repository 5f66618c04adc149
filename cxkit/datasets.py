"""Bundled real data: the CDNOW purchase log.

CDNOW is the standard public benchmark for customer-base models (Fader, Hardie & Lee
2005; Fader & Hardie 2013): every purchase of the customers who first bought at CDNOW in
the first quarter of 1997, observed to the end of June 1998. The repository carries it in
the contract's ``orders`` shape:

* ``data/cdnow/orders.csv`` — the 1/10 sample (2,357 customers, 6,919 orders), so that
  ``cxkit.load("data/cdnow")`` works;
* ``data/cdnow_master/orders.csv.gz`` — the full cohort (23,570 customers, 69,659 orders).

Columns: ``order_id`` (customer id, ``-`` and the order's line number within that
customer in the source file, e.g. ``"00004-03"``), ``customer_id`` (the master file's
zero-padded id, a string), ``ts`` (the order date), ``amount`` (``dollar_value``, USD) and
``items`` (``number_of_cds``). The sample's order ids equal the master's for the same
orders. ``data/cdnow/README.md`` gives provenance, checksums and the published figures.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxkit.data import CXData, load, normalize_frame
from cxkit.errors import DataError

__all__ = ["cdnow", "cdnow_orders", "read_cdnow_raw"]

_REPO = Path(__file__).resolve().parent.parent
#: Where the committed, contract-shaped files live (relative to the repository root).
COMMITTED = {True: Path("data/cdnow/orders.csv"), False: Path("data/cdnow_master/orders.csv.gz")}
#: The raw files as published (kept next to the repository in ``../shared``).
RAW = {True: "CDNOW_sample.txt", False: "CDNOW_master.txt"}
_RAW_DIRS = (_REPO.parent / "shared" / "data" / "cdnow", _REPO / "data" / "cdnow" / "raw")


def read_cdnow_raw(path: str | Path, *, sample: bool | None = None) -> pd.DataFrame:
    """Read a raw CDNOW text file into the contract's ``orders`` shape.

    Parameters
    ----------
    path
        ``CDNOW_sample.txt`` (no header; master id, sample id, date, CDs, dollars) or
        ``CDNOW_master.txt`` (a header line; id, date, CDs, dollars).
    sample
        Which layout the file has; by default guessed from the file name.

    Returns
    -------
    pandas.DataFrame
        ``order_id, customer_id, ts, amount, items`` in the file's row order.
    """
    path = Path(path)
    if sample is None:
        sample = "sample" in path.name.lower()
    if sample:
        names = ["customer_id", "sample_customer_id", "date", "items", "amount"]
        raw = pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=str)
    else:
        names = ["customer_id", "date", "items", "amount"]
        raw = pd.read_csv(path, sep=r"\s+", header=0, names=names, dtype=str)
    line = raw.groupby("customer_id", sort=False).cumcount() + 1
    out = pd.DataFrame(
        {
            "order_id": raw["customer_id"] + "-" + line.map("{:02d}".format),
            "customer_id": raw["customer_id"],
            "ts": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype("float64"),
            "items": raw["items"].astype("int64"),
        }
    )
    return normalize_frame("orders", out)


def _raw_path(sample: bool) -> Path | None:
    """Return the raw CDNOW text file, if one is found."""
    for folder in _RAW_DIRS:
        path = folder / RAW[sample]
        if path.exists():
            return path
    return None


def _committed_path(sample: bool) -> Path | None:
    """Return the committed contract-shaped CDNOW file, if the checkout has it."""
    path = _REPO / COMMITTED[sample]
    return path if path.exists() else None


def cdnow_orders(sample: bool = True) -> pd.DataFrame:
    """Return the CDNOW orders as a pandas DataFrame in the contract's ``orders`` shape.

    Reads the committed ``data/cdnow`` (sample) or ``data/cdnow_master`` file; falls back
    to the raw text files in ``../shared/data/cdnow``.

    Parameters
    ----------
    sample
        True for the 2,357-customer sample, False for all 23,570 customers.

    Returns
    -------
    pandas.DataFrame
        ``order_id, customer_id, ts, amount, items`` with the contract's dtypes.

    Raises
    ------
    DataError
        When neither the committed file nor the raw file can be found.

    Examples
    --------
    >>> orders = cdnow_orders()
    >>> len(orders), orders.customer_id.nunique()
    (6919, 2357)
    """
    committed = _committed_path(sample)
    if committed is not None:
        df = pd.read_csv(committed, dtype={"order_id": str, "customer_id": str})
        df["ts"] = pd.to_datetime(df["ts"])
        return normalize_frame("orders", df)
    raw = _raw_path(sample)
    if raw is not None:
        return read_cdnow_raw(raw, sample=sample)
    raise DataError(
        f"the CDNOW {'sample' if sample else 'master'} file was not found",
        table="orders",
        fix=f"run from a cxkit checkout that has {COMMITTED[sample]}, or put {RAW[sample]} "
        f"in {_RAW_DIRS[0]}",
    )


def cdnow(sample: bool = True) -> CXData:
    """Load the CDNOW purchase log as a :class:`~cxkit.data.CXData` with one table, ``orders``.

    Parameters
    ----------
    sample
        True for the 2,357-customer sample, False for all 23,570 customers.

    Returns
    -------
    CXData
        The committed folder loaded with :func:`cxkit.load` (so it can be cached), or,
        without it, the raw files as in-memory data.

    Raises
    ------
    DataError
        As :func:`cdnow_orders`.

    Examples
    --------
    >>> data = cdnow()
    >>> data.names
    ['orders']
    """
    committed = _committed_path(sample)
    if committed is not None:
        return load(committed.parent)
    data = load({"orders": cdnow_orders(sample)})
    data.source = f"CDNOW {'sample' if sample else 'master'}"
    return data
