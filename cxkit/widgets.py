"""Interactive explorers for analysts in JupyterLab (ipywidgets 8 + plotly FigureWidget).

Four explorers, each a small class whose ``.widget`` is an ipywidgets container:

* :class:`FunnelExplorer` — steps, window, entry rule, breakdown and date range →
  :func:`cxkit.lifecycle.funnel`, drawn as bars with Wilson intervals plus a table;
* :class:`PersonaExplorer` — a persona → its profile, its journey map
  (:func:`cxkit.personas.journey_map`) and its most valuable at-risk customers (churn
  probability from :mod:`cxkit.churn`, CLV from :mod:`cxkit.clv`);
* :class:`CustomerLookup` — a customer ID → a timeline of events, orders and survey
  responses, with the customer's scores;
* :class:`NpsExplorer` — period, channel, touchpoint and persona filters →
  :func:`cxkit.voc.nps` with its interval, :func:`cxkit.voc.nps_trend` and the latest
  comments.

The explorers hold no analysis of their own: every number comes from the domain
function, called on the selected slice of the data; the explorer only filters, calls and
redraws. Per-customer results that are costly to compute (personas, churn and CLV
scores) are passed in once, as the notebooks already have them.

Callbacks are plain methods: set the controls' ``value`` and call :meth:`update` (with
``live=True``, the default, a change of any control calls it for you). A selection that
gives nothing to show (no steps, a filter with zero rows, an unknown customer) shows a
message in ``.message`` instead of raising; so does a ``NotAvailableError`` (e.g. data
without events). Every text that comes from the data is HTML-escaped before it is shown.

In JupyterLab 4 (``make lab``) nothing needs installing or building: ipywidgets 8 and
anywidget (which plotly's ``FigureWidget`` needs from plotly 6 on) ship prebuilt
extensions. The kernel must be the environment's own Python (the default when JupyterLab
runs from the same venv). Static exports (papermill, the HTML reports) show only a
widget placeholder, which is why the notebooks display explorers only when
``interactive`` is true.

Examples
--------
>>> import cxkit
>>> from cxkit.widgets import FunnelExplorer
>>> data = cxkit.load("data/demo")                                      # doctest: +SKIP
>>> fx = FunnelExplorer(data, steps=["site_visit", "product_view", "order"])  # doctest: +SKIP
>>> fx.widget                                                            # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

import ibis
import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from cxkit import lifecycle, plots, stats, voc
from cxkit.data import CXData
from cxkit.display import format_cell, table_html
from cxkit.errors import CxkitError
from cxkit.personas import PersonasResult, journey_map

__all__ = [
    "CustomerLookup",
    "FunnelExplorer",
    "NpsExplorer",
    "PersonaExplorer",
    "table_html",
]

ALL = "(all)"
_NONE = "(none)"

#: Persona labels an explorer accepts: a result of :func:`cxkit.personas.analyze`, the
#: frame from :func:`cxkit.personas.assign`, or a Series of names indexed by customer_id.
PersonaLabels = PersonasResult | pd.DataFrame | pd.Series

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------
# small helpers (selection and display only; no analysis here)
# --------------------------------------------------------------------------------------


def _as_date(ts: pd.Timestamp | None) -> dt.date | None:
    """Return the date of ``ts`` for a ``DatePicker`` (None for a missing one)."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).date()


def _message_html(text: str, kind: str = "info") -> str:
    """Return ``text`` as an escaped message line (``kind`` "info" or "warn")."""
    colour = {"info": "#52606d", "warn": plots.BAD}.get(kind, "#52606d")
    return f'<p class="cx-widget-message" style="color:{colour}">{html.escape(text)}</p>'


def _redraw(target: go.FigureWidget, fig: go.Figure) -> None:
    """Replace the traces and layout of ``target`` by those of ``fig``, in place."""
    with target.batch_update():
        target.data = ()
        if fig.data:
            target.add_traces(list(fig.data))
        target.layout = fig.layout


def _distinct(table: ibis.Table, column: str, limit: int = 200) -> list[str]:
    """Distinct non-null values of a (small-cardinality) column, sorted."""
    if column not in table.columns:
        return []
    vals = table.select(v=table[column].cast("string")).distinct().limit(limit).to_pandas()["v"]
    return sorted(str(v) for v in vals.dropna())


def _assignments(personas: PersonaLabels | None) -> pd.DataFrame | None:
    """Return customer_id / persona_name from a PersonasResult, an assign() frame or a Series."""
    if personas is None:
        return None
    asg = getattr(personas, "assignments", personas)
    if isinstance(asg, pd.Series):
        asg = asg.rename("persona_name").rename_axis("customer_id").reset_index()
    if not isinstance(asg, pd.DataFrame):
        raise TypeError(
            "personas must be a PersonasResult, a frame with customer_id and persona_name, "
            f"or a Series of names indexed by customer_id; got {type(personas).__name__}"
        )
    name = "persona_name" if "persona_name" in asg.columns else "persona"
    if "customer_id" not in asg.columns or name not in asg.columns:
        raise TypeError(
            f"personas need columns customer_id and persona_name, got {list(asg.columns)}"
        )
    return pd.DataFrame(
        {
            "customer_id": asg["customer_id"].astype(str).to_numpy(),
            "persona_name": asg[name].astype(str).to_numpy(),
        }
    )


