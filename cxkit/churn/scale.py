"""The churn analysis in scale mode: samples to fit, batches to score, the engine for the rest.

:func:`analyze_scale` gives what :func:`cxkit.churn.analyze` gives (same definition,
same cutoffs, the same :class:`~cxkit.churn.ChurnModel` pipeline and backtest) without
holding any per-customer frame above ``max_collect_rows`` (:mod:`cxkit.scale`):

- the churn rate (and over time) are engine counts, exactly as in memory mode;
- the fit, calibration and test frames at each cutoff are deterministic samples of at
  most ``sample_rows`` labelled customers, stratified by the label (every stratum the
  same share, so rates on them estimate the population's);
- the BG/NBD features are fitted on the engine-side summary aggregated to distinct
  ``(frequency, recency, T)`` triples with their counts (the same likelihood as one row
  per customer), then applied per row;
- every customer at ``as_of`` is scored in batches of ``batch_rows`` and written back
  into the engine as a table (default ``cxkit_churn_scores``); the band summary, risk by
  group, the riskiest customers and the score histogram are queries on that table.

Not in scale mode yet: time to churn (survival) and personas, which still collect per
customer; the churn notebook says so instead of showing them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cxkit import scale as _scale
from cxkit.churn.analysis import (
    AT_RISK_COLUMNS,
    ChurnResult,
    backtest_or_missing,
    churn_cutoffs,
    churn_rate_over_time,
    churn_rate_summary,
    risk_by_table,
)
from cxkit.churn.backtest import MODEL_LABELS, baseline_scores
from cxkit.churn.definition import ChurnDefinition, label_table
from cxkit.churn.features import (
    BgnbdFit,
    CutoffFrame,
    FeatureCache,
    feature_table,
    finish_features,
    level_sets,
)
from cxkit.churn.metrics import BAND_LABELS, BAND_THRESHOLDS, risk_band
from cxkit.churn.model import ChurnModel
from cxkit.churn.plots import risk_histogram
from cxkit.clv import BetaGeo
from cxkit.clv.rfm import rfm_summary_expr
from cxkit.clv.scale import fit_bgnbd_triples
from cxkit.data import CXData
from cxkit.errors import NotAvailableError, UsageError
from cxkit.result import AsOf
from cxkit.scale import ScaleSettings

__all__ = ["SCORES_TABLE", "ScaleChurnResult", "analyze_scale", "held_scores", "score_histogram"]

#: The engine table the scale-mode scores are written to.
SCORES_TABLE = "cxkit_churn_scores"

#: Bins of the score histogram (each 5 percentage points wide).
HIST_BINS = 20

_RFM = {"frequency": "_cx_rfm_frequency", "recency": "_cx_rfm_recency", "T": "_cx_rfm_T"}


@dataclass(kw_only=True)
class ScaleChurnResult(ChurnResult):
    """A churn result computed in scale mode (:func:`analyze_scale`).

    :attr:`scores` is empty: the scores are the engine table :attr:`scores_table`. The
    band summary, high-risk count, risk breakdown, riskiest customers and histogram
    were computed from it in the engine.

    Attributes
    ----------
    mode
        ``"scale"``.
    settings
        The limits used.
    scores_table
        The engine table holding every customer's score (in the connection of the data
        analysed; an in-memory engine drops it when the session ends).
    scores_n, high_risk_count
        Customers scored and those in the high band.
    bands
        Customers, share and mean churn probability per risk band.
    histogram
        ``bin_low, bin_high, customers``: the scores in bins of 5 percentage points.
    samples
        Cutoff (ISO date) -> ``{"sample": n, "population": N}`` of the labelled samples.
    max_collected_rows
        The most rows of any one collect during the analysis.
    """

    mode: str = "scale"
    settings: ScaleSettings = field(default_factory=lambda: ScaleSettings(mode="scale"))
    scores_table: str = SCORES_TABLE
    scores_n: int = 0
    high_risk_count: int = 0
    bands: pd.DataFrame | None = None
    histogram: pd.DataFrame | None = None
    samples: dict[str, dict[str, int]] = field(default_factory=dict)
    max_collected_rows: int = 0

    @property
    def band_summary(self) -> pd.DataFrame:
        """Customers, share and mean churn probability per risk band (from the engine)."""
        return self.bands if self.bands is not None else pd.DataFrame()

    @property
    def high_risk_n(self) -> int:
        """How many scored customers are in the high band."""
        return self.high_risk_count

    @property
    def scored_n(self) -> int:
        """How many customers were scored (rows of :attr:`scores_table`)."""
        return self.scores_n

    def _high_risk_extra(self) -> dict[str, object]:
        """Return the ``extra`` of the ``high_risk_customers`` finding (says scale mode)."""
        return {**super()._high_risk_extra(), "mode": "scale"}

    @property
    def mode_sentence(self) -> str:
        """Say how scale mode ran: sample sizes, the scores table, the collect limit."""
        fit = self.samples.get("scoring_fit") or next(iter(self.samples.values()), None)
        sample = (
            f"model fitted on a stratified sample of {fit['sample']:,} of "
            f"{fit['population']:,} labelled customers; "
            if fit
            else ""
        )
        return (
            f"Scale mode: {sample}{self.scores_n:,} scores written to table "
            f"{self.scores_table}; no per-customer frame over "
            f"{self.settings.max_collect_rows:,} rows collected."
        )

    def takeaways(self) -> dict[str, str]:
        """Return :meth:`ChurnResult.takeaways` with the customers scored from the engine.

        Returns
        -------
        dict of str to str
            As :meth:`ChurnResult.takeaways`.
        """
        out = super().takeaways()
        lo, hi = self.thresholds
        out["bands"] = (
            f"Bands: low < {lo:.0%} ≤ medium < {hi:.0%} ≤ high; "
            f"{self.scores_n:,} customers scored as of {self.as_of:%Y-%m-%d}."
        )
        return out


# --------------------------------------------------------------------------------------
# features of a sample, or of a batch
# --------------------------------------------------------------------------------------


def _feature_expr(
    data: CXData,
    end: pd.Timestamp,
    customers: ir.Table,
    *,
    trend_days: int,
    max_levels: int,
    levels: Mapping[str, list[str]] | None,
) -> tuple[ir.Table, dict]:
    """Return the features of ``customers`` at ``end`` with their RFM triple (for BG/NBD)."""
    expr, info = feature_table(
        data,
        end,
        trend_days=trend_days,
        max_levels=max_levels,
        customers=customers,
        levels=levels,
    )
    if data.has("orders") and "orders_n" in expr.columns:
        rfm = rfm_summary_expr(data.upto(end), observation_end=end, time_unit="D")
        rfm = rfm.select(customer_id=rfm.customer_id, **{v: rfm[k] for k, v in _RFM.items()})
        j = expr.left_join(rfm, expr.customer_id == rfm.customer_id)
        expr = j.select(*[expr[c] for c in expr.columns], *[j[v] for v in _RFM.values()])
    return expr, dict(info)


def _bgnbd(
    data: CXData, end: pd.Timestamp, horizon_days: int, settings: ScaleSettings
) -> tuple[BetaGeo | None, str]:
    """Fit BG/NBD at ``end`` on the distinct (x, t_x, T) triples weighted by their counts."""
    try:
        rfm = rfm_summary_expr(data.upto(end), observation_end=end, time_unit="D")
        with warnings.catch_warnings():
            # standard errors are not used here; a warning about them is noise
            warnings.simplefilter("ignore", RuntimeWarning)
            bg, sampled = fit_bgnbd_triples(
                rfm, settings=settings, what=f"BG/NBD summary triples at {end:%Y-%m-%d}"
            )
    except _scale.ScaleLimitError:
        raise
    except Exception as err:  # a failed unsupervised fit must not fail the analysis
        return None, str(err).splitlines()[0] if str(err) else type(err).__name__
    r, alpha = float(bg.params_["r"]), float(bg.params_["alpha"])
    return bg, f"BG/NBD r = {r:.3g}, alpha = {alpha:.3g} days{sampled}"


def _rows(raw: pd.DataFrame, info: dict, bg: BetaGeo | None, horizon_days: int) -> pd.DataFrame:
    """Turn engine rows into the features of :func:`~cxkit.churn.features` (BG/NBD added)."""
    ids = pd.Index(raw["customer_id"].astype(str).to_numpy())
    rfm = {k: raw.pop(v).to_numpy(dtype=float) for k, v in _RFM.items() if v in raw.columns}
    df = finish_features(raw, info)  # type: ignore[arg-type]
    if bg is None or not rfm:
        return df
    pos = ids.get_indexer(df["customer_id"].astype(str).to_numpy())  # finish sorts by id
    rfm = {k: v[pos] for k, v in rfm.items()}
    x, tx, T = rfm["frequency"], rfm["recency"], rfm["T"]
    has = ~np.isnan(x)
    alive = np.full(len(df), np.nan)
    quiet = np.full(len(df), np.nan)
    if has.any():
        a = bg.p_alive({"frequency": x[has], "recency": tx[has], "T": T[has]})
        r, alpha = float(bg.params_["r"]), float(bg.params_["alpha"])
        # as in cxkit.churn.features.bgnbd_scores: P(no order in h | alive); the dead never buy
        q = np.exp((r + x[has]) * (np.log(alpha + T[has]) - np.log(alpha + T[has] + horizon_days)))
        alive[has] = a
        quiet[has] = (1.0 - a) + a * q
    df["bgnbd_p_alive"] = alive
    df[f"bgnbd_p_no_order_{horizon_days}d"] = quiet
    return df


class _SampleCache(FeatureCache):
    """A :class:`~cxkit.churn.features.FeatureCache` whose frames are bounded samples.

    ``labels`` and ``features`` at a cutoff hold a stratified sample (by label) of the
    definition's population, so :class:`~cxkit.churn.ChurnModel` and
    :func:`~cxkit.churn.run_backtest` fit, calibrate and test on it unchanged.
    """

    def __init__(
        self,
        data: CXData,
        trend_days: int,
        max_levels: int,
        horizon_days: int,
        settings: ScaleSettings,
    ) -> None:
        super().__init__(data, trend_days, max_levels, None, horizon_days)
        self.settings = settings
        self.samples: dict[pd.Timestamp, _scale.StratifiedSample] = {}
        self._s_labels: dict[pd.Timestamp, pd.DataFrame] = {}
        self._s_features: dict[pd.Timestamp, pd.DataFrame] = {}
        self._fits: dict[pd.Timestamp, tuple[BetaGeo | None, str]] = {}
        self._lv: dict[pd.Timestamp, dict[str, list[str]]] = {}
        self._todo: list[pd.Timestamp] = []

    def expect(self, *ends: pd.Timestamp) -> None:
        """Announce cutoffs: their levels are found in one scan (as the base cache)."""
        self._todo += [e for e in ends if e not in self._todo]

    def levels(self, end: pd.Timestamp) -> dict[str, list[str]] | None:
        """Return the channel and event-type levels at ``end`` (None: found by feature_table)."""
        if end in self._todo and end not in self._lv:
            todo = [e for e in self._todo if e not in self._lv]
            self._lv.update(level_sets(self.data, todo, max_levels=self.max_levels))
        return self._lv.get(end)

    def bgnbd(self, end: pd.Timestamp) -> tuple[BetaGeo | None, str]:
        """Return the BG/NBD fit at ``end`` (fitted once)."""
        if end not in self._fits:
            if self.data.has("orders"):
                self._fits[end] = _bgnbd(self.data, end, self.horizon_days, self.settings)
            else:
                self._fits[end] = (None, "no orders table")
        return self._fits[end]

    def sample(self, end: pd.Timestamp, definition: ChurnDefinition) -> _scale.StratifiedSample:
        """Return the stratified sample of the labels at ``end`` (drawn once)."""
        if end not in self.samples:
            lab = label_table(self.data, end, definition=definition)
            self.samples[end] = _scale.stratified_sample(
                lab, by="churned", n=self.settings.sample_rows
            )
        return self.samples[end]

    def labels(self, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
        """Return the sampled labels at ``end``, sorted by id."""
        if end not in self._s_labels:
            s = self.sample(end, definition)
            out = _scale.bounded_to_pandas(
                s.expr.select("customer_id", "churned"),
                what=f"churn labels sample at {end:%Y-%m-%d}",
                settings=self.settings,
            )
            out["customer_id"] = out["customer_id"].astype(pd.StringDtype())
            out["churned"] = out["churned"].astype("int64")
            self._s_labels[end] = out.sort_values("customer_id", kind="stable", ignore_index=True)
        return self._s_labels[end]

    def features(
        self, end: pd.Timestamp, definition: ChurnDefinition | None = None
    ) -> pd.DataFrame:
        """Return the features of the sampled customers at ``end``, sorted by id."""
        if definition is None:
            raise UsageError("scale mode builds features only for a labelled sample")
        if end not in self._s_features:
            ids = self.sample(end, definition).expr.select("customer_id")
            expr, info = _feature_expr(
                self.data,
                end,
                ids,
                trend_days=self.trend_days,
                max_levels=self.max_levels,
                levels=self.levels(end),
            )
            raw = _scale.bounded_to_pandas(
                expr, what=f"churn features sample at {end:%Y-%m-%d}", settings=self.settings
            )
            bg, _ = self.bgnbd(end)
            self._s_features[end] = _rows(raw, info, bg, self.horizon_days)
            self.built.append(end)
        return self._s_features[end]

    def bgnbd_fit(self, end: pd.Timestamp) -> BgnbdFit | None:
        """How the BG/NBD fit behind the features at ``end`` went (as the base cache)."""
        if end not in self._fits:
            return None
        bg, note = self._fits[end]
        h = self.horizon_days
        if bg is None:
            return BgnbdFit(end, h, None, None, note)
        return BgnbdFit(end, h, "bgnbd_p_alive", f"bgnbd_p_no_order_{h}d", note)

    def release(self, *ends: pd.Timestamp) -> None:
        """Keep the samples (bounded): the scoring model refits on them."""

    def frame(
        self, end: pd.Timestamp, definition: ChurnDefinition, *, labelled: bool
    ) -> CutoffFrame:
        """Return the sampled features joined to their labels at ``end``."""
        if not labelled:
            raise UsageError("scale mode scores the whole population in batches, not a frame")
        ids = self.labels(end, definition)
        feats = self.features(end, definition)
        merged = ids[["customer_id"]].merge(
            feats, on="customer_id", how="left", validate="one_to_one"
        )
        return CutoffFrame(end, merged, ids["churned"].to_numpy(dtype=int))


# --------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------


def analyze_scale(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    thresholds: tuple[float, float] = BAND_THRESHOLDS,
    calibration: str = "auto",
    trend_days: int = 90,
    max_train_rows: int | None = 200_000,
    random_state: int = 0,
    by: str | None = "acquisition_channel",
    top_n: int = 15,
    settings: ScaleSettings | None = None,
    table: str = SCORES_TABLE,
) -> ScaleChurnResult:
    """Run :func:`cxkit.churn.analyze` in scale mode (see the module docstring).

    Parameters
    ----------
    data
        The data.
    as_of, horizon_days, basis, kind, thresholds, calibration, trend_days,
    max_train_rows, random_state, by, top_n
        As for :func:`cxkit.churn.analyze`.
    settings
        The limits (default :func:`cxkit.scale.current_settings`, in scale mode).
    table
        The engine table the scores are written to (replaced if it exists).

    Returns
    -------
    ScaleChurnResult
        The result; :attr:`~ScaleChurnResult.mode_sentence` says how it was computed.

    Raises
    ------
    NotAvailableError
        When the data has no table churn can be defined on.
    UsageError
        For a bad option, or when the latest label window is not observed.
    ScaleLimitError
        When a sample, a batch or a breakdown would exceed ``max_collect_rows``.
    """
    settings = _scale.scale_mode_settings(settings)
    cuts = churn_cutoffs(data, as_of=as_of, horizon_days=horizon_days, basis=basis, kind=kind)
    end, d, definition, last, t0 = cuts
    cache = _SampleCache(d, trend_days, 12, definition.horizon_days, settings)
    missing: dict[str, str] = {}
    cache.expect(*cuts.feature_cutoffs)
    rate = _rate(d, last, end, definition)
    backtest = backtest_or_missing(
        d,
        t0=t0,
        definition=definition,
        calibration=calibration,
        trend_days=trend_days,
        max_train_rows=max_train_rows,
        random_state=random_state,
        cache=cache,
        missing=missing,
    )
    scores_from = "model" if backtest is None else backtest.scores_used
    common = {
        "calibration": calibration,
        "trend_days": trend_days,
        "max_levels": 12,
        "max_train_rows": max_train_rows,
        "random_state": random_state,
    }
    bg_end = cache.bgnbd(end) if d.has("orders") else (None, "no orders table")
    if scores_from in ("bgnbd", "p_alive") and bg_end[0] is None:
        missing["scores"] = (
            f"The scores of {MODEL_LABELS[scores_from]} are not available "
            f"(BG/NBD baselines not available: {bg_end[1]}); the churn model's are used."
        )
        scores_from = "model"
    model = None
    if scores_from in ("model", "logit"):
        model = ChurnModel(estimator="logit" if scores_from == "logit" else "hgb", **common)
        model.fit(d, cutoff=last, definition=definition, _cache=cache)
    fit_end = t0 if model is None else model.cutoffs_["fit"]
    population = label_table(d, end, definition=definition, check_window=False).select(
        "customer_id"
    )
    expr, info = _feature_expr(
        d, end, population, trend_days=trend_days, max_levels=12, levels=cache.levels(end)
    )
    predict = _predictor(d, end, definition, model, scores_from, bg_end[0], thresholds, info)
    scored = _scale.score_in_batches(
        expr, predict, con=d.con, name=table, batch_rows=settings.batch_rows
    )
    lo, hi = float(thresholds[0]), float(thresholds[1])
    counts = scored.aggregate(
        n=scored.count(), high=(scored.risk_band == BAND_LABELS[2]).ifelse(1, 0).sum()
    ).to_pandas()
    scores_n = int(counts["n"].iloc[0])
    high_n = int(counts["high"].fillna(0).iloc[0])
    by_table = None
    if by is not None:
        try:
            by_table = _risk_by(d, scored, by, settings)
        except NotAvailableError as err:
            missing["risk_by"] = str(err)
    samples = {
        f"{k:%Y-%m-%d}": {"sample": s.n, "population": s.total} for k, s in cache.samples.items()
    }
    if fit_end in cache.samples:
        s = cache.samples[fit_end]
        samples["scoring_fit"] = {"sample": s.n, "population": s.total}
    result = ScaleChurnResult(
        as_of=end,
        definition=definition,
        churn_rate=rate,
        backtest=backtest,
        scores=pd.DataFrame(columns=["customer_id", "churn_probability", "risk_band"]),
        thresholds=(lo, hi),
        rate_over_time=churn_rate_over_time(d, definition=definition, as_of=end),
        by=by,
        risk_by=by_table,
        at_risk=_at_risk(scored, top_n),
        notes=[] if backtest is None else list(backtest.notes),
        scores_from=scores_from,
        choice=None if backtest is None else backtest.choice,
        missing_parts=missing,
        not_available=list(missing.values()),
        settings=settings,
        scores_table=table,
        scores_n=scores_n,
        high_risk_count=high_n,
        bands=_bands(scored, scores_n),
        histogram=_histogram(scored),
        samples=samples,
    )
    result.notes.append(result.mode_sentence)
    return result


_scale.register("churn", analyze_scale)


def held_scores(result: ChurnResult) -> pd.DataFrame:
    """Return a churn result's per-customer scores, held in memory.

    What the scorecard and the survey-to-value linkage join on ``customer_id``. In scale
    mode the scores stay in the engine (:attr:`ScaleChurnResult.scores_table`), so they
    are not available here: the caller leaves churn out and says why, instead of joining
    an empty frame into missing values.

    Parameters
    ----------
    result
        A churn result (:func:`~cxkit.churn.analyze`).

    Returns
    -------
    pandas.DataFrame
        :attr:`~cxkit.churn.ChurnResult.scores`.

    Raises
    ------
    NotAvailableError
        For a scale-mode result.
    """
    if isinstance(result, ScaleChurnResult):
        raise NotAvailableError(
            f"memory mode (no 'scale:' in reports.yml): in scale mode the churn scores stay "
            f"in the engine (table {result.scores_table}, {result.scores_n:,} customers)",
            analysis="Churn risk per customer",
        )
    return result.scores


def _rate(
    d: CXData, last: pd.Timestamp, end: pd.Timestamp, definition: ChurnDefinition
) -> dict[str, object]:
    """Return the churn rate at ``last``: an engine count (the same as memory mode's)."""
    lab = label_table(d, last, definition=definition)
    got = lab.aggregate(n=lab.count(), k=lab.churned.sum()).to_pandas()
    n = int(got["n"].iloc[0])
    k = int(got["k"].fillna(0).iloc[0])
    return churn_rate_summary(n, k, cutoff=last, window_end=end)


def _predictor(
    d: CXData,
    end: pd.Timestamp,
    definition: ChurnDefinition,
    model: ChurnModel | None,
    scores_from: str,
    bg: BetaGeo | None,
    thresholds: Sequence[float],
    info: dict,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Return ``predict(engine rows) -> scores`` for :func:`cxkit.scale.score_in_batches`."""
    h = definition.horizon_days
    fit = (
        BgnbdFit(end, h, "bgnbd_p_alive", f"bgnbd_p_no_order_{h}d", "")
        if bg is not None
        else BgnbdFit(end, h, None, None, "no fit")
    )

    def predict(raw: pd.DataFrame) -> pd.DataFrame:
        X = _rows(raw, info, bg, h)
        if model is not None:
            p = model.predict_frame(X) if len(X) else np.empty(0)
        else:
            base, _ = baseline_scores(d, end, X, h, fit)
            p = np.empty(0) if base is None else base[scores_from].to_numpy(dtype=float)
        out = pd.DataFrame(
            {
                "customer_id": X["customer_id"].astype(str).to_numpy(),
                "churn_probability": np.asarray(p, dtype=float),
            }
        )
        out["risk_band"] = risk_band(out["churn_probability"], thresholds=tuple(thresholds))
        out["risk_band"] = out["risk_band"].astype(str)
        for c in AT_RISK_COLUMNS:
            if c in X.columns:
                out[c] = X[c].to_numpy()
        return out

    return predict


def _bands(scored: ir.Table, n: int) -> pd.DataFrame:
    """Count customers, share and mean churn probability per band from the scores table."""
    g = (
        scored.group_by("risk_band")
        .aggregate(customers=scored.count(), mean_churn_probability=scored.churn_probability.mean())
        .to_pandas()
        .set_index("risk_band")
        .reindex(list(BAND_LABELS))
    )
    out = pd.DataFrame(
        {
            "risk_band": pd.Categorical(list(BAND_LABELS), categories=list(BAND_LABELS)),
            "customers": g["customers"].fillna(0).astype("int64").to_numpy(),
            "mean_churn_probability": g["mean_churn_probability"].astype(float).to_numpy(),
        }
    )
    out["share"] = out["customers"] / max(n, 1)
    return out


def _histogram(scored: ir.Table) -> pd.DataFrame:
    """Count the scores in :data:`HIST_BINS` bins of equal width, counted in the engine."""
    b = (scored.churn_probability * HIST_BINS).floor().cast("int64")
    b = ibis.greatest(ibis.least(b, HIST_BINS - 1), 0)
    binned = scored.mutate(_bin=b)
    got = binned.group_by("_bin").aggregate(customers=binned.count()).to_pandas()
    counts = got.set_index("_bin")["customers"].reindex(range(HIST_BINS)).fillna(0)
    edges = np.arange(HIST_BINS + 1) / HIST_BINS
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "customers": counts.astype("int64").to_numpy(),
        }
    )


def _risk_by(d: CXData, scored: ir.Table, by: str, settings: ScaleSettings) -> pd.DataFrame:
    """:func:`cxkit.churn.risk_by` computed in the engine from the scores table."""
    cust = d.require("customers", "customer_id", by, analysis=f"Churn risk by {by}")
    groups = cust.select(_cx_id=cust.customer_id.cast("string"), _cx_by=cust[by].cast("string"))
    j = scored.left_join(groups, scored.customer_id.cast("string") == groups._cx_id)
    grp = j._cx_by.fill_null("(missing)")
    high = (j.risk_band == BAND_LABELS[2]).ifelse(1, 0)
    agg = (
        j.mutate(_g=grp, _hi=high)
        .group_by("_g")
        .aggregate(
            customers=ibis._.count(),
            high_risk=ibis._._hi.sum(),
            mean_churn_probability=ibis._.churn_probability.mean(),
        )
    )
    g = _scale.bounded_to_pandas(agg, what=f"churn risk groups by {by}", settings=settings)
    g = g.rename(columns={"_g": by})
    g[by] = g[by].astype(str)
    g["customers"] = g["customers"].astype("int64")
    g["high_risk"] = g["high_risk"].fillna(0).astype("int64")
    return risk_by_table(g, by)


def _at_risk(scored: ir.Table, top_n: int) -> pd.DataFrame:
    """Return the ``top_n`` high-risk customers by spend to date (by probability without orders)."""
    key = "spend_total" if "spend_total" in scored.columns else "churn_probability"
    high = scored.filter(scored.risk_band == BAND_LABELS[2])
    top = high.order_by([ibis.desc(high[key]), high.customer_id]).limit(top_n).to_pandas()
    top["risk_band"] = pd.Categorical(top["risk_band"], categories=list(BAND_LABELS))
    top["customer_id"] = top["customer_id"].astype(pd.StringDtype())
    return top.reset_index(drop=True)


def score_histogram(result: ChurnResult) -> go.Figure:
    """Draw the distribution of today's churn probabilities, in either mode.

    Memory mode: :func:`cxkit.churn.risk_histogram`. Scale mode: the same chart from
    the engine's counts (:attr:`ScaleChurnResult.histogram`).

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure
        A histogram titled with the share at high risk.
    """
    if not isinstance(result, ScaleChurnResult) or result.histogram is None:
        return risk_histogram(result)
    return risk_histogram(result, counts=result.histogram)
