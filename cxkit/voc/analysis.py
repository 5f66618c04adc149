"""The voice-of-the-customer analysis in one call: :func:`analyze` -> :class:`VocResult`.

:func:`analyze` computes every table the voice-of-the-customer report shows — headline
scores and their change, the NPS trend, scores by channel and touchpoint, key drivers,
comment themes, distinctive words and sentiment, omnichannel consistency, persona pain
points, channel switching and advocacy — and :meth:`VocResult.findings` turns them into
the sentences the report and the executive summary both show. A part the data cannot
support is left ``None`` and its reason kept in :attr:`VocResult.unavailable`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import pandas as pd

from cxkit.cache import run_cached
from cxkit.data import CXData, resolve_as_of
from cxkit.display import format_p
from cxkit.errors import NotAvailableError
from cxkit.findings import Finding, finding_from_rate
from cxkit.result import AsOf, Result
from cxkit.stats import p_text
from cxkit.voc.advocacy import advocacy, promoters_not_referred
from cxkit.voc.drivers import driver_claim, key_drivers
from cxkit.voc.omnichannel import channel_consistency, channel_pain_points, channel_switching
from cxkit.voc.scores import ces, csat, nps, nps_trend, score_summary
from cxkit.voc.text import (
    Themes,
    comment_sentiment,
    comments,
    distinctive_terms,
    representative_comments,
    sentiment_by,
    theme_share,
    themes,
)

__all__ = ["VocResult", "analyze"]

T = TypeVar("T")

_UNITS = {"NPS": "points", "CSAT": "%", "CES": "scale points"}
_FORMATS = {"NPS": "{:+.0f}", "CSAT": "{:.0f}%", "CES": "{:.2f}"}
_CHANGE_UNITS = {"NPS": "points", "CSAT": "percentage points", "CES": "points"}
_IMPORTANCE = {"NPS": 10.0, "CSAT": 8.0, "CES": 6.0}


@dataclass(kw_only=True)
class VocResult(Result):
    """What :func:`analyze` found: the report's tables and the findings built from them.

    Every table is ``None`` when the data cannot support it; :attr:`unavailable` then
    says why (the ``NotAvailableError`` message), keyed by the attribute's name.

    Attributes
    ----------
    days
        The length of the headline window (and of the previous one it is compared with).
    scores
        :func:`cxkit.voc.score_summary`: NPS, CSAT and CES over the last ``days``.
    trend
        :func:`cxkit.voc.nps_trend`: NPS per period with its tests.
    nps_by_channel
        :func:`cxkit.voc.nps` by channel.
    csat_by_touchpoint
        :func:`cxkit.voc.csat` by touchpoint.
    ces_by_touchpoint
        :func:`cxkit.voc.ces` by touchpoint.
    key_drivers
        :func:`cxkit.voc.key_drivers` (linear relative weights on the NPS answer).
    key_drivers_logistic
        The same for promoter status (logistic relative weights).
    themes
        :func:`cxkit.voc.themes`: the comment themes.
    theme_share
        :func:`cxkit.voc.theme_share` by NPS group.
    theme_share_by_quarter
        Theme share of comments per quarter: ``label`` and one column per quarter
        (``"2024-Q1"``, ...), shares 0–1.
    representative_comments
        :func:`cxkit.voc.representative_comments`, two per theme.
    distinctive_terms
        :func:`cxkit.voc.distinctive_terms`, promoters vs detractors.
    sentiment
        :func:`cxkit.voc.sentiment_by` NPS group.
    channel_consistency
        :func:`cxkit.voc.channel_consistency` by touchpoint.
    pain_points
        :func:`cxkit.voc.channel_pain_points` by persona (only with persona labels).
    channel_switching
        :func:`cxkit.voc.channel_switching`.
    advocacy
        :func:`cxkit.voc.advocacy`.
    promoters_not_referred
        :func:`cxkit.voc.promoters_not_referred`.
    unavailable
        Why a table is ``None``, by attribute name.
    """

    domain: ClassVar[str] = "voc"
    days: int
    scores: pd.DataFrame | None = None
    trend: pd.DataFrame | None = None
    nps_by_channel: pd.DataFrame | None = None
    csat_by_touchpoint: pd.DataFrame | None = None
    ces_by_touchpoint: pd.DataFrame | None = None
    key_drivers: pd.DataFrame | None = None
    key_drivers_logistic: pd.DataFrame | None = None
    themes: Themes | None = None
    theme_share: pd.DataFrame | None = None
    theme_share_by_quarter: pd.DataFrame | None = None
    representative_comments: pd.DataFrame | None = None
    distinctive_terms: pd.DataFrame | None = None
    sentiment: pd.DataFrame | None = None
    channel_consistency: pd.DataFrame | None = None
    pain_points: pd.DataFrame | None = None
    channel_switching: pd.DataFrame | None = None
    advocacy: pd.DataFrame | None = None
    promoters_not_referred: pd.DataFrame | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def findings(self) -> list[Finding]:
        """Return the voice-of-the-customer findings.

        Headline NPS / CSAT / CES with the change vs the previous ``days``; the worst
        channel cell (persona × channel with persona labels, else the widest touchpoint
        spread); channel switching; the top key driver; the largest detractor theme;
        advocacy reach and promoters not yet referring. Parts the data could not
        support are skipped.

        Returns
        -------
        list of Finding
            Each with its interval, n and small-group flag.
        """
        out = self._score_findings()
        for part in (
            self._pain_finding,
            self._switching_finding,
            self._driver_finding,
            self._theme_finding,
            self._advocacy_finding,
        ):
            found = part()
            if found is not None:
                out.append(found)
        return out

    def scores_table(self) -> pd.DataFrame | None:
        """Return the headline scores as the report shows them, each in its sentence's format.

        Returns
        -------
        pandas.DataFrame or None
            One row per score: ``score``, ``unit``, ``value (95% CI)``, ``answers``, the
            previous window's value and answers, ``change (95% CI)`` (in points or
            percentage points), ``p`` and ``small group``; None without scores. NPS reads
            in whole points as in the headline (−7, not −6.60).
        """
        if self.scores is None:
            return None
        rows = []
        for _, r in self.scores.iterrows():
            metric = str(r["metric"])
            fmt = _FORMATS[metric]

            def show(v: object, fmt: str = fmt) -> str:
                return "–" if pd.isna(v) else fmt.format(v)

            value = show(r["value"])
            if pd.notna(r["low"]) and pd.notna(r["high"]):
                value += f" ({show(r['low'])} to {show(r['high'])})"
            change = "–"
            if pd.notna(r["change"]):
                change = f"{r['change']:+.1f} {_CHANGE_UNITS[metric]}"
                if pd.notna(r["change_low"]) and pd.notna(r["change_high"]):
                    change += f" ({r['change_low']:+.1f} to {r['change_high']:+.1f})"
            rows.append(
                {
                    "score": metric,
                    "unit": r["unit"],
                    "value (95% CI)": value,
                    "answers": int(r["n"]),
                    f"previous {self.days} days": show(r["previous"]),
                    "previous answers": int(r["previous_n"]) if pd.notna(r["previous_n"]) else 0,
                    "change (95% CI)": change,
                    "p": format_p(r["p_value"]),
                    "small group": "yes" if bool(r["small_n"]) else "no",
                }
            )
        return pd.DataFrame(rows)

    def _score_findings(self) -> list[Finding]:
        if self.scores is None:
            return []
        out = []
        days = self.days
        for _i, r in self.scores.iterrows():
            metric = str(r["metric"])
            fmt = _FORMATS[metric]
            if pd.notna(r["low"]) and pd.notna(r["high"]):
                ci = f"95% CI {fmt.format(r['low'])} to {fmt.format(r['high'])}, "
            else:  # e.g. a mean of one answer
                ci = "too few answers for an interval, "
            s = (
                f"{metric} over the {r['window']} is {fmt.format(r['value'])} "
                f"({ci}n={int(r['n']):,})"
            )
            changed = pd.notna(r["change"]) and pd.notna(r["p_value"])
            if changed:
                word = "up" if r["change"] > 0 else "down"
                p = r["p_value"]
                sig = "significant" if p < 0.05 else "not significant"
                s += (
                    f", {word} {abs(r['change']):.1f} {_CHANGE_UNITS[metric]} on the previous "
                    f"{days} days ({sig}, {p_text(p)})"
                )
            out.append(
                finding_from_rate(
                    r,
                    domain=self.domain,
                    metric=metric.lower(),
                    sentence=s + ".",
                    unit=_UNITS[metric],
                    importance=_IMPORTANCE[metric],
                    low="low",
                    high="high",
                    comparison=f"vs previous {days} days" if changed else None,
                    p_value="p_value",
                    extra={"change": float(r["change"]) if changed else None},
                )
            )
        return out

    def _pain_finding(self) -> Finding | None:
        pp = self.pain_points
        hits = pp[pp["pain_point"]] if pp is not None else pp
        if hits is not None and len(hits):
            r = hits.iloc[0]
            return finding_from_rate(
                r,
                domain=self.domain,
                metric="channel_pain_point",
                sentence=(
                    f"{r['persona']} customers are least satisfied on {r['channel']}: "
                    f"CSAT {100 * r['csat_share']:.0f}% top-2-box (95% CI "
                    f"{100 * r['csat_low']:.0f}-{100 * r['csat_high']:.0f}%, "
                    f"n={int(r['n']):,}), {-r['gap_vs_other_channels']:.0f} points "
                    f"below their other channels and {-r['gap_vs_other_groups']:.0f} "
                    f"below other customers on {r['channel']}."
                ),
                unit="%",
                importance=9.0,
                value="csat_share",
                low="csat_low",
                high="csat_high",
                scale=100.0,
                comparison=f"vs the persona's other channels and others on {r['channel']}",
                p_value=float(max(r["p_vs_other_channels"], r["p_vs_other_groups"])),
                extra={"persona": r["persona"], "channel": r["channel"]},
            )
        cc = self.channel_consistency
        if cc is None:
            return None
        cc = cc[cc["significant"].fillna(False).astype(bool)]
        if not len(cc):
            return None
        r = cc.iloc[0]
        return finding_from_rate(
            {**r.to_dict(), "n": int(r["best_n"] + r["worst_n"])},
            domain=self.domain,
            metric="channel_spread",
            sentence=(
                f"At {r['touchpoint']}, CSAT differs by {r['spread_points']:.0f} points "
                f"between {r['best_channel']} ({100 * r['best_csat']:.0f}%, "
                f"n={int(r['best_n']):,}) and {r['worst_channel']} "
                f"({100 * r['worst_csat']:.0f}%, n={int(r['worst_n']):,}; "
                f"{p_text(r['p_holm'])}, Holm-adjusted)."
            ),
            unit="percentage points",
            importance=7.0,
            value="spread_points",
            low="spread_low",
            high="spread_high",
            comparison="best vs worst channel",
            p_value="p_holm",
        )

    def _switching_finding(self) -> Finding | None:
        sw = self.channel_switching
        if sw is None:
            return None
        r = sw[sw["touchpoint"] == "(all)"].iloc[0]
        if r["customers"] == 0:
            return None
        return finding_from_rate(
            r,
            domain=self.domain,
            metric="channel_switching",
            sentence=(
                f"{100 * r['switch_rate']:.1f}% of customers who contacted support switched "
                f"channel for the same need within 7 days (95% CI "
                f"{100 * r['switch_low']:.1f}-{100 * r['switch_high']:.1f}%, "
                f"n={int(r['customers']):,})."
            ),
            unit="share",
            importance=4.0,
            value="switch_rate",
            low="switch_low",
            high="switch_high",
            n="customers",
        )

    def _driver_finding(self) -> Finding | None:
        kd = self.key_drivers
        if kd is None:
            return None
        r = kd.iloc[0]
        claim = driver_claim(kd)  # worded by R² and the top driver's interval
        return finding_from_rate(
            {**r.to_dict(), "n": int(kd.attrs["n"])},
            domain=self.domain,
            metric="top_driver",
            sentence=claim.sentence,
            unit="% of explained variance",
            importance=6.5,
            value="importance_pct",
            low="importance_low_pct",
            high="importance_high_pct",
            extra={
                "driver": r["driver"],
                "r2": float(kd.attrs["r2"]),
                "explained": claim.explained,
                "clear_lead": claim.clear_lead,
            },
        )

    def _theme_finding(self) -> Finding | None:
        sh = self.theme_share
        if sh is None:
            return None
        det = sh[sh["group"] == "detractor"]
        if det.empty:
            return None
        r = det.loc[det["share"].idxmax()]
        return finding_from_rate(
            r,
            domain=self.domain,
            metric="top_detractor_theme",
            sentence=(
                f"The most common theme in detractors' comments is "
                f"“{r['label']}”: {100 * r['share']:.0f}% of their comments (95% CI "
                f"{100 * r['share_low']:.0f}-{100 * r['share_high']:.0f}%, "
                f"n={int(r['n_group']):,})."
            ),
            unit="share",
            importance=7.5,
            value="share",
            low="share_low",
            high="share_high",
            n="n_group",
            extra={"theme": r["label"]},
        )

    def _advocacy_finding(self) -> Finding | None:
        adv = self.advocacy
        if adv is None:
            return None
        reach = adv[adv["measure"] == "advocacy reach"].iloc[-1]
        s = (
            f"{100 * reach['share']:.0f}% of {reach['base']} reached the advocacy stage "
            f"(95% CI {100 * reach['share_low']:.0f}-{100 * reach['share_high']:.0f}%, "
            f"n={int(reach['base_n']):,})"
        )
        extra: dict[str, int] = {}
        if self.promoters_not_referred is not None:
            waiting = len(self.promoters_not_referred)
            s += f"; {waiting:,} promoters have not referred anyone yet"
            extra["promoters_not_referred"] = waiting
        return finding_from_rate(
            reach,
            domain=self.domain,
            metric="advocacy_reach",
            sentence=s + ".",
            unit="share",
            importance=5.0,
            value="share",
            low="share_low",
            high="share_high",
            n="base_n",
            extra=extra,
        )


def _by_quarter(th: Themes) -> pd.DataFrame:
    """Theme share of comments per quarter, one column per quarter (``2024-Q1``)."""
    long = theme_share(th, by="period", freq="quarter")
    table = long.pivot_table(index="label", columns="group", values="share").sort_index()
    table.columns = [f"{c:%Y-Q}{(c.month - 1) // 3 + 1}" for c in table.columns]
    return table.reset_index()


@run_cached("voc.analyze")
def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    personas: pd.Series | None = None,
    days: int = 90,
    freq: str = "month",
    n_themes: int = 12,
    n_boot: int = 200,
    text: bool = True,
    random_state: int = 0,
) -> VocResult:
    """Compute the voice-of-the-customer report's tables and findings in one call.

    Parameters
    ----------
    data
        The data (``responses`` with NPS, CSAT and CES answers; ``events`` for channel
        switching and advocacy).
    as_of
        The last instant the analysis sees (:func:`cxkit.data.resolve_as_of`; ``None``:
        the data's own cut, else its latest timestamp).
    personas
        Persona labels (names indexed by ``customer_id``), e.g. from
        :func:`cxkit.personas.resolve_persona_labels`; ``None`` skips the persona
        pain points.
    days
        The headline window: the last ``days`` against the ``days`` before.
    freq
        The NPS trend's period: week, month or quarter.
    n_themes
        The number of comment themes.
    n_boot
        Bootstrap resamples of the key-driver intervals.
    text
        Whether to analyse the comments (themes, distinctive words, sentiment).
    random_state
        The seed of the key-driver bootstrap and of the themes.

    Returns
    -------
    VocResult
        The tables (``None`` where the data cannot support them, with the reason in
        :attr:`VocResult.unavailable`) and :meth:`VocResult.findings`.

    Examples
    --------
    >>> import cxkit
    >>> r = pd.DataFrame({"response_id": list("abcd"), "customer_id": list("abcd"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "nps", "score": [10, 9, 7, 3]})
    >>> res = analyze(cxkit.load({"responses": r}), text=False)
    >>> res.as_of, [f.metric for f in res.findings()]
    (Timestamp('2024-01-01 23:59:59.999999'), ['nps', 'advocacy_reach'])
    """
    end = resolve_as_of(data, as_of)
    d = data.upto(end)
    unavailable: dict[str, str] = {}

    def part(name: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except NotAvailableError as err:
            unavailable[name] = str(err)
            return None

    tables: dict[str, object] = {
        "scores": part("scores", lambda: score_summary(d, days=days)),
        "trend": part("trend", lambda: nps_trend(d, freq=freq)),
        "nps_by_channel": part("nps_by_channel", lambda: nps(d, by="channel")),
        "csat_by_touchpoint": part("csat_by_touchpoint", lambda: csat(d, by="touchpoint")),
        "ces_by_touchpoint": part("ces_by_touchpoint", lambda: ces(d, by="touchpoint")),
        "key_drivers": part(
            "key_drivers", lambda: key_drivers(d, n_boot=n_boot, random_state=random_state)
        ),
        "key_drivers_logistic": part(
            "key_drivers_logistic",
            lambda: key_drivers(d, method="logistic", n_boot=n_boot, random_state=random_state),
        ),
    }
    if text:
        th = part("themes", lambda: themes(d, n_themes=n_themes, random_state=random_state))
        if th is None:
            for name in ("theme_share", "theme_share_by_quarter", "representative_comments"):
                unavailable[name] = unavailable["themes"]
        else:
            tables["themes"] = th
            tables["theme_share"] = theme_share(th, by="nps_group")
            tables["theme_share_by_quarter"] = _by_quarter(th)
            tables["representative_comments"] = representative_comments(th, n=2)
        said = part("sentiment", lambda: comments(d))
        if said is None:
            unavailable["distinctive_terms"] = unavailable["sentiment"]
        else:
            tables["distinctive_terms"] = part("distinctive_terms", lambda: distinctive_terms(said))
            tables["sentiment"] = sentiment_by(comment_sentiment(said))
    tables["channel_consistency"] = part(
        "channel_consistency", lambda: channel_consistency(d, by="touchpoint")
    )
    if personas is not None:
        tables["pain_points"] = part(
            "pain_points", lambda: channel_pain_points(d, by="persona", personas=personas)
        )
    tables["channel_switching"] = part("channel_switching", lambda: channel_switching(d))
    tables["advocacy"] = part("advocacy", lambda: advocacy(d))
    tables["promoters_not_referred"] = part(
        "promoters_not_referred", lambda: promoters_not_referred(d)
    )
    return VocResult(
        as_of=end,
        days=days,
        unavailable=unavailable,
        not_available=list(dict.fromkeys(unavailable.values())),
        **tables,  # type: ignore[arg-type]
    )