class _Explorer:
    """Shared machinery: a message line, an error guard and live updates."""

    widget: w.Box
    message: w.HTML

    #: How many results each explorer keeps, so that going back to a selection is instant.
    memo_size = 32

    def _init_common(self) -> None:
        self.message = w.HTML(value="")
        self.n_updates = 0
        self._memo: dict[Hashable, object] = {}

    def _memo_get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """Return ``compute()`` for this selection, remembered (the data never change)."""
        if key in self._memo:
            return self._memo[key]  # type: ignore[return-value]
        value = compute()
        if len(self._memo) >= self.memo_size:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = value
        return value

    def _watch(self, controls: Sequence[w.Widget]) -> None:
        """Call :meth:`_on_change` when any of ``controls`` changes value."""
        for c in controls:
            c.observe(self._on_change, names="value")

    def _on_change(self, change: Mapping[str, object]) -> None:
        """Update on a control's change when ``live``."""
        if self.live:
            self.update()

    def _say(self, text: str, kind: str = "info") -> None:
        """Show ``text`` in the message line (an empty text clears it)."""
        self.message.value = _message_html(text, kind) if text else ""

    def update(self) -> None:
        """Recompute for the current control values and redraw in place.

        Never raises: a selection with nothing to show, or data that cannot support the
        analysis, shows a message (``.message``) and an empty figure and table.
        """
        self.n_updates += 1
        self._say("")
        try:
            self._update()
        except CxkitError as err:
            self._clear()
            self._say(str(err), "warn")
        except Exception as err:
            self._clear()
            self._say(f"Could not update: {type(err).__name__}: {err}", "warn")

    def _update(self) -> None:  # pragma: no cover - abstract
        """Recompute and redraw; may raise (see :meth:`update`)."""
        raise NotImplementedError

    def _clear(self) -> None:  # pragma: no cover - abstract
        """Empty the figure and the tables."""
        raise NotImplementedError

    def _ipython_display_(self) -> None:
        """Display the explorer's widget."""
        display(self.widget)


# --------------------------------------------------------------------------------------
# funnel
# --------------------------------------------------------------------------------------

_WINDOWS: list[tuple[str, float]] = [
    ("no limit", 0.0),
    ("1 day", 1.0),
    ("7 days", 7.0),
    ("14 days", 14.0),
    ("30 days", 30.0),
    ("90 days", 90.0),
]
_FUNNEL_COLUMNS = [
    "step",
    "step_name",
    "n_customers",
    "rate_from_start",
    "ci_low",
    "ci_high",
    "rate_from_previous",
    "median_time_from_previous_days",
    "small_n",
]


