"""Persona labels for the voice-of-the-customer breakdowns: their sources and their shape.

The breakdowns ``by="persona"`` need one persona name per customer. This module finds
labels that already exist — a ``persona`` column in ``customers``, a
``_personas.parquet`` file next to the data, or a file the user names — and never fits a
model: labels from the personas model come through
:func:`cxkit.personas.resolve_persona_labels`, which tries :func:`persona_labels` first.
So :mod:`cxkit.voc` does not import :mod:`cxkit.personas` (which uses
:func:`cxkit.voc.themes`), and there is no import cycle.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxkit.data import CXData
from cxkit.errors import UsageError

__all__ = ["PersonaLabels", "load_personas", "persona_frame", "persona_labels"]

#: Persona labels: a Series of names indexed by ``customer_id``, or a frame with
#: ``customer_id`` and ``persona`` columns.
PersonaLabels = pd.Series | pd.DataFrame

#: The file :func:`persona_labels` looks for in the data folder.
PERSONAS_FILE = "_personas.parquet"


def persona_frame(personas: PersonaLabels) -> pd.DataFrame:
    """Normalise persona labels to a frame with string ``customer_id`` and ``persona``.

    Parameters
    ----------
    personas
        A Series of names indexed by ``customer_id``, or a frame with ``customer_id``
        (or an index of IDs) and ``persona`` (or one other column).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and ``persona`` (both strings), one row per customer.

    Raises
    ------
    UsageError
        When the labels have neither shape.

    Examples
    --------
    >>> persona_frame(pd.Series(["a", "b"], index=["1", "2"])).to_dict("records")
    [{'customer_id': '1', 'persona': 'a'}, {'customer_id': '2', 'persona': 'b'}]
    """
    if isinstance(personas, pd.Series):
        df = personas.rename("persona").rename_axis("customer_id").reset_index()
    elif isinstance(personas, pd.DataFrame):
        df = personas
        if "customer_id" not in df.columns:
            df = df.rename_axis("customer_id").reset_index()
        if "persona" not in df.columns:
            others = [c for c in df.columns if c != "customer_id"]
            if len(others) != 1:
                raise UsageError(
                    "personas must have columns 'customer_id' and 'persona' (or be a Series "
                    f"indexed by customer_id); got columns {list(personas.columns)}"
                )
            df = df.rename(columns={others[0]: "persona"})
    else:
        raise UsageError(
            f"personas must be a pandas Series or DataFrame, got {type(personas).__name__}"
        )
    out = pd.DataFrame(
        {
            "customer_id": df["customer_id"].astype(str).to_numpy(),
            "persona": df["persona"].astype(str).to_numpy(),
        }
    )
    return out.drop_duplicates("customer_id")


def _as_series(df: pd.DataFrame) -> pd.Series:
    return persona_frame(df).set_index("customer_id")["persona"]


def load_personas(path: str | Path) -> pd.Series:
    """Read persona labels from a Parquet or CSV file with ``customer_id`` and ``persona``.

    Parameters
    ----------
    path
        The file (``.parquet``; anything else is read as CSV, every column as text).

    Returns
    -------
    pandas.Series
        Persona names indexed by ``customer_id``.

    Raises
    ------
    UsageError
        When the file does not exist or lacks one of the two columns.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"personas file not found: {str(path)!r}")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    if not {"customer_id", "persona"} <= set(df.columns):
        raise UsageError(
            f"personas file must have columns 'customer_id' and 'persona', got {list(df.columns)}"
        )
    return _as_series(df)


def persona_labels(
    data: CXData, source: str | Path | None = "auto", *, folder: str | Path | None = None
) -> tuple[pd.Series | None, str]:
    """Return the persona labels that come with the data, and a note naming their source.

    Parameters
    ----------
    data
        The loaded data (a ``persona`` column in ``customers`` is used first).
    source
        ``None`` (no personas), a path to a Parquet/CSV file with ``customer_id`` and
        ``persona`` columns (see :func:`load_personas`), or ``"auto"``: the customers'
        ``persona`` column, else ``_personas.parquet`` in ``folder``.
    folder
        The data folder (for ``"auto"``).

    Returns
    -------
    tuple of (pandas.Series or None, str)
        Persona names indexed by ``customer_id`` (``None`` when there are none) and a
        sentence naming where they came from (or starting "no persona labels").

    Raises
    ------
    UsageError
        When ``source`` names a file that does not exist or lacks the columns.

    Examples
    --------
    >>> import cxkit
    >>> d = cxkit.load({"customers": pd.DataFrame({"customer_id": ["1"], "persona": ["a"]})})
    >>> labels, note = persona_labels(d)
    >>> labels.to_dict(), note
    ({'1': 'a'}, 'persona labels from the customers table')
    """
    if source is None:
        return None, "no persona labels were given"
    if source != "auto":
        path = Path(source)
        return load_personas(path), f"persona labels from {path.name}"
    if data.has("customers", "persona"):
        df = data.table("customers").select("customer_id", "persona").to_pandas()
        return _as_series(df), "persona labels from the customers table"
    if folder is not None and (Path(folder) / PERSONAS_FILE).exists():
        return load_personas(Path(folder) / PERSONAS_FILE), f"persona labels from {PERSONAS_FILE}"
    where = f" or a {PERSONAS_FILE} file in the data folder" if folder is not None else ""
    return None, f"no persona labels in the customers table{where}"
