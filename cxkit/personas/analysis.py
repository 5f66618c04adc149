"""The personas analysis in one call: :func:`analyze` returns a :class:`PersonasResult`.

Features, the fitted model, the persona per customer, the journey map, channel shares,
pain points and comment themes, computed once (and shared within a report run through
:func:`cxkit.cache.run_cached`); :meth:`PersonasResult.findings` turns them into the
sentences the personas report and the executive summary show.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import ibis.expr.types as ir
import pandas as pd

from cxkit import stats, voc
from cxkit.cache import run_cached
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.findings import Finding, finding_from_rate
from cxkit.personas.features import customer_features
from cxkit.personas.journeys import channel_shares, comment_themes, journey_map, pain_points
from cxkit.personas.model import Personas, assign
from cxkit.result import AsOf, Result
from cxkit.scale import dispatch


def _top_themes(themes: pd.DataFrame | None) -> pd.DataFrame:
    """Return each persona's most common comment theme."""
    if themes is None or themes.empty:
        return pd.DataFrame(columns=["persona_name", "top_theme", "top_theme_share", "top_theme_n"])
    t = themes[themes.n_comments > 0].sort_values(
        ["persona_name", "n_comments", "theme"], ascending=[True, False, True]
    )
    t = t.groupby("persona_name", as_index=False).first()
    return t.drop(columns="theme").rename(
        columns={"label": "top_theme", "share": "top_theme_share", "n_comments": "top_theme_n"}
    )[["persona_name", "top_theme", "top_theme_share", "top_theme_n"]]


def persona_min_customers(k: int | str, k_range: tuple[int, int]) -> int | None:
    """Return the fewest customers :meth:`Personas.fit` clusters, or None for bad options.

    The same rule as the model's own check (twice the largest k tried, at least 10);
    bad ``k`` / ``k_range`` values return None and are left to the model's UsageError.
    """
    try:
        k_max = int(k_range[1]) if k == "auto" else int(k)
    except (TypeError, ValueError, IndexError):
        return None
    return max(2 * k_max, 10)


def _stability_word(jaccard: float) -> str:
    return "stable" if jaccard >= 0.75 else ("fairly stable" if jaccard >= 0.6 else "unstable")