class FunnelExplorer(_Explorer):
    """Explore an ordered funnel: steps, window, entry rule, breakdown and date range.

    Each update calls :func:`cxkit.lifecycle.funnel` on the data between the chosen
    dates (activity outside the range is ignored) and redraws the headline, the bars
    (share of entrants reaching each step, Wilson 95% interval) and the table in place.
    The headline names the window and the entry rule it was computed with, so it changes
    with them even when the counts do not (with entry "any", every occurrence of the first
    step may start the funnel, so a longer window often matches the same customers).

    A step can be an event name of the data, ``order`` or a lifecycle stage; a step that
    is none of these shows a message naming it and the known steps (nothing is computed).

    Parameters
    ----------
    data
        The loaded data (needs ``events``; ``orders`` for the ``order`` step).
    steps
        The steps shown at first (default: ``site_visit``, ``product_view``,
        ``add_to_cart``, ``order`` where present).
    window, entry, breakdown
        The first values of those controls (window in days, None = no limit; a
        breakdown the data do not have starts as none), e.g. the notebook's parameters.
    personas
        Optional persona labels (a :class:`cxkit.personas.PersonasResult`, the frame from
        :func:`cxkit.personas.assign` or a Series): adds ``persona`` as a breakdown.
    live
        Recompute whenever a control changes (set False to drive :meth:`update` yourself).

    Attributes
    ----------
    widget
        The container to display.
    steps, window, entry, breakdown, start, end
        The controls (``TagsInput`` (any text may be typed; unknown steps get a
        message), ``Dropdown`` of days (0 = no limit), ``ToggleButtons``, ``Dropdown``,
        ``DatePicker`` ×2).
    known_steps
        The step names the data supports: its event names, ``order`` and the stages.
    headline
        ``HTML``: how many entrants reach the last step, within which window, counted
        from which occurrence of the first step.
    fig
        The ``go.FigureWidget``; ``table`` the ``HTML`` table; ``result`` the funnel frame
        last shown (None when a message is shown instead).
    """

    def __init__(
        self,
        data: CXData,
        *,
        steps: Sequence[str] | None = None,
        window: float | None = None,
        entry: str = "any",
        breakdown: str | None = None,
        personas: PersonaLabels | None = None,
        live: bool = True,
    ) -> None:
        self._init_common()
        self.data = data
        self.live = live
        self._personas = _assignments(personas)
        events = data.table("events") if "events" in data else None
        names = _distinct(events, "event") if events is not None else []
        stage_names = list(lifecycle.STAGES)
        options = [*names, *(["order"] if "orders" in data else []), *stage_names]
        self.known_steps: list[str] = list(options)
        if steps is None:
            wanted = ["site_visit", "product_view", "add_to_cart", "order"]
            steps = [s for s in wanted if s in options] or options[:3]
        breakdowns = [_NONE]
        if events is not None and "channel" in events.columns:
            breakdowns.append("entry_channel")
        if "customers" in data:
            cust = data.table("customers")
            breakdowns += [
                c
                for c in cust.columns
                if c not in ("customer_id", "signup_at", "churned_at")
                and cust[c].type().is_string()
            ]
        if self._personas is not None:
            breakdowns.append("persona")
        lo, hi = data.min_ts(), data.max_ts()

        # Any text may be typed (allowed_tags would make the browser drop an unknown name
        # without a word); _update names an unknown step and lists the known ones.
        self.steps = w.TagsInput(value=list(steps), allow_duplicates=True, description="Steps")
        self.step_hint = w.HTML(
            _message_html(
                "Steps: an event name ("
                + (", ".join(names) if names else "none in this data")
                + "), 'order' or a stage ("
                + ", ".join(stage_names)
                + ")."
            )
        )
        windows = list(_WINDOWS)
        win = float(window or 0.0)
        if win not in [v for _, v in windows]:
            windows.append((f"{win:g} days", win))
        self.window = w.Dropdown(options=windows, value=win, description="Window")
        self.entry = w.ToggleButtons(
            options=["any", "first"],
            value=entry if entry in ("any", "first") else "any",
            description="Entry",
            style={"button_width": "60px"},
        )
        by = breakdown if breakdown in breakdowns else _NONE
        self.breakdown = w.Dropdown(options=breakdowns, value=by, description="Breakdown")
        self.start = w.DatePicker(value=_as_date(lo), description="From")
        self.end = w.DatePicker(value=_as_date(hi), description="To")
        self.headline = w.HTML()
        self.fig = go.FigureWidget(plots.figure("Funnel"))
        self.table = w.HTML()
        self.result: pd.DataFrame | None = None
        controls = [self.steps, self.window, self.entry, self.breakdown, self.start, self.end]
        self._watch(controls)
        self.widget = w.VBox(
            [
                self.steps,
                self.step_hint,
                w.HBox([self.window, self.entry]),
                w.HBox([self.breakdown, self.start, self.end]),
                self.message,
                self.headline,
                self.fig,
                self.table,
            ]
        )
        self.update()

    def _by(self) -> str | pd.DataFrame | None:
        """Return the ``by`` argument of the funnel for the chosen breakdown."""
        b = self.breakdown.value
        if b == _NONE:
            return None
        if b == "persona":
            return self._personas.rename(columns={"persona_name": "persona"})
        return b

    def _clear(self) -> None:
        self.result = None
        self.table.value = self.headline.value = ""
        _redraw(self.fig, plots.figure("Funnel"))

    def _unknown_steps(self, steps: Sequence[str]) -> list[str]:
        """Return the steps that are no event of the data, ``order`` or a stage."""
        fixed = {"order", *lifecycle.STAGES}
        todo = [s for s in dict.fromkeys(steps) if s not in self.known_steps and s not in fixed]
        if todo and "events" in self.data:
            ev = self.data.table("events")
            hit = ev.filter(ev.event.isin(todo)).select("event").distinct().to_pandas()["event"]
            self.known_steps += [str(v) for v in hit]
        if "events" not in self.data:
            return []  # the funnel itself says that it needs the events table
        return [s for s in todo if s not in self.known_steps]

    def _update(self) -> None:
        steps = list(self.steps.value)
        if not steps:
            self._clear()
            self._say("Choose at least one step (type an event name, 'order' or a stage).")
            return
        unknown = self._unknown_steps(steps)
        if unknown:
            self._clear()
            names = ", ".join(f"'{s}'" for s in unknown)
            self._say(
                f"Unknown step {names}: not an event in this data, 'order' or a stage. "
                f"Known steps: {', '.join(self.known_steps)}.",
                "warn",
            )
            return
        start, end = self.start.value, self.end.value
        if start is not None and end is not None and start > end:
            self._clear()
            self._say(f"The start date {start} is after the end date {end}: nothing to show.")
            return
        window = float(self.window.value) or None
        entry, by = self.entry.value, self.breakdown.value
        f = self._memo_get(
            (tuple(steps), window, entry, by, start, end),
            lambda: lifecycle.funnel(
                self.data.between(start, end), steps, window=window, entry=entry, by=self._by()
            ),
        )
        first = f[f["step"] == 1]
        if len(f) == 0 or int(first["n_customers"].sum()) == 0:
            self._clear()
            span = f" between {start} and {end}" if start or end else ""
            self._say(f"No customer has the first step ({steps[0]}){span}.")
            return
        self.result = f
        self._draw(f, steps, window, entry)

    def _headline_text(
        self, f: pd.DataFrame, steps: list[str], window: float | None, entry: str
    ) -> tuple[str, str]:
        """Return (headline, chart title) for a funnel: its rate, window and entry rule."""
        n1 = int(f.loc[f["step"] == 1, "n_customers"].sum())
        nk = int(f.loc[f["step"] == len(steps), "n_customers"].sum())
        within = f"within {window:g} days" if window else "with no time limit"
        start = "any" if entry == "any" else "the first"
        if len(steps) == 1:
            text = f"{n1:,} customers with '{steps[0]}'"
            return text + ".", text
        rate = nk / n1 if n1 else np.nan
        head = (
            f"{nk:,} of {n1:,} customers ({rate:.1%}) reach '{steps[-1]}' {within}, "
            f"counted from {start} '{steps[0]}'."
        )
        return head, f"{rate:.1%} of {n1:,} entrants reach '{steps[-1]}' {within}"

    def _draw(self, f: pd.DataFrame, steps: list[str], window: float | None, entry: str) -> None:
        gcol = next(
            (c for c in f.columns if c not in _FUNNEL_COLUMNS and c not in _FUNNEL_OTHER),
            None,
        )
        head, title = self._headline_text(f, steps, window, entry)
        self.headline.value = (
            f'<p class="cx-widget-headline" style="font-size:15px"><b>{html.escape(head)}</b></p>'
        )
        fig = plots.figure(title, x_title="step", y_title="reached from step 1 (%)")
        groups = [None] if gcol is None else sorted(f[gcol].unique().tolist())
        for i, g in enumerate(groups):
            sub = f if g is None else f[f[gcol] == g]
            x = [f"{s}. {n}" for s, n in zip(sub["step"], sub["step_name"], strict=True)]
            fig.add_bar(
                x=plots.escape_label(x),
                y=100 * sub["rate_from_start"],
                name="all" if g is None else plots.escape_label(str(g)),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": 100 * (sub["ci_high"] - sub["rate_from_start"]),
                    "arrayminus": 100 * (sub["rate_from_start"] - sub["ci_low"]),
                    "color": "#52606d",
                },
                marker_color=plots.PALETTE[i % len(plots.PALETTE)],
                customdata=sub["n_customers"],
                hovertemplate="%{x}: %{y:.1f}% (n=%{customdata:,})<extra>%{fullData.name}</extra>",
            )
        fig.update_layout(barmode="group", showlegend=gcol is not None)
        _redraw(self.fig, fig)
        cols = [c for c in ([gcol] if gcol else []) + _FUNNEL_COLUMNS if c in f.columns]
        self.table.value = table_html(f[cols], percent=["ci_low", "ci_high"])
        if f["small_n"].any():
            self._say(f"Rates from fewer than {stats.MIN_N} customers are flagged (small_n).")


