"""What customers write: comments, feedback themes, distinctive terms and sentiment.

:func:`comments` reads the non-empty comments with their context; :func:`themes` finds
feedback themes with TF-IDF and NMF (scikit-learn, fully offline), and
:func:`theme_share` / :func:`representative_comments` summarise them;
:func:`distinctive_terms` finds the words that set promoters and detractors apart;
:func:`comment_sentiment` scores comments with VADER and a customer-service lexicon.

Comments are untrusted text. The frames returned here hold them verbatim; show them only
through :func:`cxkit.display.show_table` / :func:`cxkit.display.style_table`, the
:mod:`cxkit.voc` plots (which escape them) or a plain ``display(df)``, never through a
``Styler`` without ``escape="html"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.result import AsOf
from cxkit.voc.scores import DETRACTOR_MAX, PROMOTER_MIN, period_unit

__all__ = [
    "CS_LEXICON",
    "Themes",
    "comment_sentiment",
    "comments",
    "distinctive_terms",
    "representative_comments",
    "sentiment_by",
    "sentiment_scores",
    "theme_share",
    "themes",
]


def comments(data: CXData, *, as_of: AsOf = None) -> pd.DataFrame:
    """Return the non-empty comments with their response context, as a pandas frame.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``comment``.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``response_id``, ``customer_id``, ``ts``, ``survey``, ``score``, ``channel``
        and ``touchpoint`` (when present), ``comment`` (verbatim — untrusted) and
        ``nps_group`` (promoter / passive / detractor for NPS answers, else missing).

    Raises
    ------
    NotAvailableError
        When the responses have no ``comment`` column.
    """
    d = data.upto(resolve_as_of(data, as_of))
    t = d.require("responses", "comment", analysis="Comment analysis")
    t = t.filter(t.comment.notnull() & (t.comment.strip().length() > 0))
    cols = [
        c
        for c in (
            "response_id",
            "customer_id",
            "ts",
            "survey",
            "score",
            "channel",
            "touchpoint",
            "comment",
        )
        if c in t.columns
    ]
    df = t.select(cols).order_by("response_id").to_pandas()
    df["comment"] = df["comment"].astype(str)
    if "survey" in df.columns and "score" in df.columns:
        s = pd.to_numeric(df["score"], errors="coerce")
        is_nps = df["survey"].astype(str).str.lower() == "nps"
        grp = np.select(
            [s >= PROMOTER_MIN, s <= DETRACTOR_MAX, s.notna()],
            ["promoter", "detractor", "passive"],
            default="",
        )
        df["nps_group"] = pd.Series(grp, index=df.index).where(is_nps & s.notna())
    else:
        df["nps_group"] = pd.Series([None] * len(df), dtype=object)
    return df.reset_index(drop=True)


_SENTENCE_RE = r"(?<=[.!?;])\s+"

_FILLER = {"honestly", "overall", "fair", "plus", "really", "just", "ve", "don", "did"}
_STOP_WORDS = sorted(ENGLISH_STOP_WORDS | _FILLER)


@dataclass
class Themes:
    """Feedback themes found by :func:`themes`.

    Attributes
    ----------
    topics
        One row per theme: ``theme``, ``label`` (top three terms), ``top_terms``,
        ``n_comments`` (comments whose dominant theme it is), ``share`` with a Wilson
        interval (``share_low``, ``share_high``).
    comments
        The comments frame with ``theme``, ``theme_label``, ``theme_weight`` and
        ``theme_purity`` (share of the comment's theme weight) added (``theme = -1``
        where no theme term occurs).
    components
        The NMF term loadings (themes × terms).
    terms
        The vocabulary in column order of ``components``.
    """

    topics: pd.DataFrame
    comments: pd.DataFrame
    components: np.ndarray = field(repr=False)
    terms: np.ndarray = field(repr=False)


def themes(
    data: CXData,
    *,
    n_themes: int = 12,
    n_terms: int = 8,
    max_features: int = 5000,
    min_df: int = 2,
    max_df: float = 0.5,
    fit_sample: int = 50_000,
    random_state: int = 0,
    as_of: AsOf = None,
) -> Themes:
    """Find feedback themes with TF-IDF + NMF (scikit-learn), fully offline.

    The model works on sentences: comments are split at sentence ends, the vectoriser
    (unigrams, English and filler stop words, terms in at least ``min_df`` sentences)
    and NMF are fitted on the sentences of at most ``fit_sample`` comments (a seeded
    sample, duplicates kept so that frequent wording weighs more), and a comment's theme
    weights are the sums over its sentences. Every distinct sentence is projected once.
    A comment's theme is its largest weight.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``comment``.
    n_themes
        Number of NMF components.
    n_terms
        Top terms kept per theme (the label uses the first three).
    max_features, min_df, max_df
        The vocabulary limits of the TF-IDF vectoriser (``min_df`` in sentences).
    fit_sample
        The most comments the model is fitted on.
    random_state
        The seed of the sample and of NMF.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    Themes
        The themes and the comments with their theme.

    Raises
    ------
    NotAvailableError
        When there is no comment column, fewer than ``max(5 * n_themes, 20)`` comments,
        or no word survives the term filter.
    """
    df = comments(data, as_of=resolve_as_of(data, as_of)).copy()
    need = max(5 * n_themes, 20)
    if len(df) < need:
        raise NotAvailableError(f"at least {need} comments", analysis="Feedback themes")
    text = df["comment"].str.lower().str.strip()
    codes, uniq = pd.factorize(text)
    # Sentence-level model: a comment that mixes two themes does not blur a component.
    sents = pd.Series(np.asarray(uniq, dtype=object)).str.split(_SENTENCE_RE, regex=True)
    sents = sents.explode()
    sents = sents[sents.notna() & (sents.str.strip().str.len() > 0)]
    rng = np.random.default_rng(random_state)
    fit_idx = (
        rng.choice(len(df), size=fit_sample, replace=False)
        if len(df) > fit_sample
        else np.arange(len(df))
    )
    # each sampled comment contributes its sentences (duplicates kept on purpose)
    mult = np.bincount(codes[fit_idx], minlength=len(uniq))[sents.index.to_numpy()]
    fit_text = np.repeat(sents.to_numpy(dtype=object), mult)
    vec = TfidfVectorizer(
        stop_words=_STOP_WORDS,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=True,
    )
    try:
        x_fit = vec.fit_transform(fit_text)
    except ValueError as err:  # empty vocabulary
        raise NotAvailableError(
            "comments with repeated words (none survive the term filter)",
            analysis="Feedback themes",
        ) from err
    k = min(n_themes, x_fit.shape[1], x_fit.shape[0])
    model = NMF(n_components=k, init="nndsvda", max_iter=400, random_state=random_state)
    model.fit(x_fit)
    s_codes, s_uniq = pd.factorize(sents)
    w_s = model.transform(vec.transform(np.asarray(s_uniq, dtype=object)))[s_codes]
    w_u = np.zeros((len(uniq), k))
    np.add.at(w_u, sents.index.to_numpy(), w_s)
    w = w_u[codes]
    best = w.argmax(axis=1)
    weight = w.max(axis=1)
    best = np.where(weight > 0, best, -1)
    terms = vec.get_feature_names_out()
    h = model.components_
    top_terms = [list(terms[np.argsort(-h[j])[:n_terms]]) for j in range(k)]
    labels = {j: " / ".join(top_terms[j][:3]) for j in range(k)}
    labels[-1] = "(no theme)"
    df["theme"] = best
    df["theme_label"] = [labels[j] for j in best]
    df["theme_weight"] = weight
    with np.errstate(invalid="ignore", divide="ignore"):
        df["theme_purity"] = np.where(weight > 0, weight / w.sum(axis=1), 0.0)
    counts = np.bincount(best[best >= 0], minlength=k)
    lo, hi = stats.wilson_ci(counts, np.full(k, len(df)))
    topics = pd.DataFrame(
        {
            "theme": np.arange(k),
            "label": [labels[j] for j in range(k)],
            "top_terms": [", ".join(tt) for tt in top_terms],
            "n_comments": counts.astype("int64"),
            "share": counts / len(df),
            "share_low": lo,
            "share_high": hi,
        }
    )
    return Themes(topics=topics, comments=df, components=h, terms=terms)


def theme_share(
    th: Themes, *, by: str = "nps_group", freq: str = "month", level: float = 0.95
) -> pd.DataFrame:
    """Compute the share of comments per theme within each group of ``by``, with Wilson intervals.

    Parameters
    ----------
    th
        The themes from :func:`themes`.
    by
        ``"nps_group"`` (NPS comments only: promoter / passive / detractor),
        ``"period"`` (calendar ``freq``) or any other comment column.
    freq
        The period length for ``by="period"``.
    level
        The confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``theme``, ``label``, ``n_group``, ``n``, ``share``, ``share_low``,
        ``share_high``, ``small_n``.

    Raises
    ------
    UsageError
        For any other ``by``.
    """
    df = th.comments
    if by == "nps_group":
        df = df[df["nps_group"].notna()]
        g = df["nps_group"].astype(str)
    elif by == "period":
        g = pd.to_datetime(df["ts"]).dt.to_period(period_unit(freq)).dt.start_time
    elif by in df.columns:
        g = df[by].astype(str)
    else:
        raise UsageError(f"by must be 'nps_group', 'period' or a comment column, got {by!r}")
    tab = pd.crosstab(g, df["theme"])
    rows = []
    for group, counts in tab.iterrows():
        n_group = int(counts.sum())
        for theme_id, n in counts.items():
            if theme_id < 0:
                continue
            rows.append((group, int(theme_id), int(n), n_group))
    out = pd.DataFrame(rows, columns=["group", "theme", "n", "n_group"])
    labels = th.topics.set_index("theme")["label"]
    out["label"] = out["theme"].map(labels)
    out["share"] = out["n"] / out["n_group"]
    lo, hi = stats.wilson_ci(out["n"].to_numpy(), out["n_group"].to_numpy(), level=level)
    out["share_low"], out["share_high"] = lo, hi
    out["small_n"] = stats.is_small(out["n_group"].to_numpy())
    cols = ["group", "theme", "label", "n_group", "n", "share", "share_low", "share_high"]
    return out[[*cols, "small_n"]]


def representative_comments(th: Themes, *, n: int = 3) -> pd.DataFrame:
    """Return the ``n`` comments most typical of each theme, distinct texts.

    Ranked by theme weight × purity (the theme's share of the comment's total theme
    weight), so that comments mixing two themes rank below single-theme ones.

    Parameters
    ----------
    th
        The themes from :func:`themes`.
    n
        Comments per theme.

    Returns
    -------
    pandas.DataFrame
        ``theme``, ``label``, ``comment`` (verbatim: show it with
        :func:`cxkit.display.show_table`, which escapes it), ``theme_weight`` and the
        ``survey`` and ``score`` when present.
    """
    df = th.comments[th.comments["theme"] >= 0].copy()
    # near-duplicates (same content words, different filler) count as one text
    stop = set(_STOP_WORDS)
    df["_text"] = [
        " ".join(sorted({w for w in re.findall(r"\b\w\w+\b", t.lower()) if w not in stop}))
        for t in df["comment"]
    ]
    df["_rank"] = df["theme_weight"] * df["theme_purity"]
    df["_pure"] = df["theme_purity"] >= 0.75
    df = df.sort_values(["theme", "_pure", "_rank"], ascending=[True, False, False], kind="stable")
    df = df.drop_duplicates(["theme", "_text"]).groupby("theme", sort=True).head(n)
    cols = ["theme", "theme_label", "comment", "theme_weight"]
    cols += [c for c in ("survey", "score") if c in df.columns]
    return df[cols].rename(columns={"theme_label": "label"}).reset_index(drop=True)


def distinctive_terms(
    comments: pd.DataFrame,
    *,
    group_a: str = "promoter",
    group_b: str = "detractor",
    top: int = 15,
    prior_strength: float = 1000.0,
    min_count: int = 3,
) -> pd.DataFrame:
    """Find the terms that distinguish two NPS groups: weighted log-odds with an informative prior.

    Monroe, Colaresi & Quinn (2008), "Fightin' Words": the log-odds ratio of each term
    between ``group_a`` and ``group_b`` comments, with a Dirichlet prior proportional to
    the term's frequency in all comments (``prior_strength`` pseudo-words in total),
    divided by its standard error to give a z-score.

    Parameters
    ----------
    comments
        The frame from :func:`comments` (or :attr:`Themes.comments`): ``comment`` and
        ``nps_group``.
    group_a, group_b
        The two ``nps_group`` values compared.
    top
        Terms returned for each side.
    prior_strength
        The total pseudo-words of the prior.
    min_count
        The fewest uses (in both groups together) a term needs.

    Returns
    -------
    pandas.DataFrame
        The ``top`` terms for each side: ``term``, ``count_a``, ``count_b``,
        ``log_odds``, ``z`` and ``favours`` (``group_a`` when z > 0).

    Raises
    ------
    NotAvailableError
        When the comments have no words, one of the groups wrote nothing, or no word
        used at least ``min_count`` times favours one of the groups.
    """
    text = comments["comment"].str.lower()
    vec = CountVectorizer(stop_words=_STOP_WORDS, min_df=1)
    try:
        x = vec.fit_transform(text.to_numpy())
    except ValueError as err:
        raise NotAvailableError("comments with words", analysis="Distinctive terms") from err
    terms = vec.get_feature_names_out()
    grp = comments["nps_group"].astype(object).to_numpy()
    ya = np.asarray(x[grp == group_a].sum(axis=0)).ravel().astype(float)
    yb = np.asarray(x[grp == group_b].sum(axis=0)).ravel().astype(float)
    if ya.sum() == 0 or yb.sum() == 0:
        raise NotAvailableError(
            f"comments from both {group_a}s and {group_b}s", analysis="Distinctive terms"
        )
    background = np.asarray(x.sum(axis=0)).ravel().astype(float)
    alpha = prior_strength * background / background.sum()
    a0 = alpha.sum()
    na, nb = ya.sum(), yb.sum()
    delta = np.log((ya + alpha) / (na + a0 - ya - alpha)) - np.log(
        (yb + alpha) / (nb + a0 - yb - alpha)
    )
    var = 1 / (ya + alpha) + 1 / (yb + alpha)
    z = delta / np.sqrt(var)
    out = pd.DataFrame({"term": terms, "count_a": ya, "count_b": yb, "log_odds": delta, "z": z})
    out = out[(out["count_a"] + out["count_b"]) >= min_count]
    pos = out[out["z"] > 0].nlargest(top, "z")
    neg = out[out["z"] < 0].nsmallest(top, "z")
    if pos.empty or neg.empty:  # too few comments: no word sets one side apart
        raise NotAvailableError(
            f"words used at least {min_count} times that set {group_a}s and {group_b}s apart "
            f"(the {len(comments):,} comments have none on "
            f"{'either side' if pos.empty and neg.empty else 'one side'})",
            analysis="Distinctive terms",
        )
    res = pd.concat([pos, neg.iloc[::-1]], ignore_index=True)
    res["favours"] = np.where(res["z"] > 0, group_a, group_b)
    res["count_a"] = res["count_a"].astype("int64")
    res["count_b"] = res["count_b"].astype("int64")
    return res.reset_index(drop=True)


#: Customer-service terms added to VADER's lexicon (valence on VADER's −4..4 scale).
CS_LEXICON: dict[str, float] = {
    "refund": -1.2,
    "refunded": -0.5,
    "late": -1.5,
    "delay": -1.5,
    "delays": -1.5,
    "delayed": -1.5,
    "rude": -2.5,
    "crash": -2.0,
    "crashes": -2.0,
    "crashed": -2.0,
    "crashing": -2.0,
    "freezes": -1.8,
    "buggy": -1.8,
    "slow": -1.3,
    "waiting": -1.0,
    "waited": -1.0,
    "unhelpful": -2.0,
    "overcharged": -2.2,
    "expensive": -1.2,
    "overpriced": -1.8,
    "pricey": -1.0,
    "hassle": -1.5,
    "missing": -1.2,
    "cancelled": -1.2,
    "damaged": -2.0,
    "hold": -0.5,
    "fast": 1.5,
    "quick": 1.3,
    "quickly": 1.2,
    "smooth": 1.5,
    "seamless": 2.0,
    "intuitive": 1.8,
    "on-time": 1.5,
    "resolved": 1.5,
    "polite": 1.8,
}


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(CS_LEXICON)
    return analyzer


def sentiment_scores(texts: Iterable[str]) -> np.ndarray:
    """Score texts by VADER compound sentiment (−1..1) with the customer-service lexicon.

    Each distinct text is scored once.

    Parameters
    ----------
    texts
        The texts (missing values score as empty text).

    Returns
    -------
    numpy.ndarray
        One compound score per text.

    Examples
    --------
    >>> s = sentiment_scores(["Delivery was late and support was rude", "Fast and easy"])
    >>> bool(s[0] < 0 < s[1])
    True
    """
    series = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    codes, uniq = pd.factorize(series)
    analyzer = _analyzer()
    scores = np.array([analyzer.polarity_scores(t)["compound"] for t in uniq], dtype=float)
    return scores[codes] if len(codes) else np.array([], dtype=float)


def comment_sentiment(comments: pd.DataFrame) -> pd.DataFrame:
    """Add VADER sentiment to a comments frame.

    Parameters
    ----------
    comments
        The frame from :func:`comments` (or :attr:`Themes.comments`).

    Returns
    -------
    pandas.DataFrame
        A copy with ``sentiment`` (VADER compound, −1..1) and ``sentiment_label``
        (positive ≥ 0.05, negative ≤ −0.05, else neutral).
    """
    df = comments.copy()
    df["sentiment"] = sentiment_scores(df["comment"])
    df["sentiment_label"] = np.select(
        [df["sentiment"] >= 0.05, df["sentiment"] <= -0.05],
        ["positive", "negative"],
        default="neutral",
    )
    return df


def sentiment_by(scored: pd.DataFrame, *, by: str = "nps_group") -> pd.DataFrame:
    """Compute the mean sentiment per group with a t interval.

    Parameters
    ----------
    scored
        The frame from :func:`comment_sentiment`.
    by
        The grouping column.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``n``, ``sentiment_mean``, ``sentiment_low``, ``sentiment_high``,
        ``negative_share`` and ``small_n``.
    """
    rows = []
    for g, part in scored.dropna(subset=[by]).groupby(by, sort=True):
        m, lo, hi, n = stats.mean_ci(part["sentiment"])
        neg = float((part["sentiment"] <= -0.05).mean())
        rows.append((str(g), n, m, lo, hi, neg))
    out = pd.DataFrame(
        rows,
        columns=[by, "n", "sentiment_mean", "sentiment_low", "sentiment_high", "negative_share"],
    )
    out["small_n"] = stats.is_small(out["n"].to_numpy())
    return out