@dataclass(kw_only=True)
class PersonasResult(Result):
    """Everything the personas report shows, computed once by :func:`analyze`.

    Attributes
    ----------
    features
        The per-customer features (:func:`cxkit.personas.customer_features`).
    model
        The fitted :class:`~cxkit.personas.Personas`.
    assignments
        ``customer_id``, ``persona``, ``persona_name`` (:func:`cxkit.personas.assign`).
    basis
        What the features rest on, in words.
    journey
        The persona × stage journey map (:func:`cxkit.personas.journey_map`).
    channels
        Channel shares per persona and stage (:func:`cxkit.personas.channel_shares`).
    pains
        The pain point per persona (:func:`cxkit.personas.pain_points`), or ``None``
        without CSAT answers by channel or touchpoint.
    themes, negative_themes
        Comment themes per persona, all comments and those on low scores
        (:func:`cxkit.personas.comment_themes`), or ``None`` without comments.
    """

    domain: ClassVar[str] = "personas"
    features: pd.DataFrame
    model: Personas
    assignments: pd.DataFrame
    basis: str
    journey: pd.DataFrame | None = None
    channels: pd.DataFrame | None = None
    pains: pd.DataFrame | None = None
    themes: pd.DataFrame | None = None
    negative_themes: pd.DataFrame | None = None

    @property
    def cards(self) -> pd.DataFrame:
        """One row per persona: the model summary plus pain point and top theme."""
        s = self.model.summary().rename(columns={"name": "persona_name"})
        if self.pains is not None and len(self.pains):
            p = self.pains[["persona_name", "dimension", "value", "csat_top2", "significant"]]
            p = p.rename(
                columns={
                    "value": "pain_point",
                    "csat_top2": "pain_point_csat_top2",
                    "dimension": "pain_point_dimension",
                    "significant": "pain_point_significant",
                }
            )
            s = s.merge(p, on="persona_name", how="left")
        src = self.negative_themes if self.negative_themes is not None else self.themes
        if src is not None and len(src):
            s = s.merge(_top_themes(src), on="persona_name", how="left")
        return s

    def findings(self) -> list[Finding]:
        """Return the personas' findings.

        How many personas and why, each persona's size (Wilson interval) and stability,
        the persona that brings the most spend, each significant pain point (with its
        interval, n and Holm-adjusted p-value) and how well simple rules reproduce the
        personas.

        Returns
        -------
        list of Finding
            Importance on the 0–10 scale: the number of personas 9, the top value persona
            8, a pain point 7–10 (larger gaps higher), a persona's share 5–8, the rules'
            fidelity 3.
        """
        m = self.model
        n_all = int(m.sizes_.sum())
        out = [
            finding_from_rate(
                {"value": float(m.k_), "n": n_all},
                domain=self.domain,
                metric="n_personas",
                unit="personas",
                low=None,
                high=None,
                sentence=(
                    f"{n_all:,} customers fall into {m.k_} personas, clustered on "
                    f"{self.basis}; {m.k_reason_}."
                ),
                importance=9,
                extra={"votes": dict(m.k_votes_)},
            )
        ]
        summ = m.summary()
        has_spend = "mean_spend" in summ.columns
        for _, r in summ.iterrows():
            share = float(r["share"])
            n = int(r["n_customers"])
            lo, hi = stats.wilson_ci(n, n_all)
            spend_txt = f", mean spend {r['mean_spend']:,.0f} per customer" if has_spend else ""
            stab = r["stability_jaccard"]
            out.append(
                finding_from_rate(
                    {"value": share, "ci_low": lo, "ci_high": hi, "n": n},
                    domain=self.domain,
                    metric="persona_share",
                    sentence=(
                        f"'{r['name']}' are {100 * share:.0f}% of customers "
                        f"(n = {n:,}){spend_txt}; {_stability_word(stab)} under bootstrap "
                        f"(Jaccard {stab:.2f})."
                    ),
                    importance=5 + 3 * share,
                    extra={"persona": int(r["persona"]), "persona_name": r["name"]},
                )
            )
        if has_spend and len(summ) > 1:
            top = summ.sort_values("mean_spend", ascending=False).iloc[0]
            value_share = (
                top["mean_spend"]
                * top["n_customers"]
                / (summ["mean_spend"] * summ["n_customers"]).sum()
            )
            out.append(
                finding_from_rate(
                    {"value": float(value_share), "n": int(top["n_customers"])},
                    domain=self.domain,
                    metric="top_value_persona",
                    low=None,
                    high=None,
                    sentence=(
                        f"'{top['name']}' bring {100 * value_share:.0f}% of all spend while "
                        f"being {100 * top['share']:.0f}% of customers."
                    ),
                    importance=8,
                    extra={"persona_name": top["name"]},
                )
            )
        if self.pains is not None:
            for _, r in self.pains[self.pains["significant"].astype(bool)].iterrows():
                gap = float(r["rest_top2"] - r["csat_top2"])
                out.append(
                    finding_from_rate(
                        r,
                        domain=self.domain,
                        metric="pain_point",
                        value="csat_top2",
                        comparison=f"vs the persona's other {r['dimension']}s",
                        p_value="p_adj",
                        sentence=r["sentence"],
                        importance=7 + 10 * min(gap, 0.3),
                        extra={
                            "persona_name": r["persona_name"],
                            "dimension": r["dimension"],
                            "value": r["value"],
                            "gap": gap,
                        },
                    )
                )
        if m.fidelity_ is not None:
            out.append(
                finding_from_rate(
                    {"value": m.fidelity_},
                    domain=self.domain,
                    metric="surrogate_fidelity",
                    low=None,
                    high=None,
                    n=None,
                    small_n=False,
                    sentence=(
                        f"Three levels of simple rules reproduce the personas for "
                        f"{100 * m.fidelity_:.0f}% of held-out customers."
                    ),
                    importance=3,
                )
            )
        return out

    def steepest_drop(self) -> pd.Series | None:
        """Return the journey-map row with the largest drop-off from the previous stage.

        Steps from fewer than 30 customers are left out while any larger one remains.

        Returns
        -------
        pandas.Series or None
            A :attr:`journey` row (``persona_name``, ``stage``, ``n_previous`` — the n
            the drop-off is computed on —, ``n_reached``, ``drop_off``, ...) plus
            ``previous_stage``; None without a journey map or a step.
        """
        jm = self.journey
        if jm is None or not len(jm):
            return None
        jm = jm.assign(
            previous_stage=jm.groupby("persona_name", sort=False)["stage"].shift(1)
        ).dropna(subset=["drop_off"])
        if not len(jm):
            return None
        big = jm[jm["n_previous"].astype("float64") >= stats.MIN_N]
        pool = big if len(big) else jm
        return pool.sort_values("drop_off", ascending=False, kind="stable").iloc[0]

    def takeaways(self) -> dict[str, str]:
        """Return the one-line takeaway under each chart and table of the personas report.

        Returns
        -------
        dict of str to str
            Part name -> sentence: ``k`` (why this many personas), ``contrast`` (the
            feature furthest from the average), ``journey`` (the steepest drop, with the n
            it is computed on), ``pains``, ``themes`` and ``fidelity``, for the parts the
            result has.
        """
        m = self.model
        out = {"k": f"{m.k_} personas: {m.k_reason_}."}
        prof = m.profiles_
        if prof is not None and len(prof):
            z = prof.assign(abs_z=prof["z"].abs()).sort_values("abs_z", ascending=False).iloc[0]
            out["contrast"] = (
                f"The sharpest contrast: '{z['name']}' sit {z['z']:+.1f} standard deviations "
                f"from the average on {z['feature']}."
            )
        drop = self.steepest_drop()
        if drop is not None:
            small = (
                " (fewer than 30 customers: read with care)"
                if drop.n_previous < stats.MIN_N
                else ""
            )
            out["journey"] = (
                f"The steepest drop is '{drop.persona_name}' from {drop.previous_stage} to "
                f"{drop.stage}: {100 * drop.drop_off:.0f}% of {int(drop.n_previous):,} do not "
                f"get further{small}."
            )
        if self.pains is not None and len(self.pains):
            sig = self.pains[self.pains["significant"].astype(bool)]
            out["pains"] = (
                " ".join(sig["sentence"])
                if len(sig)
                else "No persona has a channel or touchpoint that is significantly worse than "
                "its others."
            )
        if self.negative_themes is not None and len(self.negative_themes):
            out["themes"] = (
                "The most common themes in each persona's comments on low scores (NPS 0–6, "
                "CSAT 1–2, CES 1–3); themes come from the voice-of-the-customer topic model."
            )
        if m.fidelity_ is not None:
            out["fidelity"] = (
                f"Fidelity: the rules reproduce the personas for {100 * m.fidelity_:.0f}% of "
                "held-out customers."
            )
        return out