#: The funnel frame's columns that are neither shown nor a group column.
_FUNNEL_OTHER = {
    "ci_low_from_previous",
    "ci_high_from_previous",
    "n_previous",
    *(
        f"{a}_time_from_{b}_{u}"
        for a in ("median", "p90")
        for b in ("previous", "start")
        for u in ("hours", "days")
    ),
}


# --------------------------------------------------------------------------------------
# personas
# --------------------------------------------------------------------------------------


def _value_column(scores: pd.DataFrame) -> str | None:
    col = scores.attrs.get("clv_column")
    if col in scores.columns:
        return col
    cols = [c for c in scores.columns if c.startswith("clv_")]
    return cols[0] if cols else None


class PersonaExplorer(_Explorer):
    """Pick a persona: its profile, journey map and most valuable at-risk customers.

    Parameters
    ----------
    data
        The loaded data.
    personas
        A :class:`cxkit.personas.PersonasResult` (from :func:`cxkit.personas.analyze`;
        gives the profile card and the journey map already computed), or persona labels
        (the frame from :func:`cxkit.personas.assign`, or a Series of names indexed by
        customer_id) — the journey map is then computed once here with
        :func:`cxkit.personas.journey_map`.
    scores
        Per-customer scores: ``customer_id`` plus ``churn_probability`` (from
        :func:`cxkit.churn.score`) and a ``clv_*`` column (from
        :func:`cxkit.clv.customer_value`), e.g. the two merged on ``customer_id``. Without
        them the at-risk table says so.
    journey
        The journey map if already computed (:func:`cxkit.personas.journey_map` on the
        same labels); by default the report's, else computed once here.
    top
        How many at-risk customers to list.
    live
        Recompute whenever a control changes.

    Attributes
    ----------
    persona, min_churn
        The controls: persona ``Dropdown`` and the churn-probability threshold
        (``FloatSlider``, default 0.5 = the "medium" risk band and above).
    profile
        ``HTML`` profile card; ``fig`` the journey ``FigureWidget`` (reach per stage with
        Wilson intervals); ``table`` the at-risk ``HTML`` table; ``journey`` and
        ``at_risk`` the frames last shown.
    """

    def __init__(
        self,
        data: CXData,
        personas: PersonaLabels,
        *,
        scores: pd.DataFrame | None = None,
        journey: pd.DataFrame | None = None,
        top: int = 10,
        live: bool = True,
    ) -> None:
        self._init_common()
        self.data = data
        self.live = live
        self.top = int(top)
        self._asg = _assignments(personas)
        if self._asg is None:
            raise TypeError("PersonaExplorer needs personas (e.g. cxkit.personas.analyze(data))")
        report = personas if hasattr(personas, "model") else None
        self._cards: pd.DataFrame | None = None
        if report is not None:
            try:
                self._cards = report.cards
            except Exception:
                self._cards = report.model.summary().rename(columns={"name": "persona_name"})
        if journey is None:
            journey = getattr(report, "journey", None)
        self._journey = journey if journey is not None else journey_map(data, self._asg)
        self._scores = None
        self._value_col: str | None = None
        if scores is not None:
            if "customer_id" not in scores.columns:
                raise TypeError("scores need a customer_id column")
            s = scores.copy()
            s["customer_id"] = s["customer_id"].astype(str)
            self._value_col = _value_column(s)
            self._scores = self._asg.merge(s, on="customer_id", how="inner")
        sizes = self._asg["persona_name"].value_counts()
        self.persona = w.Dropdown(options=list(sizes.index), description="Persona")
        self.min_churn = w.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="Churn ≥", readout_format=".0%"
        )
        self.profile = w.HTML()
        self.fig = go.FigureWidget(plots.figure("Journey"))
        self.table = w.HTML()
        self.journey: pd.DataFrame | None = None
        self.at_risk: pd.DataFrame | None = None
        self._watch([self.persona, self.min_churn])
        self.widget = w.VBox(
            [
                w.HBox([self.persona, self.min_churn]),
                self.message,
                self.profile,
                self.fig,
                w.HTML("<b>Most valuable customers at risk</b>"),
                self.table,
            ]
        )
        self.update()

    def _clear(self) -> None:
        self.journey = self.at_risk = None
        self.profile.value = self.table.value = ""
        _redraw(self.fig, plots.figure("Journey"))

    def _update(self) -> None:
        name = self.persona.value
        if name is None:
            self._clear()
            self._say("Choose a persona.")
            return
        members = self._asg[self._asg["persona_name"] == name]
        self.profile.value = self._profile_html(name, len(members))
        j = self._journey[self._journey["persona_name"] == name].reset_index(drop=True)
        self.journey = j
        if len(j):
            j = j.assign(label=[f"{r:.0%}" for r in j["reach"]])
            fig = plots.bar_with_ci(
                j,
                x="stage",
                y="reach",
                low="reach_ci_low",
                high="reach_ci_high",
                # the last stage the data has (orders alone: retention, never advocacy)
                title=f"{name}: {j['reach'].iloc[-1]:.0%} reach {j['stage'].iloc[-1]}",
                x_title="stage",
                y_title="customers reaching the stage (%)",
                text="label",
                percent=True,
            )
            _redraw(self.fig, fig)
        else:
            _redraw(self.fig, plots.figure(f"{name}: no journey data"))
        self._at_risk(name)

    def _profile_html(self, name: str, n: int) -> str:
        share = n / max(len(self._asg), 1)
        rows = [("persona", name), ("customers", f"{n:,} ({share:.0%} of all)")]
        if self._cards is not None:
            card = self._cards[self._cards["persona_name"] == name]
            if len(card):
                r = card.iloc[0]
                for col in card.columns:
                    if col in ("persona", "persona_name", "n_customers", "share"):
                        continue
                    rows.append((col, format_cell(r[col], col)))
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f'<table class="cx-persona-card">{body}</table>'

    def _at_risk(self, name: str) -> None:
        if self._scores is None or "churn_probability" not in self._scores.columns:
            self.table.value = _message_html(
                "Churn and CLV scores were not given: pass scores= (cxkit.churn.score merged "
                "with cxkit.clv.customer_value on customer_id) to list the most valuable "
                "customers at risk."
            )
            return
        s = self._scores
        s = s[(s["persona_name"] == name) & (s["churn_probability"] >= self.min_churn.value)]
        order = self._value_col or "churn_probability"
        s = s.sort_values([order, "customer_id"], ascending=[False, True]).head(self.top)
        wanted = ["customer_id", "churn_probability", "risk_band", self._value_col]
        wanted += [c for c in s.columns if c.startswith("clv_")]
        wanted += ["p_alive", "spend_to_date", "recommended_focus"]
        keep = [c for c in dict.fromkeys(wanted) if c and c in s.columns]
        self.at_risk = s[keep].reset_index(drop=True)
        if len(s) == 0:
            self.table.value = _message_html(
                f"No customer of {name} has a churn probability of at least "
                f"{self.min_churn.value:.0%}."
            )
            return
        self.table.value = table_html(self.at_risk)


