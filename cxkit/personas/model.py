"""The persona model: k-means on standardised features, an honest choice of k, names.

:class:`Personas` is a scikit-learn estimator: ``__init__`` stores its options, ``fit``
learns everything (attributes ending in ``_``) and returns ``self``, and every method
that needs a fit starts with :func:`sklearn.utils.validation.check_is_fitted`.
:func:`assign` gives the persona per customer, :func:`persona_rules` the surrogate tree
as readable rules and :func:`pca_map` a 2-D map of the customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.tree import DecisionTreeClassifier, export_text
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from cxkit.errors import DataError, UsageError

#: Large data switches to MiniBatchKMeans above this many customers.
MINIBATCH_ABOVE = 200_000

#: Feature groups: correlated measures of one concept share that concept's weight
#: (each column gets 1/sqrt(group size), so the group adds the variance of one feature).
#: Channel shares are distinct behaviours and keep weight 1 each; one-hot attributes
#: are descriptive and get ``categorical_weight``.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "purchase volume": ("orders", "orders_per_month", "spend", "spend_per_order"),
    "timing": ("recency_days", "tenure_days"),
    "satisfaction": ("csat_mean", "nps_latest"),
}

_CRITERIA = {
    "elbow": "the elbow of the inertia curve",
    "gap": "the gap statistic",
    "stability": "bootstrap stability",
}


# ---- choice of k ----------------------------------------------------------------------


def _kneedle(ks: np.ndarray, inertia: np.ndarray) -> int:
    """Return the elbow of a decreasing convex curve (Satopää et al. 2011, 'kneedle')."""
    x = (ks - ks.min()) / max(ks.max() - ks.min(), 1)
    span = inertia.max() - inertia.min()
    y = (inertia - inertia.min()) / span if span > 0 else np.zeros_like(inertia)
    diff = (1 - y) - x
    return int(ks[int(np.argmax(diff))])


def _jaccard_best(ref: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """Return, per reference cluster, its best Jaccard overlap with a cluster of ``other``."""
    k2 = int(other.max()) + 1 if other.size else 0
    table = np.zeros((k, max(k2, 1)))
    np.add.at(table, (ref, other), 1)
    size_r = table.sum(axis=1, keepdims=True)
    size_o = table.sum(axis=0, keepdims=True)
    union = size_r + size_o - table
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, table / union, 0.0)
    return jac.max(axis=1)


def _k_reason(
    votes: Mapping[str, int], k_best: int, stab: Mapping[int, float], min_stability: float
) -> str:
    """Return the sentence saying why ``k_best`` was chosen from the criteria's votes."""
    who = [name for name, v in votes.items() if v == k_best]
    if len(who) >= 2:
        other = next((w for w in votes if w not in who), None)
        reason = (
            f"{' and '.join(_CRITERIA[w] for w in who)} point to k = {k_best}"
            + (f" ({_CRITERIA[other]} to {votes[other]})" if other is not None else "")
            + f"; bootstrap stability at k = {k_best}: mean ARI {stab[k_best]:.2f}"
        )
    else:
        reason = (
            f"the elbow ({votes['elbow']}), gap statistic ({votes['gap']}) and stability "
            f"({votes['stability']}) disagree; k = {k_best} is the most stable of them "
            f"(mean ARI {stab[k_best]:.2f})"
        )
    if stab[k_best] < min_stability:
        reason += "; even so the personas are not very stable, read them with care"
    return reason


# ---- naming ---------------------------------------------------------------------------

_CHANNEL_WORDS = {
    "app": "app",
    "web": "web",
    "store": "in-store",
    "social": "social",
    "email": "email",
    "phone": "phone",
    "chat": "chat",
}

