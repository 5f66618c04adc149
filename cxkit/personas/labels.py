"""Persona labels per customer: how other reports break their numbers down by persona.

:func:`persona_labels` gives every customer's persona name from the same model and
defaults as the personas report, so a persona means the same customers everywhere.
:func:`resolve_persona_labels` first takes labels the user supplied
(:func:`cxkit.voc.persona_labels`: a ``persona`` column in ``customers``, a
``_personas.parquet`` file in the data folder, or a file) and falls back to the model.
"""

from __future__ import annotations

from pathlib import Path

import ibis.expr.types as ir
import pandas as pd

from cxkit import scale as _scale
from cxkit import voc
from cxkit.cache import run_cached
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.personas.analysis import PersonasResult, fit_personas
from cxkit.personas.scale import label_table
from cxkit.result import AsOf

_MODEL_NOTE = "personas from the personas report's model"


def persona_labels(
    data: CXData,
    *,
    as_of: AsOf = None,
    random_state: int | None = 0,
    report: PersonasResult | None = None,
) -> pd.Series | ir.Table:
    """Return the persona name of every customer, from the personas report's model.

    Other reports (voice of the customer, CLV, the executive summary) break their
    numbers down by persona through this one function, so a persona means the same
    customers everywhere.

    Parameters
    ----------
    data
        The loaded data.
    as_of
        The last instant the personas may see (:func:`cxkit.data.resolve_as_of`).
    random_state
        Seed of the clustering (the personas report uses 0).
    report
        An already computed :func:`cxkit.personas.analyze` result, to avoid fitting
        twice (``as_of`` and ``random_state`` are then not used).

    Returns
    -------
    pandas.Series or ibis.expr.types.Table
        ``persona`` names (string) indexed by ``customer_id``; in scale mode
        (:mod:`cxkit.scale`) the engine table of ``customer_id`` and ``persona``
        (:func:`cxkit.personas.label_table`), which the breakdowns join in the engine.

    Raises
    ------
    NotAvailableError
        When the data has nothing to cluster on.
    """
    if report is None and _scale.current_settings().scale:
        # not through the run cache: an engine table cannot be passed between kernels
        # (label_table reads what the personas analysis wrote, cached itself)
        return label_table(data, as_of=as_of, random_state=random_state)
    return _model_labels(data, as_of=as_of, random_state=random_state, report=report)


@run_cached("personas.persona_labels")
def _model_labels(
    data: CXData,
    *,
    as_of: AsOf = None,
    random_state: int | None = 0,
    report: PersonasResult | None = None,
) -> pd.Series:
    """Return :func:`persona_labels` from the model, in memory (cached in a report run)."""
    if report is None:
        # the model only (cached): no journey map or themes for the labels
        report = fit_personas(data, as_of=resolve_as_of(data, as_of), random_state=random_state)
    a = report.assignments
    return pd.Series(
        a["persona_name"].astype("string").to_numpy(),
        index=pd.Index(a["customer_id"].astype("string"), name="customer_id"),
        name="persona",
    )


def resolve_persona_labels(
    data: CXData,
    *,
    as_of: AsOf = None,
    source: str | Path | None = "auto",
    folder: str | Path | None = None,
    random_state: int | None = 0,
) -> tuple[pd.Series | ir.Table | None, str]:
    """Return persona labels per customer for persona breakdowns, and where they came from.

    The labels a user supplied come first (:func:`cxkit.voc.persona_labels`); with
    ``source="auto"`` and none supplied, the personas report's model gives them
    (:func:`persona_labels`).

    Parameters
    ----------
    data
        The loaded data.
    as_of
        The last instant the model may see when it has to give the labels
        (:func:`cxkit.data.resolve_as_of`).
    source
        ``None`` (no personas), a path to a Parquet/CSV file with ``customer_id`` and
        ``persona`` columns, or ``"auto"``: the customers' ``persona`` column, else
        ``_personas.parquet`` in ``folder``, else the personas model.
    folder
        The data folder (for ``"auto"``).
    random_state
        Seed of the clustering when the model gives the labels.

    Returns
    -------
    (labels, note)
        A Series of persona names indexed by ``customer_id`` (or ``None``) and a
        sentence naming the source.

    Raises
    ------
    UsageError
        When ``source`` names a file that does not exist or lacks the columns.
    """
    labels, note = voc.persona_labels(data, source=source, folder=folder)
    if labels is not None or source != "auto":
        return labels, note
    try:
        labels = persona_labels(data, as_of=as_of, random_state=random_state)
    except NotAvailableError as err:
        return None, f"no persona labels: {err}"
    return labels, _MODEL_NOTE
