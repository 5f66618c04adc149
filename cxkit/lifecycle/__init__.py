"""Lifecycle: where customers come from, where they are lost, and how they come back.

The lifecycle report answers: how many customers move from first contact (awareness) to
consideration, purchase, a repeat purchase (retention) and advocacy; how long each step
takes; which groups convert better than the rest; how each cohort keeps coming back; and
which paths customers take. :func:`analyze` does it all in one call and returns a
:class:`LifecycleResult` with :meth:`~LifecycleResult.findings`. Row-level work runs in
the engine (ibis); only per-customer-sized or smaller results come to pandas.

The parts, each usable on its own (every function takes a :class:`~cxkit.data.CXData`
and an ``as_of`` resolved by :func:`cxkit.data.resolve_as_of`):

* :mod:`~cxkit.lifecycle.stages` — the stage map (:data:`STAGES`,
  :data:`DEFAULT_STAGES`, :func:`load_stage_map`, :func:`available_stages`), when each
  customer reached each stage (:func:`stage_times_expr`, :func:`stages`) and the
  current stage (:func:`current_stage_counts`), how many reached each stage on the
  ladder or by its own rule (:func:`stage_counts`) and a rule in words
  (:func:`describe_rule`); :func:`engine_cache` keeps a table
  computed once in the engine for the steps of one analysis;
* :mod:`~cxkit.lifecycle.funnel` — ordered funnels with the time to convert
  (:func:`funnel`, :func:`funnel_customers_expr`, :func:`funnel_period_compare`,
  :func:`funnel_reached` to share one matching between breakdowns) and
  the stage ladder (:func:`stage_funnel`, :func:`stage_conversion`);
* :mod:`~cxkit.lifecycle.cohorts` — cohort retention (:func:`cohort_retention`; each
  cell with its n and Wilson interval: :func:`cohort_cells`),
  lifecycle states (:func:`lifecycle_states`) and group-against-rest tests of a
  breakdown (:func:`group_tests`);
* :mod:`~cxkit.lifecycle.journeys` — journey paths and Sankey links
  (:func:`journey_paths`, :func:`journey_sankey`, both from one query:
  :func:`journey_tables`);
* :mod:`~cxkit.lifecycle.analysis` — :func:`analyze`, :class:`LifecycleResult` and
  :func:`findings` (``analyze(...).findings()``);
* :mod:`~cxkit.lifecycle.plots` — the report's figures from a result.

Examples
--------
>>> import pandas as pd, cxkit
>>> from cxkit import lifecycle
>>> ev = pd.DataFrame({"customer_id": ["a", "a", "b"],
...                    "event": ["site_visit", "product_view", "site_visit"],
...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
>>> lifecycle.funnel(cxkit.load({"events": ev}), ["site_visit", "product_view"]).n_customers.tolist()
[2, 1]
"""

from __future__ import annotations

from cxkit.lifecycle.analysis import DEFAULT_STEPS, LifecycleResult, analyze, findings
from cxkit.lifecycle.cohorts import (
    ALL,
    AVERAGE,
    GroupBy,
    cohort_cells,
    cohort_grid,
    cohort_retention,
    group_tests,
    lifecycle_states,
)
from cxkit.lifecycle.funnel import (
    Step,
    Window,
    default_pairs,
    funnel,
    funnel_customers_expr,
    funnel_period_compare,
    funnel_reached,
    stage_conversion,
    stage_funnel,
)
from cxkit.lifecycle.journeys import journey_paths, journey_sankey, journey_tables
from cxkit.lifecycle.plots import (
    breakdown_chart,
    cohort_chart,
    entry_channel_chart,
    funnel_chart,
    journey_chart,
    persona_chart,
    stage_chart,
    stage_journey_chart,
    states_chart,
)
from cxkit.lifecycle.stages import (
    DEFAULT_STAGES,
    STAGES,
    Rule,
    StageMapSpec,
    available_stages,
    current_stage_counts,
    describe_rule,
    engine_cache,
    load_stage_map,
    stage_counts,
    stage_times_expr,
    stages,
)

__all__ = [
    "ALL",
    "AVERAGE",
    "DEFAULT_STAGES",
    "DEFAULT_STEPS",
    "STAGES",
    "GroupBy",
    "LifecycleResult",
    "Rule",
    "StageMapSpec",
    "Step",
    "Window",
    "analyze",
    "available_stages",
    "breakdown_chart",
    "cohort_cells",
    "cohort_chart",
    "cohort_grid",
    "cohort_retention",
    "current_stage_counts",
    "default_pairs",
    "describe_rule",
    "engine_cache",
    "entry_channel_chart",
    "findings",
    "funnel",
    "funnel_chart",
    "funnel_customers_expr",
    "funnel_period_compare",
    "funnel_reached",
    "group_tests",
    "journey_chart",
    "journey_paths",
    "journey_sankey",
    "journey_tables",
    "lifecycle_states",
    "load_stage_map",
    "persona_chart",
    "stage_chart",
    "stage_conversion",
    "stage_counts",
    "stage_funnel",
    "stage_journey_chart",
    "stage_times_expr",
    "stages",
    "states_chart",
]
