"""Record what an engine hands to Python, to check that scale mode collects little.

:class:`Collects` records the rows of every result the DuckDB backend hands to Python, so
that a test states its bound in one line (``collects.assert_at_most(limit)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import pytest

from cxkit.scale import SCALE_ENV, ScaleSettings


class Collects:
    """Record the rows of every result the DuckDB backend hands to Python.

    The DuckDB backend class is patched through ``monkeypatch`` (so every connection is
    seen, until the patch is undone): ``execute`` and ``to_pyarrow`` record the length of
    their result (1 for a scalar), ``to_pyarrow_batches`` the rows of each batch.

    Parameters
    ----------
    monkeypatch : pytest.MonkeyPatch
        Undoing it stops the recording; what was recorded stays readable.

    Attributes
    ----------
    rows : list of int
        The rows of every result, in the order they were handed over (batches included).
    batches : list of int
        The rows of every streamed batch only.

    Examples
    --------
    In a test, ``Collects(monkeypatch)``; outside one, a ``MonkeyPatch`` context:

    >>> with pytest.MonkeyPatch.context() as mp:
    ...     collects = Collects(mp)
    ...     _ = ibis.memtable({"x": [1, 2, 3]}).to_pyarrow()
    >>> collects.rows
    [3]
    >>> collects.assert_at_most(3)
    >>> collects.assert_at_most(2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    AssertionError: a result of 3 rows was handed to Python, more than the limit of 2 rows...
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[int] = []
        self.batches: list[int] = []
        backend = type(ibis.duckdb.connect())
        for name in ("execute", "to_pyarrow"):
            orig = getattr(backend, name)
            monkeypatch.setattr(backend, name, self._wrap(orig))
        orig_batches = backend.to_pyarrow_batches

        def batches(con: Any, expr: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for b in orig_batches(con, expr, *args, **kwargs):
                self.rows.append(b.num_rows)
                self.batches.append(b.num_rows)
                yield b

        monkeypatch.setattr(backend, "to_pyarrow_batches", batches)

    @classmethod
    @contextmanager
    def in_scale_mode(cls, settings: ScaleSettings) -> Iterator[Collects]:
        """Run a ``with`` block in scale mode (``CXKIT_SCALE`` from ``settings``), recording.

        Parameters
        ----------
        settings : ScaleSettings
            The scale settings the block runs under.

        Yields
        ------
        Collects
            What the block handed to Python; readable after the block, when the settings
            and the recording are undone.

        Examples
        --------
        >>> limits = ScaleSettings(mode="scale", sample_rows=10, max_collect_rows=10)
        >>> with Collects.in_scale_mode(limits) as collects:
        ...     _ = ibis.memtable({"x": [1, 2]}).to_pyarrow()
        >>> collects.assert_at_most(limits.max_collect_rows)
        """
        with pytest.MonkeyPatch.context() as mp:
            collects = cls(mp)
            mp.setenv(SCALE_ENV, settings.to_json())
            yield collects

    def _wrap(self, orig: Any) -> Any:
        def run(con: Any, *args: Any, **kwargs: Any) -> Any:
            out = orig(con, *args, **kwargs)
            self.rows.append(len(out) if hasattr(out, "__len__") else 1)
            return out

        return run

    def largest(self) -> int:
        """The rows of the largest result handed to Python.

        Returns
        -------
        int
            ``max(rows)``.

        Raises
        ------
        AssertionError
            When nothing was handed to Python (a recorder that saw nothing proves nothing).
        """
        assert self.rows, "no result was handed from DuckDB to Python while recording"
        return max(self.rows)

    def assert_at_most(self, limit: int) -> None:
        """Assert that results were handed to Python and none had more than ``limit`` rows.

        Parameters
        ----------
        limit : int
            The most rows one result may have (e.g. ``max_collect_rows``).

        Raises
        ------
        AssertionError
            When nothing was recorded, or naming the largest results when one is too big.
        """
        largest = self.largest()
        assert largest <= limit, (
            f"a result of {largest:,} rows was handed to Python, more than the limit of "
            f"{limit:,} rows (the largest: {sorted(self.rows, reverse=True)[:5]})"
        )

    def clear(self) -> None:
        """Forget what was recorded so far (the recording goes on)."""
        self.rows.clear()
        self.batches.clear()
