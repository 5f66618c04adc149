"""Share expensive domain results between the notebooks of one report run.

Several reports need the same costly result: the executive summary needs the churn
analysis, the CLV fit and the personas; the lifecycle, CLV and voice-of-the-customer
reports all break their numbers down by persona. Within one ``cxkit report`` run the data
and ``as_of`` are fixed, so each result is computed once and read back by the others.

``cxkit report`` sets the environment variable :data:`CACHE_ENV` to a folder inside the
run (``_runs/<run_id>/cache``), which its notebook kernels inherit, and deletes that
folder when the run ends: nothing is reused across runs. Without the variable (an
analyst in JupyterLab, a test, a script) :func:`run_cached` functions simply compute.

A result is cached only when every argument can be identified exactly: the data through
:attr:`cxkit.data.CXData.cache_token` (set for folders and connection URLs, kept by
:meth:`~cxkit.data.CXData.upto`), plain values through their JSON form, pandas objects
through a hash of their content. Anything else (a live object, a callable) makes the call
compute as if there were no cache. Two kernels asking for the same result at once wait
for each other through a file lock, so it is still computed only once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cxkit.data import CXData, resolve_as_of
from cxkit.files import atomic_open
from cxkit.result import AsOf

__all__ = ["CACHE_ENV", "cache_dir", "cache_stats", "lookup", "run_cached", "store"]

#: Environment variable naming the run's cache folder (set by ``cxkit report``).
CACHE_ENV = "CXKIT_CACHE_DIR"

#: How long a kernel waits for another one computing the same result before computing it
#: itself (seconds).
LOCK_WAIT_S = 1800.0

T = TypeVar("T")

_stats = {"hits": 0, "misses": 0, "uncacheable": 0}


class _Uncacheable(Exception):
    """An argument cannot be identified exactly; compute without the cache."""


#: Stands for an argument that makes a call uncacheable.
_NO_KEY = object()


def cache_dir() -> Path | None:
    """Return the run's cache folder, or None when no report run set one.

    Returns
    -------
    pathlib.Path or None
        The folder named by :data:`CACHE_ENV`.
    """
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else None


def cache_stats() -> dict[str, int]:
    """Count the hits, misses and uncacheable calls in this process (tests, benchmarks).

    Returns
    -------
    dict of str to int
        ``{"hits": ..., "misses": ..., "uncacheable": ...}`` (a copy).
    """
    return dict(_stats)


def _identify(value: object) -> object:
    """Return a JSON-able identity of ``value``; raise _Uncacheable when there is none."""
    if isinstance(value, CXData):
        if value.cache_token is None:
            raise _Uncacheable("data without a cache token")
        return {"cxdata": value.cache_token}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return _identify(value.item())
    if isinstance(value, pd.Timestamp):
        return {"ts": value.isoformat()}
    if isinstance(value, pd.Timedelta):
        return {"td": value.isoformat()}
    if isinstance(value, list | tuple):
        return [type(value).__name__, [_identify(v) for v in value]]
    if isinstance(value, dict):
        items = ((type(k).__name__, str(k), _identify(v)) for k, v in value.items())
        return {"dict": sorted(items, key=lambda kv: (kv[0], kv[1]))}
    if isinstance(value, pd.Series | pd.DataFrame | pd.Index):
        try:
            hashed = pd.util.hash_pandas_object(value, index=not isinstance(value, pd.Index))
        except TypeError as err:  # cells holding lists or dicts
            raise _Uncacheable("pandas object with unhashable cells") from err
        digest = hashlib.sha256(hashed.to_numpy().tobytes())
        names = list(value.columns) if isinstance(value, pd.DataFrame) else [value.name]
        digest.update(json.dumps([str(n) for n in names]).encode())
        return {"pandas": digest.hexdigest()}
    raise _Uncacheable(f"argument of type {type(value).__name__}")


def _key(kind: str, params: dict[str, object]) -> str:
    ident = {"kind": kind, "params": {k: _identify(v) for k, v in params.items()}}
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextlib.contextmanager
def _locked(path: Path, wait_s: float) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yields False when it could not be had in time."""
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> tuple[bool, Any]:
    try:
        with open(path, "rb") as fh:
            return True, pickle.load(fh)
    except FileNotFoundError:
        return False, None
    except Exception:  # a damaged entry is recomputed, never trusted
        with contextlib.suppress(OSError):
            path.unlink()
        return False, None


def _write(path: Path, value: object) -> None:
    with atomic_open(path) as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _replay(entry: dict[str, Any]) -> object:
    """Re-issue the warnings the computation raised, so a hit warns like a miss."""
    for message, category in entry["warnings"]:
        warnings.warn(message, category, stacklevel=3)
    return entry["value"]


def _note(path: Path, what: str, t0: float) -> None:
    """Count and log a lookup: ``<cache folder>.log`` gets one line per call.

    A line is ``<unix time> pid=<pid> <kind>-<key> <seconds>s <hit|miss|...>``.
    """
    _stats["hits" if what == "hit" else "misses"] += 1
    took = time.monotonic() - t0
    line = f"{time.time():.3f} pid={os.getpid()} {path.stem} {took:.2f}s {what}\n"
    with contextlib.suppress(OSError), open(f"{path.parent}.log", "a") as fh:
        fh.write(line)


