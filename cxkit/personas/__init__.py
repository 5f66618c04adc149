"""Personas: which kinds of customers there are, and where each kind is hurt.

Customers are grouped by how they behave (channels, purchases, engagement, support,
satisfaction) with k-means on standardised per-customer features, with an honest choice
of k; each persona gets a name, a card, a simple rule and a journey map across the
stages awareness → advocacy with its pain point. :func:`analyze` does it all in one call
and returns a :class:`PersonasResult` with :meth:`~PersonasResult.findings`.

The steps, each usable on its own:

1. :func:`customer_features` (:mod:`~cxkit.personas.features`) builds one row per
   customer in the engine (ibis): recency, frequency, spend, tenure, channel-mix shares,
   engagement, support contacts and satisfaction, plus one-hot customer attributes.
   With orders only (e.g. CDNOW) it falls back to purchase behaviour and says so in
   ``features.attrs["basis"]``.
2. :class:`Personas` (:mod:`~cxkit.personas.model`) is a scikit-learn estimator: log1p
   on skewed columns, standardisation, weights so that correlated measures of one
   concept count once (:data:`FEATURE_GROUPS`), k-means (mini-batch above
   :data:`MINIBATCH_ABOVE` customers). ``k="auto"`` takes a vote of the elbow of the
   inertia curve (kneedle), the gap statistic and bootstrap stability (adjusted Rand
   index between clusterings of bootstrap resamples), all on a seeded sample;
   silhouette is only reported. It learns sizes, per-persona bootstrap stability
   (Jaccard), profiles, names from the most distinguishing features and a depth-3
   surrogate decision tree (:func:`persona_rules`). :func:`assign` gives the persona per
   customer, :func:`pca_map` a 2-D map.
3. :func:`journey_map`, :func:`channel_shares`, :func:`csat_by`, :func:`pain_points` and
   :func:`comment_themes` (:mod:`~cxkit.personas.journeys`) describe each persona along
   the stages: reach, drop-off, channel share, CSAT / NPS with intervals, the worst
   channel or touchpoint (tested against the persona's other channels) and the top
   comment themes. Stages come from :mod:`cxkit.lifecycle`, themes from
   :func:`cxkit.voc.themes`.
4. :func:`analyze`, :class:`PersonasResult` (with its ``takeaways``), :func:`headline`
   and :func:`map_takeaway`; :func:`fit_personas`
   (the model part alone, for the persona labels other reports use)
   (:mod:`~cxkit.personas.analysis`); the figures and cards in
   :mod:`~cxkit.personas.plots`.
5. :func:`persona_labels` and :func:`resolve_persona_labels`
   (:mod:`~cxkit.personas.labels`): the persona per customer that other reports break
   their numbers down by.
6. Scale mode (:mod:`~cxkit.personas.scale`, ``analyze(..., mode="scale")``):
   :func:`analyze_scale` fits on a stratified sample and writes every customer's
   persona to the engine table :data:`LABELS_TABLE`; :func:`label_table` gives the
   other reports that table (``customer_id``, ``persona``) instead of
   :func:`persona_labels`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cxkit.personas import Personas
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(np.vstack([rng.normal(m, 0.3, (60, 2)) for m in (0, 3, 6)]),
...                  columns=["spend", "orders"])
>>> model = Personas(k=3, random_state=0).fit(X)
>>> sorted(np.bincount(model.labels_).tolist())
[60, 60, 60]
"""

from __future__ import annotations

from cxkit.lifecycle import STAGES
from cxkit.personas.analysis import (
    PersonasResult,
    analyze,
    fit_personas,
    headline,
    map_takeaway,
)
from cxkit.personas.features import SUPPORT_EVENTS, customer_features, derive_features
from cxkit.personas.journeys import (
    Assignments,
    channel_shares,
    comment_themes,
    csat_by,
    journey_map,
    journey_table,
    pain_points,
    pain_table,
)
from cxkit.personas.labels import persona_labels, resolve_persona_labels
from cxkit.personas.model import (
    FEATURE_GROUPS,
    MINIBATCH_ABOVE,
    Personas,
    assign,
    pca_map,
    persona_rules,
)
from cxkit.personas.plots import (
    plot_journey,
    plot_k_selection,
    plot_pca_map,
    plot_persona_channels,
    plot_profiles,
    show_cards,
)
from cxkit.personas.scale import (
    LABELS_TABLE,
    ScalePersonaResult,
    analyze_scale,
    label_table,
)

__all__ = [
    "FEATURE_GROUPS",
    "LABELS_TABLE",
    "MINIBATCH_ABOVE",
    "STAGES",
    "SUPPORT_EVENTS",
    "Assignments",
    "Personas",
    "PersonasResult",
    "ScalePersonaResult",
    "analyze",
    "analyze_scale",
    "assign",
    "channel_shares",
    "comment_themes",
    "csat_by",
    "customer_features",
    "derive_features",
    "fit_personas",
    "headline",
    "journey_map",
    "journey_table",
    "label_table",
    "map_takeaway",
    "pain_points",
    "pain_table",
    "pca_map",
    "persona_labels",
    "persona_rules",
    "plot_journey",
    "plot_k_selection",
    "plot_pca_map",
    "plot_persona_channels",
    "plot_profiles",
    "resolve_persona_labels",
    "show_cards",
]
