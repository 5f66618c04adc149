"""Voice of the customer: what customers say and how they score us.

It answers: what are NPS, CSAT and CES, with honest intervals, and did they change
(:mod:`~cxkit.voc.scores`); which touchpoints drive NPS (:mod:`~cxkit.voc.drivers`);
what customers write about (:mod:`~cxkit.voc.text`); whether the experience holds up
on every channel and how often customers switch channel for one need
(:mod:`~cxkit.voc.omnichannel`); how many customers advocate for us
(:mod:`~cxkit.voc.advocacy`). :func:`analyze` runs it all and returns a
:class:`VocResult` with the report's tables and :meth:`VocResult.findings`.

Every function reads one :class:`~cxkit.data.CXData` (or a table an earlier step
returned) and takes ``as_of`` as :func:`cxkit.data.resolve_as_of` defines it. Persona
breakdowns take labels as an argument: :func:`persona_labels` finds the ones that come
with the data, :func:`cxkit.personas.resolve_persona_labels` also those of the personas
model. Comments are untrusted text: show them through :mod:`cxkit.display` or the plots
here, which escape them.

Public names
------------
Analysis
    :func:`analyze`, :class:`VocResult`.
Scores
    :func:`nps`, :func:`nps_compare`, :func:`nps_trend`, :func:`csat`, :func:`ces`,
    :func:`score_summary`, :data:`PROMOTER_MIN`, :data:`DETRACTOR_MAX`.
Key drivers
    :func:`key_drivers`, :func:`driver_table`, :func:`driver_importance`,
    :func:`relative_weights`, :func:`relative_weights_logistic`; :func:`driver_claim`
    (a driver result worded by its evidence, :data:`R2_WORDS`).
Text
    :func:`comments`, :func:`themes`, :class:`Themes`, :func:`theme_share`,
    :func:`representative_comments`, :func:`distinctive_terms`,
    :func:`comment_sentiment`, :func:`sentiment_scores`, :func:`sentiment_by`,
    :data:`CS_LEXICON`.
Omnichannel
    :func:`channel_consistency`, :func:`channel_pain_points`, :func:`channel_switching`.
Advocacy
    :func:`advocacy`, :func:`promoters_not_referred`.
Persona labels
    :func:`persona_labels`, :func:`load_personas`.
Survey-to-value linkage
    :func:`value_linkage`, :func:`survey_value`, :class:`SurveyValueResult`,
    :func:`linked_customers` (and :func:`linked_table`, the same in the engine),
    :func:`compare_groups` (from :func:`group_moments`), :func:`adjusted_difference`,
    :func:`value_measures`, :class:`ValueMeasure`, :data:`NPS_GROUPS`,
    :func:`show_value_tables` (:mod:`~cxkit.voc.value`: CLV, churn risk and realised
    revenue by NPS group and persona, from the CLV and churn reports' results).
Plots
    :func:`plot_scores`, :func:`plot_nps_trend`, :func:`plot_drivers_quadrant`,
    :func:`plot_theme_share`, :func:`plot_distinctive_terms`, :func:`plot_value_by_nps`.
"""

from __future__ import annotations

from cxkit.voc.advocacy import advocacy, promoters_not_referred
from cxkit.voc.analysis import VocResult, analyze
from cxkit.voc.drivers import (
    R2_WORDS,
    DriverClaim,
    driver_claim,
    driver_importance,
    driver_table,
    key_drivers,
    relative_weights,
    relative_weights_logistic,
)
from cxkit.voc.labels import load_personas, persona_labels
from cxkit.voc.omnichannel import channel_consistency, channel_pain_points, channel_switching
from cxkit.voc.plots import (
    plot_distinctive_terms,
    plot_drivers_quadrant,
    plot_nps_trend,
    plot_scores,
    plot_theme_share,
    plot_value_by_nps,
)
from cxkit.voc.scores import (
    DETRACTOR_MAX,
    PROMOTER_MIN,
    ces,
    csat,
    nps,
    nps_compare,
    nps_trend,
    score_summary,
)
from cxkit.voc.text import (
    CS_LEXICON,
    Themes,
    comment_sentiment,
    comments,
    distinctive_terms,
    representative_comments,
    sentiment_by,
    sentiment_scores,
    theme_share,
    themes,
)
from cxkit.voc.value import (
    NPS_GROUPS,
    SurveyValueResult,
    ValueMeasure,
    adjusted_difference,
    compare_groups,
    group_moments,
    linked_customers,
    linked_table,
    show_value_tables,
    survey_value,
    value_linkage,
    value_measures,
)

__all__ = [
    "CS_LEXICON",
    "DETRACTOR_MAX",
    "NPS_GROUPS",
    "PROMOTER_MIN",
    "R2_WORDS",
    "DriverClaim",
    "SurveyValueResult",
    "Themes",
    "ValueMeasure",
    "VocResult",
    "adjusted_difference",
    "advocacy",
    "analyze",
    "ces",
    "channel_consistency",
    "channel_pain_points",
    "channel_switching",
    "comment_sentiment",
    "comments",
    "compare_groups",
    "csat",
    "distinctive_terms",
    "driver_claim",
    "driver_importance",
    "driver_table",
    "group_moments",
    "key_drivers",
    "linked_customers",
    "linked_table",
    "load_personas",
    "nps",
    "nps_compare",
    "nps_trend",
    "persona_labels",
    "plot_distinctive_terms",
    "plot_drivers_quadrant",
    "plot_nps_trend",
    "plot_scores",
    "plot_theme_share",
    "plot_value_by_nps",
    "promoters_not_referred",
    "relative_weights",
    "relative_weights_logistic",
    "representative_comments",
    "score_summary",
    "sentiment_by",
    "sentiment_scores",
    "show_value_tables",
    "survey_value",
    "theme_share",
    "themes",
    "value_linkage",
    "value_measures",
]