def map_takeaway(points: pd.DataFrame, n_customers: int) -> str:
    """Return the takeaway under the 2-D map of :func:`~cxkit.personas.pca_map`.

    Parameters
    ----------
    points
        The map's points (``attrs["explained"]``: the variance share of each component).
    n_customers
        How many customers the personas have (all of them are drawn when the map has as
        many points).

    Returns
    -------
    str
        How many customers are drawn and how much of the spread the map shows.
    """
    drawn = (
        f"all {len(points):,} customers"
        if len(points) >= n_customers
        else f"{len(points):,} of {n_customers:,} customers, drawn at random"
    )
    explained = 100 * sum(points.attrs.get("explained", []))
    return (
        f"Each dot is a customer ({drawn}); the first two principal components show "
        f"{explained:.0f}% of the spread in the features."
    )


@run_cached("personas.fit")
def fit_personas(
    data: CXData,
    *,
    as_of: AsOf = None,
    k: int | str = "auto",
    k_range: tuple[int, int] = (2, 10),
    random_state: int | None = 0,
    **model_options: object,
) -> PersonasResult:
    """Fit the persona model: features, the clustering and each customer's persona.

    The model part of :func:`analyze` (which calls it), cached on its own for a report
    run: the reports that only need each customer's persona (:func:`persona_labels`)
    do not wait for the journey map, pain points and themes.

    Parameters
    ----------
    data, as_of, k, k_range, random_state, **model_options
        As in :func:`analyze`.

    Returns
    -------
    PersonasResult
        ``features``, ``model`` and ``assignments``; the journey map, channels, pain
        points and themes are left empty.

    Raises
    ------
    NotAvailableError
        As in :func:`analyze`.
    """
    cut = resolve_as_of(data, as_of)
    feats = customer_features(data, as_of=cut)
    need = persona_min_customers(k, k_range)
    if need is not None and len(feats) < need:
        raise NotAvailableError(
            f"more customers — too few customers to cluster (n={len(feats):,}, "
            f"need ≥ {need}); use data with more customers or a smaller k / k_range",
            analysis="The persona model",
        )
    model = Personas(k=k, k_range=k_range, random_state=random_state, **model_options)
    model.fit(feats)
    asg = assign(model, feats)
    return PersonasResult(
        as_of=cut, features=feats, model=model, assignments=asg, basis=feats.attrs["basis"]
    )