def _cut(
    params: dict[str, object],
    data_param: str,
    cut_at: str,
    resolve: Callable[[CXData, AsOf], pd.Timestamp] | None,
) -> dict[str, object]:
    """Key on the data cut at the resolved date (see ``run_cached(cut_at=...)``)."""
    data = params.get(data_param)
    if not isinstance(data, CXData) or data.cache_token is None:
        return params
    try:
        end = (resolve or resolve_as_of)(data, params.get(cut_at))
        return {**params, data_param: data.upto(end), cut_at: end}
    except Exception:  # let the function itself report a bad as_of
        return {**params, data_param: _NO_KEY}


def _entry(kind: str, params: dict[str, object], folder: Path | None = None) -> Path | None:
    folder = folder or cache_dir()
    if folder is None:
        return None
    try:
        key = _key(kind, params)
    except _Uncacheable:
        _stats["uncacheable"] += 1
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{key}.pkl"


def lookup(
    kind: str, params: dict[str, object], *, folder: str | Path | None = None
) -> tuple[bool, object]:
    """Look up a result in the cache.

    Parameters
    ----------
    kind
        The result's name, as given to :func:`run_cached`.
    params
        The function's arguments by name, defaults included.
    folder
        The cache folder; by default the run's (:data:`CACHE_ENV`).

    Returns
    -------
    tuple of (bool, object)
        ``(True, value)`` when the cache holds ``kind`` for ``params``, else
        ``(False, None)`` (also when there is no cache folder or the arguments
        cannot be keyed).
    """
    path = _entry(kind, params, Path(folder) if folder else None)
    if path is None:
        return False, None
    found, entry = _read(path)
    return (True, entry["value"]) if found else (False, None)


def store(
    kind: str, params: dict[str, object], value: object, *, folder: str | Path | None = None
) -> bool:
    """Put a result computed elsewhere into the cache.

    The pipeline stores its up-front validation so the data-health notebook reuses it.

    Parameters
    ----------
    kind
        The result's name, as given to :func:`run_cached`.
    params
        As for :func:`lookup`: the arguments by name, defaults included.
    value
        The result (picklable).
    folder
        The cache folder; by default the run's (:data:`CACHE_ENV`).

    Returns
    -------
    bool
        True when stored; False when there is no cache folder or ``params`` cannot be
        keyed.
    """
    path = _entry(kind, params, Path(folder) if folder else None)
    if path is None:
        return False
    _write(path, {"value": value, "warnings": []})
    return True


def run_cached(
    kind: str,
    *,
    cut_at: str | None = "as_of",
    resolve: Callable[[CXData, AsOf], pd.Timestamp] | None = None,
    ignore: tuple[str, ...] = (),
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a domain function so a report run computes it once for given arguments.

    Parameters
    ----------
    kind
        A stable name for the result (``"churn.analyze"``); part of the cache file name.
    cut_at
        The parameter holding the date up to which the function reads ``data`` (its
        first argument). The key then uses the resolved date and the data cut there, so
        ``f(data)``, ``f(data, as_of=end)`` and ``f(data.upto(end))`` share one entry.
        ``None`` for a function that reads every row whatever its ``as_of``, or for
        which ``as_of=None`` means "no cut" (the data is then keyed as passed).
    resolve
        How the function turns ``(data, as_of)`` into the instant it cuts at, when that
        is not :func:`cxkit.data.resolve_as_of` (e.g. one that rounds a missing
        ``as_of`` up to the end of the latest day).
    ignore
        Parameters that do not change the result (left out of the key).

    Returns
    -------
    callable
        The decorator: it returns a function with ``fn``'s signature that reads the
        cache, or computes and stores, when :func:`cache_dir` is set, and otherwise
        calls ``fn``.

    Raises
    ------
    TypeError
        When decorating a function that has no parameter ``cut_at``.

    Notes
    -----
    The key is built from all bound arguments, defaults applied, so ``f(data)`` and
    ``f(data, random_state=0)`` share an entry. Warnings raised while computing are kept
    with the result and raised again on every hit. Results are returned as read from
    the cache: treat them as read-only.
    """

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        sig = inspect.signature(fn)
        first = next(iter(sig.parameters))
        if cut_at is not None and cut_at not in sig.parameters:
            raise TypeError(f"{fn.__name__} has no parameter {cut_at!r} to cut the data at")

        @functools.wraps(fn)
        def inner(*args: object, **kwargs: object) -> T:
            if cache_dir() is None:
                return fn(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            params = {k: v for k, v in bound.arguments.items() if k not in ignore}
            if cut_at is not None:
                params = _cut(params, first, cut_at, resolve)
            path = _entry(kind, params)
            if path is None:
                return fn(*args, **kwargs)
            t0 = time.monotonic()
            found, entry = _read(path)
            if found:
                _note(path, "hit", t0)
                return _replay(entry)
            with _locked(path.with_suffix(".lock"), LOCK_WAIT_S) as have_lock:
                if have_lock:
                    found, entry = _read(path)
                    if found:
                        _note(path, "hit", t0)
                        return _replay(entry)
                with warnings.catch_warnings(record=True) as caught:
                    value = fn(*args, **kwargs)
                entry = {"value": value, "warnings": [(str(w.message), w.category) for w in caught]}
                if have_lock:
                    try:
                        _write(path, entry)
                    except Exception as err:  # a full disk must not lose a computed result
                        _note(path, f"not stored ({type(err).__name__})", t0)
                _note(path, "miss" if have_lock else "miss (lock wait timed out)", t0)
                return _replay(entry)

        inner.__wrapped__ = fn  # type: ignore[attr-defined]
        return inner

    return wrap
