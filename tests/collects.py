"""Record what an engine hands to Python, to check that scale mode collects little."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ibis
import pytest


class Collects:
    """Record the rows of every result the DuckDB backend hands to Python."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[int] = []
        backend = type(ibis.duckdb.connect())
        for name in ("execute", "to_pyarrow"):
            orig = getattr(backend, name)
            monkeypatch.setattr(backend, name, self._wrap(orig))
        orig_batches = backend.to_pyarrow_batches

        def batches(con: Any, expr: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for b in orig_batches(con, expr, *args, **kwargs):
                self.rows.append(b.num_rows)
                yield b

        monkeypatch.setattr(backend, "to_pyarrow_batches", batches)

    def _wrap(self, orig: Any) -> Any:
        def run(con: Any, *args: Any, **kwargs: Any) -> Any:
            out = orig(con, *args, **kwargs)
            self.rows.append(len(out) if hasattr(out, "__len__") else 1)
            return out

        return run