def add_journey_tables(
    result: PersonasResult,
    data: CXData,
    assignments: pd.DataFrame | ir.Table,
    *,
    as_of: pd.Timestamp,
) -> None:
    """Fill a result's journey map, channel shares and pain points, in place.

    The step :func:`analyze` shares with scale mode (which passes the engine's labels
    table instead of the assignments frame). A part the data cannot support is left
    None and :attr:`PersonasResult.not_available` says why.

    Parameters
    ----------
    result
        The result to fill (its ``not_available`` list is appended to).
    data
        The data.
    assignments
        Persona per customer: :func:`cxkit.personas.assign`'s frame, or an engine table
        with ``customer_id``, ``persona`` and ``persona_name``.
    as_of
        The resolved instant of the analysis.
    """
    try:
        result.journey = journey_map(data, assignments, as_of=as_of)
        result.channels = channel_shares(data, assignments, as_of=as_of)
    except NotAvailableError as err:  # pragma: no cover - needs events or orders
        result.not_available.append(str(err))
    try:
        result.pains = pain_points(data, assignments, as_of=as_of)
    except NotAvailableError as err:
        result.not_available.append(str(err))


@run_cached("personas.analyze")
def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    k: int | str = "auto",
    k_range: tuple[int, int] = (2, 10),
    random_state: int | None = 0,
    mode: str | None = None,
    **model_options: object,
) -> PersonasResult:
    """Compute features, personas, journey map, pain points and themes in one call.

    Parts the data cannot support are skipped; ``not_available`` says why.

    Parameters
    ----------
    data
        The loaded data; needs ``orders`` or ``events``.
    as_of
        The last instant the analysis may see (:func:`cxkit.data.resolve_as_of`: a
        date means its whole day; ``None`` the data's own cut, else its latest
        timestamp).
    k, k_range, random_state
        As in :class:`~cxkit.personas.Personas` (``random_state`` also seeds the
        comment themes).
    mode
        ``"memory"``, ``"scale"`` (:func:`cxkit.personas.scale.analyze_scale`: fitted on
        a sample, labels written to an engine table) or None (:envvar:`CXKIT_SCALE`,
        :func:`cxkit.scale.current_settings`).
    **model_options
        Further :class:`~cxkit.personas.Personas` options.

    Returns
    -------
    PersonasResult
        The tables, the model and :meth:`~PersonasResult.findings` (in scale mode a
        :class:`~cxkit.personas.scale.ScalePersonaResult`).

    Raises
    ------
    NotAvailableError
        When the data has neither orders nor events, or too few customers to cluster
        (fewer than twice the largest number of personas tried, or fewer than 10).
    """
    if (scaled := dispatch("personas", mode, locals())) is not None:  # cxkit.personas.scale
        return scaled  # type: ignore[return-value]
    cut = resolve_as_of(data, as_of)
    fit = fit_personas(
        data, as_of=cut, k=k, k_range=k_range, random_state=random_state, **model_options
    )
    rep = dataclasses.replace(fit, not_available=list(fit.not_available))
    asg = rep.assignments
    add_journey_tables(rep, data, asg, as_of=cut)
    if data.has("responses", "comment"):
        try:
            th = voc.themes(data, as_of=cut, random_state=random_state or 0)
            rep.themes = comment_themes(data, asg, themes=th)
            rep.negative_themes = comment_themes(data, asg, themes=th, negative_only=True)
        except NotAvailableError as err:
            rep.not_available.append(str(err))
    else:
        rep.not_available.append(
            str(
                NotAvailableError(
                    "table 'responses' with column 'comment'", analysis="Comment themes"
                )
            )
        )
    return rep


def headline(result: PersonasResult) -> str:
    """Return the personas report's one-line headline.

    Parameters
    ----------
    result
        The result of :func:`analyze`.

    Returns
    -------
    str
        How many personas, who spends the most, and the worst significant pain point.
    """
    m = result.model
    summ = m.summary()
    text = f"{m.k_} personas among {int(m.sizes_.sum()):,} customers"
    if "mean_spend" in summ.columns and len(summ) > 1:
        top = summ.sort_values("mean_spend", ascending=False).iloc[0]
        text += f"; '{top['name']}' spend the most per customer"
    if result.pains is not None:
        pains = result.pains
        sig = pains[pains["significant"].astype(bool)].sort_values("diff")
        if len(sig):
            r = sig.iloc[0]
            text += (
                f"; '{r['persona_name']}' are hurt on {r['dimension']} '{r['value']}' "
                f"({100 * r['csat_top2']:.0f}% satisfied vs {100 * r['rest_top2']:.0f}%)"
            )
    return text + "."