# --------------------------------------------------------------------------------------
# customer lookup
# --------------------------------------------------------------------------------------


class CustomerLookup(_Explorer):
    """A customer ID → a timeline of events, orders and responses, with their scores.

    Parameters
    ----------
    data
        The loaded data.
    scores
        Optional per-customer scores (``customer_id`` plus any columns, e.g. churn
        probability, risk band, CLV, p_alive) shown in the card.
    personas
        Optional persona labels (PersonasResult, assign() frame or Series).
    max_rows
        The table shows the latest ``max_rows`` rows of the timeline.
    live
        Look up as soon as the ID changes.

    Attributes
    ----------
    customer_id
        The ``Text`` control.
    card
        ``HTML`` with the customer's attributes and scores; ``fig`` the timeline
        ``FigureWidget``; ``table`` the ``HTML`` timeline table; ``timeline`` the frame.
    """

    def __init__(
        self,
        data: CXData,
        *,
        scores: pd.DataFrame | None = None,
        personas: PersonaLabels | None = None,
        max_rows: int = 200,
        customer_id: str = "",
        live: bool = True,
    ) -> None:
        self._init_common()
        self.data = data
        self.live = live
        self.max_rows = int(max_rows)
        extra = []
        if scores is not None:
            s = scores.copy()
            s["customer_id"] = s["customer_id"].astype(str)
            extra.append(s.drop_duplicates("customer_id").set_index("customer_id"))
        asg = _assignments(personas)
        if asg is not None:
            extra.append(asg.drop_duplicates("customer_id").set_index("customer_id"))
        self._extra = extra
        self.customer_id = w.Text(
            value=customer_id,
            description="Customer",
            placeholder="customer ID",
            continuous_update=False,
        )
        self.card = w.HTML()
        self.fig = go.FigureWidget(plots.figure("Customer timeline"))
        self.table = w.HTML()
        self.timeline: pd.DataFrame | None = None
        self._watch([self.customer_id])
        self.widget = w.VBox([self.customer_id, self.message, self.card, self.fig, self.table])
        self.update()

    def _clear(self) -> None:
        self.timeline = None
        self.card.value = self.table.value = ""
        _redraw(self.fig, plots.figure("Customer timeline"))

    def _rows(self, name: str, cid: str) -> pd.DataFrame | None:
        if name not in self.data:
            return None
        t = self.data.table(name)
        return t.filter(t.customer_id == cid).to_pandas()

    def _update(self) -> None:
        cid = str(self.customer_id.value).strip()
        if not cid:
            self._clear()
            self._say("Enter a customer ID.")
            return
        cust = self._rows("customers", cid)
        parts = []
        ev = self._rows("events", cid)
        if ev is not None and len(ev):
            parts.append(
                pd.DataFrame(
                    {
                        "ts": ev["ts"],
                        "kind": "event",
                        "what": ev["event"].astype(str),
                        "channel": ev["channel"] if "channel" in ev else None,
                        "touchpoint": ev["touchpoint"] if "touchpoint" in ev else None,
                    }
                )
            )
        od = self._rows("orders", cid)
        if od is not None and len(od):
            parts.append(
                pd.DataFrame(
                    {
                        "ts": od["ts"],
                        "kind": "order",
                        "what": "order " + od["order_id"].astype(str),
                        "channel": od["channel"] if "channel" in od else None,
                        "amount": od["amount"].astype(float),
                    }
                )
            )
        rs = self._rows("responses", cid)
        if rs is not None and len(rs):
            parts.append(
                pd.DataFrame(
                    {
                        "ts": rs["ts"],
                        "kind": "response",
                        "what": rs["survey"].astype(str).str.upper(),
                        "channel": rs["channel"] if "channel" in rs else None,
                        "touchpoint": rs["touchpoint"] if "touchpoint" in rs else None,
                        "score": rs["score"],
                        "comment": rs["comment"] if "comment" in rs else None,
                    }
                )
            )
        known = (cust is not None and len(cust) > 0) or bool(parts)
        if not known:
            self._clear()
            self._say(f"No customer with ID '{cid}' in the data.")
            return
        cols = ["ts", "kind", "what", "channel", "touchpoint", "amount", "score", "comment"]
        tl = (
            pd.concat([p.dropna(axis=1, how="all") for p in parts], ignore_index=True)
            if parts
            else pd.DataFrame(columns=cols)
        )
        tl = tl.reindex(columns=cols).sort_values(["ts", "kind"], kind="stable")
        self.timeline = tl.reset_index(drop=True)
        self.card.value = self._card_html(cid, cust, od, rs, ev)
        self._draw(cid, self.timeline)
        shown = self.timeline.iloc[::-1]
        if len(shown) > self.max_rows:
            self._say(f"Showing the latest {self.max_rows:,} of {len(shown):,} rows.")
        self.table.value = table_html(shown, max_rows=self.max_rows)
        if not parts:
            self._say(f"Customer '{cid}' has no events, orders or responses.")

    def _card_html(
        self,
        cid: str,
        cust: pd.DataFrame | None,
        od: pd.DataFrame | None,
        rs: pd.DataFrame | None,
        ev: pd.DataFrame | None,
    ) -> str:
        """Return the customer's card: attributes, counts, latest scores, given scores."""
        items: list[tuple[str, str]] = [("customer_id", cid)]
        if cust is not None and len(cust):
            for c in cust.columns:
                if c != "customer_id":
                    items.append((c, format_cell(cust.iloc[0][c], c)))
        n_ev = 0 if ev is None else len(ev)
        n_od = 0 if od is None else len(od)
        spend = float(od["amount"].sum()) if n_od else 0.0
        items += [("events", f"{n_ev:,}"), ("orders", f"{n_od:,} ({spend:,.2f} spent)")]
        if rs is not None and len(rs):
            for survey, g in rs.sort_values("ts").groupby("survey"):
                items.append(
                    (f"latest {str(survey).upper()}", f"{g['score'].iloc[-1]} (of {len(g)})")
                )
        for frame in self._extra:
            if cid in frame.index:
                for c, v in frame.loc[cid].items():
                    items.append((str(c), format_cell(v, str(c))))
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in items
        )
        return f'<table class="cx-customer-card">{body}</table>'

    def _draw(self, cid: str, tl: pd.DataFrame) -> None:
        fig = plots.figure(
            f"Customer {cid}: {len(tl):,} things happened",  # plots.figure escapes it
            x_title="date",
            y_title="",
            height=max(300, 60 + 24 * tl["what"].where(tl["kind"] != "order", "order").nunique()),
        )
        for i, kind in enumerate(("event", "order", "response")):
            sub = tl[tl["kind"] == kind]
            if not len(sub):
                continue
            y = sub["what"] if kind != "order" else pd.Series("order", index=sub.index)
            hover = [
                "<br>".join(
                    plots.escape_label(f"{k}: {format_cell(v, k)}")
                    for k, v in r.items()
                    if k != "kind" and not (pd.api.types.is_scalar(v) and pd.isna(v))
                )
                for r in sub.to_dict("records")
            ]
            fig.add_scatter(
                x=sub["ts"],
                y=plots.escape_label(y),
                mode="markers",
                name=kind + "s",
                marker={"color": plots.PALETTE[i], "size": 9},
                hovertext=hover,
                hoverinfo="text",
            )
        fig.update_yaxes(type="category")
        _redraw(self.fig, fig)


