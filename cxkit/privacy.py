"""Pseudonymous customer IDs in everything a report run publishes.

Design
------
What is published
    ``cxkit report`` publishes HTML pages and the scorecard files (``scores.csv``,
    ``scores.parquet``). By default, every customer ID in them is a pseudonym: ``"c_"``
    and the first 16 hex characters of HMAC-SHA256(key, ID) (:func:`pseudonymize`). The
    same ID and key always give the same pseudonym, so a published list can be joined
    with the scorecard and followed from run to run; without the key it cannot be linked
    back to a customer.
Why a key
    Customer IDs are often sequential (``C0000001``, ``C0000002``, ...). A plain hash of
    such IDs is reversed by hashing every candidate, so IDs are never hashed without a
    secret key (HMAC, RFC 2104).
Where the key comes from (:func:`resolve_key`)
    The environment variable ``CXKIT_ID_KEY``; else ``publish: id_key:`` in
    ``reports.yml``; else a random key created once in ``<out>/_private/id_key`` (file
    mode 0600 in a 0700 folder, never published and never linked from the index), so
    the pseudonyms stay the same across runs into the same output folder. Whoever holds
    the key can map an ID to its pseudonym: ``pseudonymize(ids, key)``.
Opting out
    ``publish: customer_ids: clear`` in ``reports.yml`` (the default is
    ``pseudonymous``), or ``cxkit report --clear-ids``, publishes the IDs as they are.
How the mode and the key reach a notebook
    The runner passes the mode as the papermill parameter ``customer_ids`` to every
    notebook that declares it, and the key in the environment of its kernels
    (``CXKIT_ID_KEY``) — never as a parameter, since parameters are recorded in the
    executed notebooks and in ``manifest.json``. A notebook's own default is
    ``customer_ids = "clear"``: an analyst in JupyterLab sees the real IDs unless they
    ask for pseudonyms.
One gate
    Every table or file that carries customer IDs to a published page goes through
    :func:`published_ids` (the churn, CLV, voice-of-the-customer and summary tables,
    :func:`cxkit.summary.write_scores`); a page that shows them states that they are
    pseudonymous (:func:`show_ids_note`). The analyses themselves keep the real IDs.

Examples
--------
>>> pseudonymize(["C0000001", "C0000002", "C0000001"], "secret")
['c_40987911d013ac91', 'c_8ad448ff04fb946c', 'c_40987911d013ac91']
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cxkit.errors import UsageError
from cxkit.findings import takeaway

__all__ = [
    "KEY_ENV",
    "MODES",
    "PREFIX",
    "PRIVATE_DIR",
    "check_mode",
    "ids_note",
    "key_file",
    "pseudonymize",
    "published_ids",
    "resolve_key",
    "show_ids_note",
]

#: The ways customer IDs can be published; the first is the default of a report run.
MODES = ("pseudonymous", "clear")
#: The environment variable holding the key (also how the runner hands it to kernels).
KEY_ENV = "CXKIT_ID_KEY"
#: The folder under the output folder that holds what is never published.
PRIVATE_DIR = "_private"
#: What every pseudonym starts with, so that it never looks like a real ID.
PREFIX = "c_"
#: Hex characters kept of the HMAC: 64 bits, so two of 10 million customers share a
#: pseudonym with a chance of about 3 in a million (12 would make it about 16%).
HEX_CHARS = 16
_BLOCK = 64  # SHA-256's block size in bytes (RFC 2104)

#: What :func:`pseudonymize` takes and gives back in the same shape.
IDs = TypeVar("IDs", pd.Series, pd.Index, np.ndarray, list[Any], tuple[Any, ...], str, None)


def check_mode(mode: object) -> str:
    """Return ``mode`` when it is one of :data:`MODES`, else raise.

    Parameters
    ----------
    mode
        ``"pseudonymous"`` or ``"clear"``.

    Returns
    -------
    str
        ``mode``.

    Raises
    ------
    UsageError
        For any other value, listing the valid ones.

    Examples
    --------
    >>> check_mode("hashed")
    Traceback (most recent call last):
    ...
    cxkit.errors.UsageError: customer_ids must be 'pseudonymous' or 'clear', got 'hashed'
    """
    if mode not in MODES:
        raise UsageError(f"customer_ids must be 'pseudonymous' or 'clear', got {mode!r}")
    return str(mode)


def _key_bytes(key: str | bytes) -> bytes:
    """Return the key as bytes, refusing an empty one."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw.strip():
        raise UsageError(
            "the customer-ID key is empty: set a non-empty secret in the environment "
            f"variable {KEY_ENV} or in reports.yml (publish: id_key:)"
        )
    return raw