_TRAITS = {
    "spend": ("high spend", "low spend"),
    "spend_per_order": ("big baskets", "small baskets"),
    "orders": ("frequent orders", "few orders"),
    "orders_per_month": ("frequent orders", "rare orders"),
    "support_contacts": ("many support contacts", "few support contacts"),
    "events_per_month": ("highly engaged", "low engagement"),
    "recency_days": ("lapsed", "recently active"),
    "tenure_days": ("long-standing", "new"),
    "csat_mean": ("satisfied", "dissatisfied"),
    "nps_latest": ("promoters", "detractors"),
}


def _trait(feature: str, z: float) -> str:
    """Return a short phrase for one distinguishing feature (empty when none fits)."""
    hi = z > 0
    if feature.startswith("share_"):
        ch = feature[6:]
        word = _CHANNEL_WORDS.get(ch, ch.replace("_", " "))
        return f"{word}-heavy" if hi else f"little {word}"
    if feature in _TRAITS:
        return _TRAITS[feature][0 if hi else 1]
    if "=" in feature:
        col, level = feature.split("=", 1)
        return f"{col.replace('_', ' ')} {level}" if hi else ""
    return ""


def _persona_name(z: pd.Series) -> str:
    """Name a persona from its z-score profile: value word, channel word, behaviour noun."""

    def get(f: str) -> float:
        return float(z.get(f, 0.0)) if pd.notna(z.get(f, 0.0)) else 0.0

    value = ""
    if "spend" in z.index or "spend_per_order" in z.index:  # no value word without orders
        spend = get("spend") if "spend" in z.index else get("spend_per_order")
        value = "High-value" if spend > 0.5 else ("Low-spend" if spend < -0.5 else "Mid-value")
    shares = z[[f for f in z.index if f.startswith("share_")]]
    channel = ""
    if len(shares) and shares.max() > 0.5:
        ch = str(shares.idxmax())[6:]
        channel = _CHANNEL_WORDS.get(ch, ch.replace("_", " "))
    freq = get("orders_per_month") if "orders_per_month" in z.index else get("orders")
    support = get("support_contacts")
    engage = get("events_per_month")
    recency = get("recency_days")
    if support > 1.0 and support >= max(freq, engage):
        noun = "support seekers"
    elif freq > 0.75:
        noun = "loyalists"
    elif freq < -0.4 and "events_per_month" in z.index and engage > -0.25:
        noun = "browsers"  # engaged about as much as others, but rarely buy
    elif recency > 0.75:
        noun = "lapsed buyers"
    elif freq < -0.4:
        noun = "occasional buyers"
    else:
        noun = "regulars"
    name = " ".join(w for w in (value, channel, noun) if w)
    return name[:1].upper() + name[1:]


def _unique_names(z: pd.DataFrame) -> list[str]:
    """Name every persona of a z-score table (persona x feature), each name unique."""
    names = [_persona_name(z.loc[p]) for p in z.index]
    # make unique: add the trait that sets a persona apart from its namesakes
    out = list(names)
    for n in set(names):
        group = [p for p, x in enumerate(names) if x == n]
        if len(group) < 2:
            continue
        for p in group:
            others = z.loc[[q for q in group if q != p]].mean(axis=0)
            diff = (z.loc[p] - others).sort_values(key=np.abs, ascending=False)
            extra = next((_trait(f, d) for f, d in diff.items() if _trait(f, d)), "")
            out[p] = f"{n} ({extra})" if extra else n
    final, count = [], {}
    for n in out:
        count[n] = count.get(n, 0) + 1
        final.append(n if out.count(n) == 1 else f"{n} {count[n]}")
    return final