# --------------------------------------------------------------------------------------
# NPS
# --------------------------------------------------------------------------------------


class NpsExplorer(_Explorer):
    """NPS for a period, channel, touchpoint and persona: score, trend and comments.

    Each update filters the responses (dates, ``channel``, ``touchpoint``, the persona's
    customers) and calls :func:`cxkit.voc.nps` (score with its adjusted-Wald interval),
    :func:`cxkit.voc.nps_trend` (drawn with :func:`cxkit.voc.plot_nps_trend`) and
    :func:`cxkit.voc.comments` (latest NPS comments, escaped).

    Parameters
    ----------
    data
        The loaded data (needs ``responses`` with ``survey`` and ``score``).
    personas
        Optional persona labels (PersonasResult, assign() frame or Series).
    freq
        Trend period: day, week, month, quarter or year.
    n_comments
        How many of the latest comments to list.
    live
        Recompute whenever a control changes.

    Attributes
    ----------
    start, end, channel, touchpoint, persona
        The controls (``DatePicker`` ×2 and three ``Dropdown`` with ``"(all)"``).
    score
        ``HTML`` with the NPS, its interval and n; ``fig`` the trend ``FigureWidget``;
        ``table`` the comments ``HTML`` table; ``result``, ``trend`` and ``comments`` the
        frames last shown.
    """

    def __init__(
        self,
        data: CXData,
        *,
        personas: PersonaLabels | None = None,
        freq: str = "month",
        n_comments: int = 10,
        live: bool = True,
    ) -> None:
        self._init_common()
        self.data = data
        self.live = live
        self.freq = freq
        self.n_comments = int(n_comments)
        self._asg = _assignments(personas)
        resp = data.table("responses") if "responses" in data else None
        nps_rows = resp.filter(resp.survey.lower() == "nps") if resp is not None else None
        lo = hi = None
        if nps_rows is not None:
            r = nps_rows.aggregate(lo=nps_rows.ts.min(), hi=nps_rows.ts.max()).to_pandas()
            lo, hi = r["lo"].iloc[0], r["hi"].iloc[0]
        chans = _distinct(nps_rows, "channel") if nps_rows is not None else []
        tps = _distinct(nps_rows, "touchpoint") if nps_rows is not None else []
        pers = sorted(self._asg["persona_name"].unique()) if self._asg is not None else []
        self.start = w.DatePicker(value=_as_date(lo), description="From")
        self.end = w.DatePicker(value=_as_date(hi), description="To")
        self.channel = w.Dropdown(options=[ALL, *chans], value=ALL, description="Channel")
        self.channel.disabled = not chans
        self.touchpoint = w.Dropdown(options=[ALL, *tps], value=ALL, description="Touchpoint")
        self.touchpoint.disabled = not tps
        self.persona = w.Dropdown(options=[ALL, *pers], value=ALL, description="Persona")
        self.persona.disabled = not pers
        self.score = w.HTML()
        self.fig = go.FigureWidget(plots.figure("NPS trend"))
        self.table = w.HTML()
        self.result: pd.DataFrame | None = None
        self.trend: pd.DataFrame | None = None
        self.comments: pd.DataFrame | None = None
        controls = [self.start, self.end, self.channel, self.touchpoint, self.persona]
        self._watch(controls)
        self.widget = w.VBox(
            [
                w.HBox([self.start, self.end]),
                w.HBox([self.channel, self.touchpoint, self.persona]),
                self.message,
                self.score,
                self.fig,
                w.HTML("<b>Latest comments</b>"),
                self.table,
            ]
        )
        self.update()

    def filtered(self) -> CXData:
        """Return the data with responses narrowed to the current filters.

        Returns
        -------
        CXData
            Activity between the chosen dates (:meth:`CXData.between`), and responses
            of the chosen channel, touchpoint and persona only.

        Raises
        ------
        NotAvailableError
            When the data has no ``responses`` with ``survey`` and ``score``.
        """
        d = self.data.between(self.start.value, self.end.value)
        t = d.require("responses", "survey", "score", analysis="NPS")
        for ctl, col in ((self.channel, "channel"), (self.touchpoint, "touchpoint")):
            if ctl.value != ALL and col in t.columns:
                t = t.filter(t[col] == ctl.value)
        if self.persona.value != ALL and self._asg is not None:
            ids = self._asg.loc[self._asg["persona_name"] == self.persona.value, ["customer_id"]]
            t = t.semi_join(ibis.memtable(ids.reset_index(drop=True)), "customer_id")
        return d.replace(responses=t)

    def _selection_text(self) -> str:
        parts = [f"{self.start.value or '…'} to {self.end.value or '…'}"]
        for ctl, label in (
            (self.channel, "channel"),
            (self.touchpoint, "touchpoint"),
            (self.persona, "persona"),
        ):
            if ctl.value != ALL:
                parts.append(f"{label} {ctl.value}")
        return ", ".join(parts)

    def _clear(self) -> None:
        self.result = self.trend = self.comments = None
        self.score.value = self.table.value = ""
        _redraw(self.fig, plots.figure("NPS trend"))

    def _update(self) -> None:
        start, end = self.start.value, self.end.value
        if start is not None and end is not None and start > end:
            self._clear()
            self._say(f"The start date {start} is after the end date {end}: nothing to show.")
            return
        key = (
            start,
            end,
            self.channel.value,
            self.touchpoint.value,
            self.persona.value,
        )
        res, self.trend, comments = self._memo_get(key, self._compute)
        n = int(res["n"].iloc[0]) if len(res) else 0
        if n == 0:
            self._clear()
            self._say(f"No NPS responses for {self._selection_text()}.")
            return
        self.result = res
        r = res.iloc[0]
        small = (
            f" — fewer than {stats.MIN_N} responses: read with care" if bool(r["small_n"]) else ""
        )
        self.score.value = (
            '<p class="cx-widget-score" style="font-size:15px">'
            f"<b>NPS {r['nps']:+.1f}</b> (95% interval {r['nps_low']:+.1f} to "
            f"{r['nps_high']:+.1f}; n = {n:,}; promoters {r['promoter_share']:.0%}, "
            f"detractors {r['detractor_share']:.0%}){html.escape(small)}<br>"
            f"<span style='color:#52606d'>{html.escape(self._selection_text())}</span></p>"
        )
        if len(self.trend):
            _redraw(self.fig, voc.plot_nps_trend(self.trend))
        else:
            _redraw(self.fig, plots.figure("NPS trend: no periods"))
        self._show_comments(comments)

    def _compute(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
        d = self.filtered()
        res = voc.nps(d)
        if not len(res) or int(res["n"].iloc[0]) == 0:
            return res, pd.DataFrame(), None
        trend = voc.nps_trend(d, freq=self.freq)
        comments = voc.comments(d) if d.has("responses", "comment") else None
        return res, trend, comments

    def _show_comments(self, c: pd.DataFrame | None) -> None:
        if c is None:
            self.comments = None
            self.table.value = _message_html("These responses carry no comments.")
            return
        c = c[c["survey"].astype(str).str.lower() == "nps"]
        c = c.sort_values(["ts", "response_id"], ascending=False).head(self.n_comments)
        keep = [
            x
            for x in ("ts", "customer_id", "score", "nps_group", "channel", "touchpoint", "comment")
            if x in c.columns
        ]
        self.comments = c[keep].reset_index(drop=True)
        if not len(c):
            self.table.value = _message_html("No comments for this selection.")
            return
        self.table.value = table_html(self.comments)
