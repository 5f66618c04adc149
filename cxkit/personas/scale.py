"""The personas analysis in scale mode: fit on a sample, assign in batches, count in the engine.

:func:`analyze_scale` gives what :func:`cxkit.personas.analyze` gives without holding
any per-customer frame above ``max_collect_rows`` (:mod:`cxkit.scale`):

- the raw per-customer aggregates stay an ibis expression
  (:func:`~cxkit.personas.features.raw_feature_expr`);
- k selection, the fit, per-persona stability, the profiles and the rule tree run on a
  deterministic sample of at most ``sample_rows`` customers, stratified by whether the
  customer bought (:func:`cxkit.scale.stratified_sample`);
- every customer is assigned to the nearest centroid (the sample's scaling) in batches of
  ``batch_rows`` and the labels are written back as an engine table (default
  ``cxkit_persona_labels``: ``customer_id``, ``persona``, ``persona_name``);
- persona sizes are exact engine counts on that table; the journey map, channel shares
  and pain points (with their tests) are engine aggregates joined to it.

Not in scale mode: comment themes (the topic model reads every comment into memory).
:func:`label_table` gives the other reports the labels table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import ibis.expr.types as ir
import pandas as pd

from cxkit import scale as _scale
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.personas.analysis import (
    PersonasResult,
    add_journey_tables,
    analyze,
    persona_min_customers,
)
from cxkit.personas.features import FEATURE_FLAGS, SUPPORT_EVENTS, derive_features, raw_feature_expr
from cxkit.personas.model import Personas, assign
from cxkit.result import AsOf
from cxkit.scale import ScaleSettings

__all__ = ["LABELS_TABLE", "ScalePersonaResult", "analyze_scale", "label_table"]

#: The engine table the scale-mode persona labels are written to.
LABELS_TABLE = "cxkit_persona_labels"


@dataclass(kw_only=True)
class ScalePersonaResult(PersonasResult):
    """A personas result computed in scale mode (:func:`analyze_scale`).

    :attr:`features` holds the sample's features only and :attr:`assignments` is empty:
    every customer's persona is the engine table :attr:`labels_table`. The model's
    ``sizes_`` are the exact counts on that table; its profiles, stability and rules
    come from the sample.

    Attributes
    ----------
    mode
        ``"scale"``.
    settings
        The limits used.
    labels_table
        The engine table ``customer_id``, ``persona``, ``persona_name``.
    n_customers
        Customers assigned (all of them).
    sample_n
        Customers in the sample the model was fitted on.
    """

    mode: str = "scale"
    settings: ScaleSettings = field(default_factory=lambda: ScaleSettings(mode="scale"))
    labels_table: str = LABELS_TABLE
    n_customers: int = 0
    sample_n: int = 0

    @property
    def mode_sentence(self) -> str:
        """Say how scale mode ran: the sample, the labels table, the collect limit."""
        fitted = (
            f"on all {self.n_customers:,} customers (no more than the sample size)"
            if self.sample_n >= self.n_customers
            else f"on a stratified sample of {self.sample_n:,} of {self.n_customers:,} "
            "customers (k selection, stability, profiles and rules from the sample)"
        )
        return (
            f"Scale mode: personas fitted {fitted}; every customer assigned in batches, labels "
            f"written to table {self.labels_table}; persona sizes, journey map and pain "
            f"points counted on that table; no per-customer frame over "
            f"{self.settings.max_collect_rows:,} rows collected."
        )


def analyze_scale(
    data: CXData,
    *,
    as_of: AsOf = None,
    k: int | str = "auto",
    k_range: tuple[int, int] = (2, 10),
    random_state: int | None = 0,
    model_options: Mapping[str, object] | None = None,
    settings: ScaleSettings | None = None,
    table: str = LABELS_TABLE,
) -> ScalePersonaResult:
    """Run the personas analysis in scale mode (see the module docstring).

    Parameters
    ----------
    data, as_of, k, k_range, random_state
        As in :func:`cxkit.personas.analyze`.
    model_options
        Further :class:`~cxkit.personas.Personas` options.
    settings
        The limits (default :func:`cxkit.scale.current_settings`, in scale mode).
    table
        The engine table the labels are written to.

    Returns
    -------
    ScalePersonaResult
        The result; :attr:`~ScalePersonaResult.mode_sentence` says what was sampled.

    Raises
    ------
    NotAvailableError
        When the data has neither orders nor events, or too few customers to cluster.
    UsageError
        When ``batch_rows`` exceeds ``max_collect_rows``.
    ScaleLimitError
        When a frame to collect would exceed ``max_collect_rows``.
    """
    settings = _scale.scale_mode_settings(settings)
    cut = resolve_as_of(data, as_of)
    expr, cats, flags = raw_feature_expr(data, as_of=cut, support_events=SUPPORT_EVENTS)
    kw = {f: flags[f] for f in FEATURE_FLAGS}
    by = None
    if flags["has_orders"]:  # buyers and non-buyers keep their shares in the sample
        expr = expr.mutate(_cx_buyer=(expr.orders.fill_null(0) > 0).cast("int8"))
        by = "_cx_buyer"
    samp = _scale.stratified_sample(expr, by=by, n=settings.sample_rows)
    n_all = samp.total
    need = persona_min_customers(k, k_range)
    if need is not None and n_all < need:
        raise NotAvailableError(
            f"more customers — too few customers to cluster (n={n_all:,}, need ≥ {need}); "
            "use data with more customers or a smaller k / k_range",
            analysis="The persona model",
        )
    cols = [c for c in expr.columns if c != "_cx_buyer"]
    raw = _scale.bounded_to_pandas(
        samp.expr.select(cols), what="persona features sample", settings=settings
    )
    feats = derive_features(raw, cut, cats, **kw)  # type: ignore[arg-type]
    model = Personas(k=k, k_range=k_range, random_state=random_state, **dict(model_options or {}))
    model.fit(feats)
    names = list(model.feature_names_in_)

    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        f = derive_features(batch, cut, cats, **kw)  # type: ignore[arg-type]
        # a one-hot level absent from this batch is 0 for all its rows
        f = f.reindex(columns=names, fill_value=0.0)
        out = assign(model, f)
        return pd.DataFrame(
            {
                "customer_id": out["customer_id"].astype(str).to_numpy(),
                "persona": out["persona"].astype("int64").to_numpy(),
                "persona_name": out["persona_name"].astype(str).to_numpy(),
            }
        )

    labels = _scale.score_in_batches(
        expr.select(cols), predict, con=data.con, name=table, batch_rows=settings.batch_rows
    )
    counts = labels.group_by("persona").aggregate(n=labels.count()).to_pandas()
    sizes = pd.Series(0, index=pd.RangeIndex(model.k_, name="persona"), name="n_customers")
    for p, c in zip(counts["persona"], counts["n"], strict=True):
        sizes[int(p)] = int(c)
    model.sizes_ = sizes  # exact, from the engine (the profiles stay the sample's)
    rep = ScalePersonaResult(
        as_of=cut,
        features=feats,
        model=model,
        assignments=pd.DataFrame(
            {
                "customer_id": pd.Series(dtype="string"),
                "persona": pd.Series(dtype="int64"),
                "persona_name": pd.Series(dtype="string"),
            }
        ),
        basis=feats.attrs["basis"],
        settings=settings,
        labels_table=table,
        n_customers=int(sizes.sum()),
        sample_n=len(feats),
    )
    rep.not_available = []
    add_journey_tables(rep, data, labels, as_of=cut)
    rep.not_available.append(
        "Comment themes: not shown in scale mode: the topic model reads every comment into memory."
    )
    return rep


_scale.register("personas", analyze_scale)


def label_table(
    data: CXData,
    *,
    as_of: AsOf = None,
    random_state: int | None = 0,
    table: str = LABELS_TABLE,
) -> ir.Table:
    """Return every customer's persona as an engine table (scale mode's persona labels).

    What the other reports break their numbers down by in scale mode, instead of
    :func:`cxkit.personas.persona_labels` (which collects one row per customer). The
    table written by the personas analysis in this session or report run
    (:func:`cxkit.scale.open_table`) is used when there is one, else the analysis runs
    in scale mode and writes it.

    Parameters
    ----------
    data
        The loaded data.
    as_of
        The last instant the personas may see when they have to be fitted.
    random_state
        Seed of the clustering (the personas report uses 0).
    table
        The labels table's name.

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id`` and ``persona`` (the persona's name), both strings.

    Raises
    ------
    NotAvailableError
        When the data has nothing to cluster on.
    """
    try:
        t = _scale.open_table(data.con, table)
    except NotAvailableError:
        if table == LABELS_TABLE and _scale.current_settings().scale:
            # the personas report's own call, cached and locked: in a report run one
            # kernel writes the table and the others wait for it and read it
            analyze(data, as_of=as_of, random_state=random_state)
        else:
            analyze_scale(data, as_of=as_of, random_state=random_state, table=table)
        t = _scale.open_table(data.con, table)
    return t.select(customer_id=t.customer_id.cast("string"), persona=t.persona_name.cast("string"))