# ---- the estimator --------------------------------------------------------------------


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """Return ``X`` as a DataFrame (columns ``x0, x1, …`` for an array)."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise DataError(f"features must be a 2-D table, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


class Personas(BaseEstimator):
    """Customer personas by k-means on standardised per-customer features.

    Skewed non-negative columns are log1p-transformed, every column is standardised and
    weighted so that correlated measures of one concept count once
    (:data:`FEATURE_GROUPS`); k-means (mini-batch above :data:`MINIBATCH_ABOVE`
    customers) then finds the personas, numbered by size.

    Parameters
    ----------
    k
        Number of personas, or ``"auto"`` to choose it from ``k_range`` by combining the
        elbow of the inertia curve, the gap statistic and bootstrap stability.
    k_range
        Inclusive range of k tried when ``k="auto"``.
    random_state
        Seed for every random step (k-means starts, samples, bootstraps, references).
    selection_sample
        Rows used for choosing k and for the stability bootstraps (a seeded sample).
    n_bootstrap
        Bootstrap pairs per k for stability, and resamples for per-persona stability.
    n_references
        Uniform reference draws per k for the gap statistic.
    min_stability
        Mean bootstrap ARI a k needs to be called stable.
    categorical_weight
        Multiplier on one-hot attribute columns after standardising (attributes are
        descriptive, behaviour should drive the clusters).
    weights
        Per-column multipliers after standardising, overriding the defaults: columns of
        one concept in :data:`FEATURE_GROUPS` get 1/sqrt(group size) each (four measures
        of purchase volume count as one), every other column 1.
    features
        Columns to cluster on (default: every numeric column of the input).

    Attributes
    ----------
    k_ : int
        The number of personas.
    labels_ : ndarray of shape (n_customers,)
        Persona per training row, 0 = largest persona.
    sizes_ : pandas.Series
        Customers per persona (``n_customers``, indexed by ``persona``).
    names_ : list of str
        The persona names, by persona number.
    stability_ : pandas.Series
        Mean best Jaccard overlap of each persona with the clusters of bootstrap refits
        (≥ 0.75 stable, 0.6–0.75 patterns, < 0.6 dissolving; Hennig 2007).
    profiles_ : pandas.DataFrame
        Long table: persona, name, feature, mean (raw units), z (mean of standardised
        values), overall_mean.
    k_selection_ : pandas.DataFrame
        Per k: inertia, gap, gap_se, stability (mean ARI), silhouette (on a sample).
    k_votes_ : dict
        The k each criterion points to.
    k_reason_ : str
        A sentence saying why ``k_`` was chosen.
    tree_, rules_, fidelity_
        Depth-3 surrogate decision tree on raw features, its rules as text, and its
        agreement with the personas on held-out customers.
    feature_names_in_, log_columns_, fill_values_
        The columns clustered on, those log1p-transformed, and the values that fill
        missing ones (medians).
    center_, scale_, weights_ : ndarray
        The standardisation (after log1p) and the column weights.
    kmeans_ : KMeans or MiniBatchKMeans
        The fitted clustering (its clusters in its own order).
    persona_of_cluster_ : ndarray
        The persona number of each of ``kmeans_``'s clusters.
    cluster_centers_, inertia_, basis_
        Persona centres in the weighted standardised space, the clustering's inertia,
        and what the features rest on.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> X = pd.DataFrame(np.vstack([rng.normal(m, 0.4, (80, 3)) for m in (0, 4)]),
    ...                  columns=["a", "b", "c"])
    >>> m = Personas(k="auto", k_range=(2, 5), random_state=0).fit(X)
    >>> m.k_
    2
    >>> bool((m.predict(X) == m.labels_).all())
    True
    """

    def __init__(
        self,
        k: int | str = "auto",
        *,
        k_range: tuple[int, int] = (2, 10),
        random_state: int | None = 0,
        selection_sample: int = 3000,
        n_bootstrap: int = 6,
        n_references: int = 5,
        min_stability: float = 0.8,
        categorical_weight: float = 0.5,
        weights: Mapping[str, float] | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.random_state = random_state
        self.selection_sample = selection_sample
        self.n_bootstrap = n_bootstrap
        self.n_references = n_references
        self.min_stability = min_stability
        self.categorical_weight = categorical_weight
        self.weights = weights
        self.features = features

    # ---- checks and transforms --------------------------------------------------------

    def _check_params(self, n_rows: int) -> None:
        if not (self.k == "auto" or (isinstance(self.k, int | np.integer) and self.k >= 1)):
            raise UsageError(f"k must be 'auto' or a positive integer, got {self.k!r}")
        lo, hi = self.k_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 2 <= lo < hi):
            raise UsageError(f"k_range must be two integers 2 <= low < high, got {self.k_range!r}")
        k_max = hi if self.k == "auto" else int(self.k)
        if n_rows < max(2 * k_max, 10):
            raise DataError(
                f"too few customers to cluster: {n_rows} rows for up to {k_max} personas",
                fix="give more customers, or a smaller k / k_range",
            )

    def _raw_matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise DataError(
                f"the features lack column(s) {missing[:5]} the personas were fitted on",
                fix="build the features with customer_features() on data of the same shape",
            )
        sub = X[self.feature_names_in_].astype(float)
        return sub.fillna(self.fill_values_)

    def _log1p(self, z: np.ndarray) -> np.ndarray:
        """Return ``z`` with log1p applied to :attr:`log_columns_` (in place)."""
        for c in self.log_columns_:
            j = self.feature_names_in_.index(c)
            z[:, j] = np.log1p(np.maximum(z[:, j], 0.0))
        return z

    def _transform_raw(self, raw: pd.DataFrame) -> np.ndarray:
        z = self._log1p(raw.to_numpy(dtype=float, copy=True))
        z = (z - self.center_) / self.scale_
        z *= self.weights_
        return z

    def _feature_weights(self, usable: list[str], onehot: list[str]) -> np.ndarray:
        weights = np.ones(len(usable))
        for cols in FEATURE_GROUPS.values():
            present = [c for c in cols if c in usable]
            for c in present:
                weights[usable.index(c)] = 1.0 / np.sqrt(len(present))
        for c in onehot:
            weights[usable.index(c)] = self.categorical_weight
        for c, w in (self.weights or {}).items():
            if c in usable:
                weights[usable.index(c)] = float(w)
        return weights

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Return the standardised, weighted matrix the clustering works on.

        Parameters
        ----------
        X
            Per-customer features with the columns the model was fitted on.

        Returns
        -------
        numpy.ndarray
            One row per customer, one column per feature in :attr:`feature_names_in_`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        DataError
            When ``X`` lacks a column the model was fitted on.
        """
        check_is_fitted(self)
        return self._transform_raw(self._raw_matrix(_as_frame(X)))

    # ---- fitting ---------------------------------------------------------------------

    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> Personas:
        """Choose k (if ``"auto"``), cluster, order personas by size, name and explain them.

        Parameters
        ----------
        X
            Per-customer features (from :func:`cxkit.personas.customer_features`), a
            DataFrame or a 2-D array.
        y
            Ignored (scikit-learn's signature).

        Returns
        -------
        Personas
            ``self``.

        Raises
        ------
        UsageError
            When ``k`` or ``k_range`` is invalid.
        DataError
            When there are too few rows, no usable numeric columns, or ``features``
            names columns that are not in ``X``.
        """
        # One BLAS/OpenMP thread: k-means on samples is dominated by threading overhead on a
        # busy machine (measured 1.0 s vs 0.025 s per 3,000-row fit with 2 cores under load).
        with threadpool_limits(limits=1):
            return self._fit(_as_frame(X))

    def _fit(self, X: pd.DataFrame) -> Personas:
        cols = (
            list(self.features)
            if self.features is not None
            else list(X.select_dtypes("number").columns)
        )
        bad = [c for c in cols if c not in X.columns]
        if bad:
            raise DataError(
                f"feature column(s) {bad[:5]} are not in the input",
                fix=f"choose among {list(X.columns)[:20]}",
            )
        if not cols:
            raise DataError(
                "no numeric feature columns to cluster on",
                fix="pass customer_features(data) or a numeric DataFrame",
            )
        n = len(X)
        self._check_params(n)
        rng = np.random.default_rng(self.random_state)
        sub = X[cols].astype(float)
        usable = [c for c in cols if sub[c].notna().any() and sub[c].nunique() > 1]
        if not usable:
            raise DataError("every feature column is constant; there is nothing to cluster")
        self.feature_names_in_ = usable
        sub = sub[usable]
        self.fill_values_ = sub.median().fillna(0.0)
        raw = sub.fillna(self.fill_values_)
        onehot = [c for c in usable if "=" in c]
        shares = [c for c in usable if c.startswith("share_")]
        log_cols = []
        for c in usable:
            if c in onehot or c in shares:
                continue
            v = raw[c].to_numpy()
            if v.min() >= 0 and pd.Series(v).skew() > 1.0:
                log_cols.append(c)
        self.log_columns_ = log_cols
        tmp = self._log1p(raw.to_numpy(dtype=float, copy=True))
        self.center_ = tmp.mean(axis=0)
        scale = tmp.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.weights_ = self._feature_weights(usable, onehot)
        Z = self._transform_raw(raw)

        # --- choose k on a sample
        m = min(n, self.selection_sample)
        sample_idx = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        Zs = Z[sample_idx]
        if self.k == "auto":
            self._select_k(Zs, rng)
        else:
            self.k_ = int(self.k)
            self.k_selection_ = pd.DataFrame()
            self.k_votes_ = {"fixed": self.k_}
            self.k_reason_ = f"k = {self.k_} was given"
        k = self.k_

        # --- final clustering
        seed = int(rng.integers(2**31 - 1))
        if n > MINIBATCH_ABOVE:
            init_idx = np.sort(rng.choice(n, size=MINIBATCH_ABOVE // 4, replace=False))
            start = KMeans(k, n_init=4, random_state=seed).fit(Z[init_idx])
            km = MiniBatchKMeans(
                k,
                init=start.cluster_centers_,
                n_init=1,
                batch_size=8192,
                max_iter=50,
                random_state=seed,
            ).fit(Z)
        else:
            km = KMeans(k, n_init=8, random_state=seed).fit(Z)
        raw_labels = km.predict(Z)
        counts = np.bincount(raw_labels, minlength=k)
        order = np.lexsort((np.arange(k), -counts))  # largest first, ties by index
        self.persona_of_cluster_ = np.empty(k, dtype=int)
        self.persona_of_cluster_[order] = np.arange(k)
        self.kmeans_ = km
        self.cluster_centers_ = km.cluster_centers_[order]
        self.labels_ = self.persona_of_cluster_[raw_labels]
        self.inertia_ = float(km.inertia_)
        self.sizes_ = pd.Series(np.bincount(self.labels_, minlength=k), name="n_customers")
        self.sizes_.index.name = "persona"
        self.basis_ = X.attrs.get("basis", "the given features")

        self.profiles_ = self._profile(sub, Z)
        self.names_ = _unique_names(
            self.profiles_.pivot(index="persona", columns="feature", values="z")
        )
        self.profiles_["name"] = [self.names_[p] for p in self.profiles_.persona]
        self.stability_ = self._persona_stability(Zs, self.labels_[sample_idx], rng)
        self._surrogate(raw, rng)
        return self

    def _select_k(self, Zs: np.ndarray, rng: np.random.Generator) -> None:
        lo, hi = self.k_range
        hi = min(hi, len(Zs) // 5)
        ks = np.arange(lo, max(hi, lo + 1) + 1)
        m = len(Zs)
        # Gap reference box: aligned with the sample's principal axes (Tibshirani et al. 2001).
        centred = Zs - Zs.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        rot = centred @ vt.T
        box_lo, box_hi = rot.min(axis=0), rot.max(axis=0)
        refs = [rng.uniform(box_lo, box_hi, size=rot.shape) @ vt for _ in range(self.n_references)]
        sil_idx = rng.choice(m, size=min(m, 2000), replace=False)
        rows = []
        for k in ks:
            seed = int(rng.integers(2**31 - 1))
            km = KMeans(int(k), n_init=3, random_state=seed).fit(Zs)
            log_w = float(np.log(km.inertia_))
            ref_w = np.array(
                [
                    np.log(KMeans(int(k), n_init=1, random_state=seed + 1 + b).fit(r).inertia_)
                    for b, r in enumerate(refs)
                ]
            )
            aris = []
            for _ in range(self.n_bootstrap):
                a = rng.integers(0, m, m)
                b = rng.integers(0, m, m)
                s1, s2 = (int(x) for x in rng.integers(2**31 - 1, size=2))
                la = KMeans(int(k), n_init=1, random_state=s1).fit(Zs[a]).predict(Zs)
                lb = KMeans(int(k), n_init=1, random_state=s2).fit(Zs[b]).predict(Zs)
                aris.append(adjusted_rand_score(la, lb))
            sil = float(silhouette_score(Zs[sil_idx], km.labels_[sil_idx]))
            rows.append(
                {
                    "k": int(k),
                    "inertia": float(km.inertia_),
                    "gap": float(ref_w.mean() - log_w),
                    "gap_se": float(ref_w.std() * np.sqrt(1 + 1 / len(refs))),
                    "stability": float(np.mean(aris)),
                    "stability_sd": float(np.std(aris)),
                    "silhouette": sil,
                }
            )
        tab = pd.DataFrame(rows)
        k_elbow = _kneedle(tab.k.to_numpy(float), tab.inertia.to_numpy(float))
        k_gap = int(tab.k.iloc[-1])
        for i in range(len(tab) - 1):
            if tab.gap.iloc[i] >= tab.gap.iloc[i + 1] - tab.gap_se.iloc[i + 1]:
                k_gap = int(tab.k.iloc[i])
                break
        stab = dict(zip(tab.k, tab.stability, strict=True))
        # Stability's own pick: the largest k within 0.05 of the best mean ARI (larger k
        # resolves more structure; k values that are much less stable split noise).
        best = max(stab.values())
        k_stable = max(k for k, v in stab.items() if v >= best - 0.05)
        votes = {"elbow": k_elbow, "gap": k_gap, "stability": k_stable}
        tally: dict[int, int] = {}
        for v in votes.values():
            tally[v] = tally.get(v, 0) + 1
        top_votes = max(tally.values())
        agreed = [k for k, c in tally.items() if c == top_votes]
        k_best = max(agreed, key=lambda k: (stab[k], k))
        tab["chosen"] = tab.k == k_best
        self.k_ = int(k_best)
        self.k_selection_ = tab
        self.k_votes_ = votes
        self.k_reason_ = _k_reason(votes, self.k_, stab, self.min_stability)

    def _profile(self, raw: pd.DataFrame, Z: np.ndarray) -> pd.DataFrame:
        """Return the long profile table: raw means (NaN skipped) and mean z-scores."""
        lab = self.labels_
        # z-scores without the column weights, so that they read as SDs
        zu = Z / self.weights_
        means = raw.groupby(lab).mean()
        zmeans = pd.DataFrame(zu, columns=self.feature_names_in_).groupby(lab).mean()
        overall = raw.mean()
        recs = [
            {
                "persona": p,
                "feature": f,
                "mean": float(means.loc[p, f]),
                "z": float(zmeans.loc[p, f]),
                "overall_mean": float(overall[f]),
            }
            for p in range(self.k_)
            for f in self.feature_names_in_
        ]
        return pd.DataFrame(recs)

    def _persona_stability(
        self, Zs: np.ndarray, ref: np.ndarray, rng: np.random.Generator
    ) -> pd.Series:
        k = self.k_
        m = len(Zs)
        n_boot = max(self.n_bootstrap, 5)
        scores = np.zeros((n_boot, k))
        for b in range(n_boot):
            idx = np.unique(rng.integers(0, m, m))
            seed = int(rng.integers(2**31 - 1))
            km = KMeans(k, n_init=2, random_state=seed).fit(Zs[idx])
            scores[b] = _jaccard_best(ref[idx], km.labels_, k)
        return pd.Series(scores.mean(axis=0), name="stability_jaccard").rename_axis("persona")

    def _surrogate(self, raw: pd.DataFrame, rng: np.random.Generator) -> None:
        n = len(raw)
        m = min(n, 100_000)
        idx = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        perm = rng.permutation(idx)
        cut = int(0.7 * len(perm))
        tr, te = perm[:cut], perm[cut:]
        seed = int(rng.integers(2**31 - 1))
        tree = DecisionTreeClassifier(max_depth=3, random_state=seed)
        Xr = raw.to_numpy(dtype=float)
        tree.fit(Xr[tr], self.labels_[tr])
        self.tree_ = tree
        self.fidelity_ = float((tree.predict(Xr[te]) == self.labels_[te]).mean())
        names = [self.names_[c] for c in tree.classes_]
        self.rules_ = export_text(
            tree,
            feature_names=[str(f) for f in self.feature_names_in_],
            class_names=names,
            decimals=2,
            show_weights=False,
        )

    # ---- using the model ---------------------------------------------------------------

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Return the persona (0 = largest) of new customers' features.

        Parameters
        ----------
        X
            Per-customer features with the columns the model was fitted on (in any
            order).

        Returns
        -------
        numpy.ndarray
            One persona number per row.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        DataError
            When ``X`` lacks a column the model was fitted on.
        """
        check_is_fitted(self)
        Z = self.transform(X)
        with threadpool_limits(limits=1):
            return self.persona_of_cluster_[self.kmeans_.predict(Z)]

    def fit_predict(self, X: pd.DataFrame | np.ndarray, y: object = None) -> np.ndarray:
        """Fit the model and return :attr:`labels_`.

        Parameters
        ----------
        X
            Per-customer features, as for :meth:`fit`.
        y
            Ignored (scikit-learn's signature).

        Returns
        -------
        numpy.ndarray
            The persona of every row of ``X``.
        """
        return self.fit(X).labels_

    def summary(self) -> pd.DataFrame:
        """Return one row per persona: name, size, share, stability and its top traits.

        Returns
        -------
        pandas.DataFrame
            ``persona``, ``name``, ``n_customers``, ``share``, ``stability_jaccard``,
            ``mean_<feature>`` for spend, orders, spend per order, recency and support
            contacts (when present) and ``top_traits`` (the four features furthest from
            the average, with their mean and z-score).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        """
        check_is_fitted(self)
        z = self.profiles_.pivot(index="persona", columns="feature", values="z")
        mean = self.profiles_.pivot(index="persona", columns="feature", values="mean")
        rows = []
        n_all = int(self.sizes_.sum())
        for p in range(self.k_):
            top = z.loc[p].abs().sort_values(ascending=False).index[:4]
            traits = "; ".join(f"{f} {mean.loc[p, f]:,.2f} ({z.loc[p, f]:+.1f} sd)" for f in top)
            row = {
                "persona": p,
                "name": self.names_[p],
                "n_customers": int(self.sizes_[p]),
                "share": self.sizes_[p] / n_all,
                "stability_jaccard": float(self.stability_[p]),
            }
            for f in ("spend", "orders", "spend_per_order", "recency_days", "support_contacts"):
                if f in mean.columns:
                    row[f"mean_{f}"] = float(mean.loc[p, f])
            row["top_traits"] = traits
            rows.append(row)
        return pd.DataFrame(rows)


# ---- assignments and explanations -------------------------------------------------------


def assign(model: Personas, features: pd.DataFrame) -> pd.DataFrame:
    """Return the persona of every customer in ``features``.

    On the training table this equals ``model.labels_``.

    Parameters
    ----------
    model
        A fitted :class:`Personas`.
    features
        Per-customer features indexed by ``customer_id``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (string), ``persona`` (int64) and ``persona_name`` (string).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    """
    check_is_fitted(model)
    labels = model.predict(features)
    out = pd.DataFrame(
        {
            "customer_id": features.index.astype("string"),
            "persona": labels.astype("int64"),
        }
    )
    out["persona_name"] = pd.Series([model.names_[p] for p in labels], dtype="string")
    return out.reset_index(drop=True)


def _rule_text(conds: Sequence[tuple[str, str, float]]) -> str:
    """Return conditions as text, keeping the tightest bound per feature and direction."""
    if not conds:
        return "(everyone)"
    upper: dict[str, float] = {}
    lower: dict[str, float] = {}
    order: list[str] = []
    for f, op, thr in conds:
        if f not in order:
            order.append(f)
        if op == "<=":
            upper[f] = min(upper.get(f, np.inf), thr)
        else:
            lower[f] = max(lower.get(f, -np.inf), thr)
    parts = []
    for f in order:
        if f in lower and f in upper:
            parts.append(f"{lower[f]:,.2f} < {f} <= {upper[f]:,.2f}")
        elif f in lower:
            parts.append(f"{f} > {lower[f]:,.2f}")
        else:
            parts.append(f"{f} <= {upper[f]:,.2f}")
    return " and ".join(parts)


def persona_rules(model: Personas) -> pd.DataFrame:
    """Return the surrogate tree's leaves as readable rules, one row per leaf.

    Parameters
    ----------
    model
        A fitted :class:`Personas`.

    Returns
    -------
    pandas.DataFrame
        ``persona``, ``persona_name``, ``rule`` (conditions joined by "and", on raw
        feature values), ``n_customers`` (training customers in the leaf) and
        ``precision`` (share of them who are in that persona); sorted by persona, then
        leaf size.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    """
    check_is_fitted(model)
    t = model.tree_.tree_
    names = [str(f) for f in model.feature_names_in_]
    rows = []

    def walk(node: int, conds: list[tuple[str, str, float]]) -> None:
        if t.children_left[node] == -1:
            counts = t.value[node][0] * t.n_node_samples[node] / max(t.value[node][0].sum(), 1e-12)
            cls = int(np.argmax(counts))
            persona = int(model.tree_.classes_[cls])
            rows.append(
                {
                    "persona": persona,
                    "persona_name": model.names_[persona],
                    "rule": _rule_text(conds),
                    "n_customers": int(t.n_node_samples[node]),
                    "precision": float(counts[cls] / counts.sum()),
                }
            )
            return
        f, thr = names[t.feature[node]], float(t.threshold[node])
        walk(int(t.children_left[node]), [*conds, (f, "<=", thr)])
        walk(int(t.children_right[node]), [*conds, (f, ">", thr)])

    walk(0, [])
    out = pd.DataFrame(rows)
    return out.sort_values(["persona", "n_customers"], ascending=[True, False]).reset_index(
        drop=True
    )


def pca_map(
    model: Personas, features: pd.DataFrame, *, sample: int = 5000, random_state: int | None = 0
) -> pd.DataFrame:
    """Return a 2-D principal-component map of (a seeded sample of) the customers.

    Parameters
    ----------
    model
        A fitted :class:`Personas`.
    features
        The per-customer features, indexed by ``customer_id``.
    sample
        At most this many customers are drawn.
    random_state
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``pc1``, ``pc2``, ``persona``, ``persona_name``;
        ``attrs["explained"]`` holds the two components' shares of variance.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    """
    check_is_fitted(model)
    rng = np.random.default_rng(random_state)
    n = len(features)
    idx = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    sub = features.iloc[idx]
    Z = model.transform(sub)
    pca = PCA(n_components=2, random_state=0).fit(Z)
    xy = pca.transform(Z)
    labels = model.predict(sub)
    out = pd.DataFrame(
        {
            "customer_id": sub.index.astype(str),
            "pc1": xy[:, 0],
            "pc2": xy[:, 1],
            "persona": labels,
            "persona_name": [model.names_[p] for p in labels],
        }
    )
    out.attrs["explained"] = pca.explained_variance_ratio_.tolist()
    return out