def _hasher(key: str | bytes) -> Callable[[str], str]:
    """Return a function mapping one ID text to its pseudonym (HMAC-SHA256, RFC 2104).

    The inner and outer pads are hashed once and copied per ID, which is about twice as
    fast as ``hmac.new`` per ID.
    """
    raw = _key_bytes(key)
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in raw)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in raw)).copy

    def one(text: str) -> str:
        i = inner()
        i.update(text.encode("utf-8"))
        o = outer()
        o.update(i.digest())
        return PREFIX + o.hexdigest()[:HEX_CHARS]

    return one


def _pseudonyms(
    values: pd.Series | pd.Index | np.ndarray | list[Any] | tuple[Any, ...], key: str | bytes
) -> np.ndarray:
    """Pseudonymise a 1-D sequence (missing values become None), each value hashed once."""
    if isinstance(values, list | tuple):
        values = np.array(values, dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    one = _hasher(key)
    texts = [u if type(u) is str else str(u) for u in uniques.tolist()]
    hashed = np.array([one(t) for t in texts] + [None], dtype=object)
    return hashed[codes]  # code -1 (missing) takes the trailing None


def pseudonymize(ids: IDs, key: str | bytes) -> IDs:
    """Replace customer IDs by keyed pseudonyms: ``"c_"`` + 16 hex of HMAC-SHA256(key, ID).

    Each distinct ID is hashed once, so a million IDs take well under a second.

    Parameters
    ----------
    ids
        One ID, or a pandas Series or Index, a numpy array, a list or a tuple of them.
        IDs are taken as text (``42`` and ``"42"`` give the same pseudonym).
    key
        The secret (:func:`resolve_key`); never empty.

    Returns
    -------
    same kind as ``ids``
        A Series keeps its index and name (and its dtype when that is a text dtype), an
        Index its name, an array its shape; missing values stay missing.

    Raises
    ------
    UsageError
        When ``key`` is empty.

    Examples
    --------
    >>> s = pd.Series(["C0000001", None], index=[7, 8], name="customer_id", dtype="string")
    >>> pseudonymize(s, "secret").tolist()
    ['c_40987911d013ac91', <NA>]
    >>> pseudonymize("C0000001", "another key") != pseudonymize("C0000001", "secret")
    True
    """
    if isinstance(ids, pd.Series):
        dtype = ids.dtype if pd.api.types.is_string_dtype(ids.dtype) else object
        return pd.Series(_pseudonyms(ids, key), index=ids.index, name=ids.name, dtype=dtype)
    if isinstance(ids, pd.Index):
        return pd.Index(_pseudonyms(ids, key), name=ids.name, dtype=object)
    if isinstance(ids, np.ndarray):
        return _pseudonyms(ids.ravel(), key).reshape(ids.shape)
    if isinstance(ids, list | tuple):
        out = _pseudonyms(ids, key).tolist()
        return out if isinstance(ids, list) else tuple(out)
    if ids is None or (not isinstance(ids, str) and pd.isna(ids)):
        _key_bytes(key)
        return ids
    return str(_pseudonyms([ids], key)[0])


def key_file(out: str | Path) -> Path:
    """Return where a report run keeps its generated key: ``<out>/_private/id_key``.

    Parameters
    ----------
    out
        The report output folder.

    Returns
    -------
    pathlib.Path
        The key file (it may not exist yet).
    """
    return Path(out) / PRIVATE_DIR / "id_key"


def _create_key(path: Path) -> None:
    """Write a new random key to ``path`` (0600, in a 0700 folder) unless one is there."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process just created
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read_or_create(path: Path) -> str:
    """Return the key in ``path``, creating it (0600, in a 0700 folder) when missing."""
    try:
        _create_key(path)
        os.chmod(path, 0o600)
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UsageError(
            f"cannot use the customer-ID key file {path} ({reason}): fix the permissions of "
            f"{path.parent}, or set the key in {KEY_ENV} or reports.yml (publish: id_key:)"
        ) from err
    if not key:
        raise UsageError(
            f"the customer-ID key file {path} is empty; delete it to make a new one "
            "(published pseudonyms then change), or set the key in "
            f"{KEY_ENV} or reports.yml (publish: id_key:)"
        )
    return key


def resolve_key(out: str | Path | None = None, *, config_key: str | None = None) -> str:
    """Return the customer-ID key: ``CXKIT_ID_KEY``, else ``config_key``, else the key file.

    Parameters
    ----------
    out
        The report output folder: when neither the environment nor ``config_key`` gives
        a key, it is read from ``<out>/_private/id_key`` (:func:`key_file`), which is
        created with a random key the first time. ``None``: no key file.
    config_key
        ``publish: id_key:`` from ``reports.yml``, or None.

    Returns
    -------
    str
        The key.

    Raises
    ------
    UsageError
        When no key is set and ``out`` is None, when a key is empty, or when the key file
        cannot be read.
    """
    for key in (os.environ.get(KEY_ENV), config_key):
        if key is not None:
            _key_bytes(key)
            return key
    if out is None:
        raise UsageError(
            "customer IDs are to be pseudonymous but no key is set: set the environment "
            f"variable {KEY_ENV} to a secret (cxkit report does this for its notebooks), "
            "pass key=..., or use customer_ids='clear' to show the IDs as they are"
        )
    return _read_or_create(key_file(out))


def published_ids(
    frame: pd.DataFrame,
    column: str = "customer_id",
    *,
    mode: str,
    key: str | bytes | None = None,
) -> pd.DataFrame:
    """Return ``frame`` as it may be published: ``column`` pseudonymised unless ``mode`` is clear.

    The one function every published table or file with customer IDs goes through.

    Parameters
    ----------
    frame
        A table with customer IDs.
    column
        The column holding them; a frame without it is returned as it is.
    mode
        ``"pseudonymous"`` or ``"clear"`` (:data:`MODES`); a notebook's ``customer_ids``.
    key
        The secret; None reads ``CXKIT_ID_KEY`` (which ``cxkit report`` sets).

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself when ``mode`` is ``"clear"`` or it has no ``column``, else a copy
        (same index, columns and ``attrs``) with :func:`pseudonymize` applied to ``column``.

    Raises
    ------
    UsageError
        For an unknown ``mode``, or a pseudonymous one without a key.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["C0000001"], "clv_52w": [12.5]})
    >>> published_ids(t, mode="pseudonymous", key="secret").customer_id.tolist()
    ['c_40987911d013ac91']
    >>> published_ids(t, mode="clear") is t
    True
    """
    if check_mode(mode) == "clear" or column not in frame.columns:
        return frame
    out = frame.copy()
    out[column] = pseudonymize(frame[column], key if key is not None else resolve_key())
    return out


def ids_note(mode: str) -> str:
    """Return the sentence a page with pseudonymous customer IDs shows ('' when clear).

    Parameters
    ----------
    mode
        ``"pseudonymous"`` or ``"clear"``.

    Returns
    -------
    str
        The note, or ``""``.

    Examples
    --------
    >>> ids_note("clear")
    ''
    """
    if check_mode(mode) == "clear":
        return ""
    return (
        "Customer IDs are pseudonymous (keyed hash); set publish.customer_ids: clear in "
        "reports.yml (or pass --clear-ids to cxkit report) to show them."
    )


def show_ids_note(mode: str) -> None:
    """Show :func:`ids_note` as a takeaway under a table of customers (nothing when clear).

    Parameters
    ----------
    mode
        ``"pseudonymous"`` or ``"clear"``.
    """
    text = ids_note(mode)
    if text:
        takeaway(text)
