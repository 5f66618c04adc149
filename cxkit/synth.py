"""Demo data with planted truth: a multi-channel CX dataset whose answers are known.

:func:`write_demo` writes the contract's four tables (``customers``, ``events``, ``orders``,
``responses``), the optional ``assignments`` of a planted experiment, plus ``_truth.parquet`` (one row per customer: persona, true purchase rate,
dropout probability and time, mean spend, advocacy) and ``_truth.json`` (the global
parameters: persona shares and behaviour, stage conversions, the CSAT pain point, the
comment themes). Every analysis in cxkit can be checked against that truth.

What is planted
---------------
* Five personas with shares 0.30 / 0.15 / 0.20 / 0.20 / 0.15 and clearly different
  channel mixes, order frequency, spend and support contacts (:data:`PERSONAS`).
* A funnel: awareness (first event) -> consideration (``p_consider``) -> first order
  (``p_purchase``) -> repeat orders by the BG/NBD process (per customer
  ``lambda ~ Gamma(r, alpha)`` per day, ``p ~ Beta(a, b)``, dropout only after a repeat
  order) -> advocacy (``p_advocate``; advocates refer or review, and only they give NPS
  9-10).
* Order values by Gamma-Gamma: ``nu ~ Gamma(q, gamma)``, amount ``~ Gamma(p, nu)``.
* A pain point: ``support_heavy`` customers rate chat support about 2.2 / 5 in CSAT
  (about 4 everywhere else).
* Comment themes tied to detractors ("delivery delays", "rude or slow support",
  "app crashes", "price too high") and promoters ("fast delivery", "helpful staff",
  "easy to use app"); a detractor's comment often names its context (a chat contact,
  a delivery, the app), see :data:`CONTEXT_THEMES`.
* Quiet nights and busy evenings: every timestamp's time of day follows
  :data:`DIURNAL_WEIGHTS`.
* An experiment (:data:`EXPERIMENT`): existing customers assigned 50/50 to a "loyalty
  offer" or control, whose treated arm orders more (an extra order for some, 20% larger
  baskets for 90 days) and turns some NPS detractors into passives. It is layered on the
  base simulation with its own generator, so the base draws are unchanged and only
  treated customers' rows after their assignment differ; ``_truth.json`` records the
  realised effect on the treated (``"experiment"``).

Generation is vectorised and chunked: customers are drawn ``chunk_size`` at a time, each
chunk with its own generator ``np.random.default_rng([seed, chunk_index])`` and appended
as one Parquet row group, so memory is bounded by one chunk (about 0.9 GB for the
default 100,000) whatever the number of customers. Same seed and arguments, same bytes.

Examples
--------
>>> demo = generate(200, seed=1)
>>> sorted(demo.tables)
['assignments', 'customers', 'events', 'orders', 'responses']
>>> len(demo.customers)
200
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cxkit.errors import UsageError

__all__ = [
    "CHANNELS",
    "CONTEXT_THEMES",
    "DIURNAL_WEIGHTS",
    "EXPERIMENT",
    "EXPERIMENT_STREAM",
    "PERSONAS",
    "PERSONA_NAMES",
    "THEMES",
    "THEME_SHARES",
    "Chunk",
    "Demo",
    "generate",
    "iter_chunks",
    "truth_info",
    "write_demo",
]

TABLE_NAMES: tuple[str, ...] = ("customers", "events", "orders", "responses")

# --------------------------------------------------------------------------------------
# planted parameters
# --------------------------------------------------------------------------------------

#: Every event/order/response channel, in code order.
CHANNELS: tuple[str, ...] = ("web", "app", "store", "email", "phone", "social", "chat")
_CH = {c: i for i, c in enumerate(CHANNELS)}

SESSION_CHANNELS = ("web", "app", "store", "email", "social")
ORDER_CHANNELS = ("web", "app", "store", "phone")
CONSIDER_CHANNELS = ("web", "app", "store")
SUPPORT_CHANNELS = ("phone", "chat", "email")
REGIONS = ("north", "south", "east", "west")
ACQUISITION = ("search", "social", "referral", "email", "store", "partner")
PLANS = ("basic", "plus", "premium")
SUPPORT_TOPICS = ("delivery", "billing", "returns", "onboarding", "product")
_PRESALE_TOPICS = (0.0, 0.3, 0.0, 0.4, 0.3)  # before a first order: no delivery/returns

#: Per-persona parameters. Rates are per DAY. Gamma distributions use (shape, rate).
PERSONAS: dict[str, dict[str, Any]] = {
    "bargain_hunters": {
        "share": 0.30,
        "session_mix": (0.66, 0.10, 0.04, 0.15, 0.05),
        "order_mix": (0.82, 0.13, 0.05, 0.00),
        "consider_mix": (0.85, 0.12, 0.03),
        "support_mix": (0.30, 0.40, 0.30),
        "session_rate_per_day": 0.030,
        "support_rate_per_day": 0.004,
        "min_support": 0,
        "p_consider": 0.75,
        "p_purchase": 0.55,
        "p_advocate": 0.15,
        "bgnbd": {"r": 0.4, "alpha": 12.0, "a": 1.0, "b": 12.0},
        "gamma_gamma": {"p": 6.0, "q": 5.0, "gamma": 16.0},
        "region_mix": (0.25, 0.35, 0.20, 0.20),
        "acquisition_mix": (0.45, 0.15, 0.10, 0.15, 0.05, 0.10),
        "plan_mix": (0.70, 0.25, 0.05),
        "nps_detractor_base": 0.35,
        "csat_mean": 4.0,
        "csat_mean_chat": 4.0,
        "ces_mean": 5.3,
        "ces_mean_chat": 5.2,
    },
    "loyal_app_fans": {
        "share": 0.15,
        "session_mix": (0.08, 0.80, 0.02, 0.08, 0.02),
        "order_mix": (0.10, 0.86, 0.04, 0.00),
        "consider_mix": (0.12, 0.86, 0.02),
        "support_mix": (0.20, 0.50, 0.30),
        "session_rate_per_day": 0.040,
        "support_rate_per_day": 0.003,
        "min_support": 0,
        "p_consider": 0.90,
        "p_purchase": 0.80,
        "p_advocate": 0.45,
        "bgnbd": {"r": 1.0, "alpha": 14.0, "a": 1.0, "b": 30.0},
        "gamma_gamma": {"p": 6.0, "q": 5.0, "gamma": 60.0},
        "region_mix": (0.30, 0.20, 0.30, 0.20),
        "acquisition_mix": (0.25, 0.10, 0.35, 0.15, 0.05, 0.10),
        "plan_mix": (0.20, 0.40, 0.40),
        "nps_detractor_base": 0.25,
        "csat_mean": 4.3,
        "csat_mean_chat": 4.0,
        "ces_mean": 5.6,
        "ces_mean_chat": 5.3,
    },
    "store_regulars": {
        "share": 0.20,
        "session_mix": (0.10, 0.04, 0.72, 0.10, 0.04),
        "order_mix": (0.08, 0.02, 0.70, 0.20),
        "consider_mix": (0.15, 0.05, 0.80),
        "support_mix": (0.75, 0.05, 0.20),
        "session_rate_per_day": 0.025,
        "support_rate_per_day": 0.008,
        "min_support": 0,
        "p_consider": 0.70,
        "p_purchase": 0.65,
        "p_advocate": 0.20,
        "bgnbd": {"r": 0.4, "alpha": 18.0, "a": 1.0, "b": 16.0},
        "gamma_gamma": {"p": 6.0, "q": 5.0, "gamma": 36.0},
        "region_mix": (0.40, 0.20, 0.20, 0.20),
        "acquisition_mix": (0.15, 0.05, 0.15, 0.10, 0.45, 0.10),
        "plan_mix": (0.40, 0.40, 0.20),
        "nps_detractor_base": 0.30,
        "csat_mean": 4.2,
        "csat_mean_chat": 4.0,
        "ces_mean": 5.4,
        "ces_mean_chat": 5.2,
    },
    "social_browsers": {
        "share": 0.20,
        "session_mix": (0.14, 0.06, 0.02, 0.04, 0.74),
        "order_mix": (0.60, 0.32, 0.08, 0.00),
        "consider_mix": (0.60, 0.37, 0.03),
        "support_mix": (0.20, 0.50, 0.30),
        "session_rate_per_day": 0.080,
        "support_rate_per_day": 0.002,
        "min_support": 0,
        "p_consider": 0.55,
        "p_purchase": 0.20,
        "p_advocate": 0.10,
        "bgnbd": {"r": 0.3, "alpha": 18.0, "a": 2.0, "b": 6.0},
        "gamma_gamma": {"p": 6.0, "q": 5.0, "gamma": 20.0},
        "region_mix": (0.20, 0.25, 0.25, 0.30),
        "acquisition_mix": (0.10, 0.65, 0.05, 0.05, 0.05, 0.10),
        "plan_mix": (0.60, 0.30, 0.10),
        "nps_detractor_base": 0.50,
        "csat_mean": 3.9,
        "csat_mean_chat": 4.0,
        "ces_mean": 5.1,
        "ces_mean_chat": 5.1,
    },
    "support_heavy": {
        "share": 0.15,
        "session_mix": (0.40, 0.22, 0.10, 0.20, 0.08),
        "order_mix": (0.45, 0.20, 0.10, 0.25),
        "consider_mix": (0.60, 0.28, 0.12),
        "support_mix": (0.30, 0.42, 0.28),
        "session_rate_per_day": 0.030,
        "support_rate_per_day": 0.040,
        "min_support": 3,
        "p_consider": 0.75,
        "p_purchase": 0.60,
        "p_advocate": 0.05,
        "bgnbd": {"r": 0.45, "alpha": 15.75, "a": 1.0, "b": 9.0},
        "gamma_gamma": {"p": 6.0, "q": 5.0, "gamma": 32.0},
        "region_mix": (0.25, 0.25, 0.25, 0.25),
        "acquisition_mix": (0.35, 0.10, 0.10, 0.20, 0.10, 0.15),
        "plan_mix": (0.35, 0.40, 0.25),
        "nps_detractor_base": 0.55,
        "csat_mean": 4.1,
        "csat_mean_chat": 2.2,
        "ces_mean": 5.2,
        "ces_mean_chat": 3.0,
    },
}
PERSONA_NAMES: tuple[str, ...] = tuple(PERSONAS)
_P = [PERSONAS[n] for n in PERSONA_NAMES]

#: Global behaviour (all personas).
_GLOBAL: dict[str, Any] = {
    "signup_growth": 0.6,  # density of first activity rises linearly by this factor
    "signup_margin_days": 90,  # first activity in [start, end - 90 days]
    "consider_delay_days": 30.0,
    "purchase_delay_days": 30.0,
    "min_sessions": 4,
    "nonbuyer_tail_days": 120.0,  # mean engagement after the last funnel step (non-buyers)
    "dropout_tail_days": 10.0,  # mean engagement after dropout (buyers)
    "p_add_to_cart": 0.7,  # per online order (never before store/phone orders)
    "extra_consideration_events": 1.5,  # Poisson mean beyond the first
    "extra_advocacy_events": 0.5,  # Poisson mean beyond the first
    "p_csat_after_support": 0.06,
    "p_ces_after_support": 0.03,
    "p_csat_after_order": 0.04,
    "p_nps": 0.40,
    "p_second_nps": 0.15,
    "nps_detractor_bad_chat_boost": 0.25,
    "nps_detractor_max": 0.90,
    "p_comment": {"detractor": 0.55, "passive": 0.30, "promoter": 0.40},
    "p_second_theme": 0.25,
    "p_context_theme": 0.5,
}

#: The planted experiment: a "loyalty offer" tested on existing customers. It is layered on
#: the base simulation with its own generator (``[seed, chunk, EXPERIMENT_STREAM]``): the
#: base tables are drawn exactly as without it, and only treated customers' rows after
#: their assignment change. Days are calendar days after the assignment.
EXPERIMENT: dict[str, Any] = {
    "name": "loyalty_offer",
    "variants": ("control", "treatment"),
    "split": (0.5, 0.5),
    # assigned at a uniform time between these many days before the end (and at least
    # `min_days_after_start` after the start); customers whose first order fell on an
    # earlier day are eligible, and every eligible customer is assigned
    "assign_from_days_before_end": 240,
    "assign_until_days_before_end": 150,
    "min_days_after_start": 60,
    # the treatment: a customer who has not dropped out places one extra order within
    # `extra_order_within_days` with probability `p_extra_order`; every order in the
    # `offer_days` after assignment is `basket_uplift` larger; an NPS detractor answer
    # (0-6) in the `nps_effect_days` after assignment turns passive (7-8) with
    # probability `p_detractor_to_passive`
    "p_extra_order": 0.12,
    "extra_order_within_days": 30,
    "basket_uplift": 0.20,
    "offer_days": 90,
    "p_detractor_to_passive": 0.5,
    "nps_effect_days": 120,
    # the readout's definitions the realised effects are computed with (the defaults of
    # cxkit.experiments.analyze): conversion = an order within `conversion_days`; churn =
    # no order within `horizon_days`; spend = order amounts within `horizon_days`; NPS =
    # the first NPS answer within `nps_days`
    "conversion_days": 30,
    "horizon_days": 90,
    "nps_days": 120,
}
#: The third seed word of the experiment's generator (the base chunks use ``[seed, chunk]``).
EXPERIMENT_STREAM = 0xE1

# ---- comment themes ------------------------------------------------------------------

#: Theme -> (kind, keywords, phrasings). Phrasings are whole sentences.
THEMES: dict[str, dict[str, Any]] = {
    "delivery delays": {
        "kind": "detractor",
        "keywords": ["late", "delayed", "delivery", "waiting", "parcel", "tracking"],
        "phrasings": [
            "My delivery arrived late again.",
            "The delivery was delayed and the parcel arrived a week late.",
            "Still waiting for my delivery, the parcel is late.",
            "Late delivery, the tracking said delayed for days.",
            "Delivery delayed twice, still waiting on the parcel.",
            "The parcel was late and the delivery date kept slipping.",
            "Delayed delivery again, I was waiting for over a week.",
            "Tracking said delayed and the delivery came late.",
        ],
    },
    "rude or slow support": {
        "kind": "detractor",
        "keywords": ["support", "agent", "rude", "slow", "chat", "hold", "unhelpful"],
        "phrasings": [
            "The support agent was rude and unhelpful.",
            "Support chat was slow and the agent was rude.",
            "Slow support, I waited on chat for forty minutes.",
            "A rude support agent closed my chat without an answer.",
            "Support is slow and the chat agents are unhelpful.",
            "On hold forever, support was slow and rude.",
            "The chat agent was rude and support never solved it.",
            "Unhelpful, slow support on chat again.",
        ],
    },
    "app crashes": {
        "kind": "detractor",
        "keywords": ["app", "crashes", "freezes", "bug", "update", "login"],
        "phrasings": [
            "The app crashes every time I open the basket.",
            "The app crashes and freezes at checkout.",
            "Since the update the app crashes on login.",
            "The app freezes and crashes while I am paying.",
            "Buggy app, it crashes whenever I search.",
            "The app crashes constantly after the last update.",
            "App freezes and crashes, please fix the bug.",
        ],
    },
    "price too high": {
        "kind": "detractor",
        "keywords": ["price", "prices", "expensive", "overpriced", "cheaper"],
        "phrasings": [
            "Prices are too high, far too expensive.",
            "Too expensive, I found the same cheaper elsewhere.",
            "Overpriced and expensive for what you get.",
            "The prices went up again, too expensive now.",
            "The price is too high, competitors are cheaper.",
            "Expensive prices, everything is overpriced.",
            "Far too expensive, the price is not worth it.",
        ],
    },
    "fast delivery": {
        "kind": "promoter",
        "keywords": ["fast", "quick", "delivery", "next", "day", "early"],
        "phrasings": [
            "Fast delivery, it arrived the next day.",
            "Quick and fast delivery, well packed.",
            "Really fast delivery, it came early.",
            "Delivery was fast, next day as promised.",
            "Fast delivery, a day early.",
            "Impressed by the fast delivery.",
        ],
    },
    "helpful staff": {
        "kind": "promoter",
        "keywords": ["helpful", "staff", "friendly", "knowledgeable"],
        "phrasings": [
            "The staff were friendly and helpful.",
            "Helpful staff who knew the products well.",
            "Very friendly and helpful staff in the store.",
            "Friendly staff sorted everything out, very helpful.",
            "Helpful, friendly staff from start to finish.",
            "Knowledgeable and helpful staff, thank you.",
        ],
    },
    "easy to use app": {
        "kind": "promoter",
        "keywords": ["easy", "app", "simple", "use"],
        "phrasings": [
            "The app is easy to use and simple.",
            "Simple, easy app, ordering takes a minute.",
            "Love the app, so easy to use.",
            "Easy to use app, smooth checkout.",
            "Simple and easy app to use.",
            "The app makes reordering easy and simple.",
        ],
    },
}
THEME_NAMES: tuple[str, ...] = tuple(THEMES)
_DETRACTOR_THEMES = [t for t in THEME_NAMES if THEMES[t]["kind"] == "detractor"]
_PROMOTER_THEMES = [t for t in THEME_NAMES if THEMES[t]["kind"] == "promoter"]

#: Planted theme shares by sentiment class (each row sums to 1), in THEME_NAMES order.
THEME_SHARES: dict[str, tuple[float, ...]] = {
    "detractor": (0.30, 0.30, 0.20, 0.20, 0.0, 0.0, 0.0),
    "passive": (0.10, 0.10, 0.10, 0.20, 0.20, 0.15, 0.15),
    "promoter": (0.0, 0.0, 0.0, 0.0, 0.40, 0.30, 0.30),
}
#: Response context -> the theme a comment speaks about when it follows its context.
_CTX_NONE, _CTX_SUPPORT, _CTX_DELIVERY, _CTX_APP = 0, 1, 2, 3
CONTEXT_THEMES: dict[str, dict[str, str]] = {
    "support contact (csat/ces; nps after a low chat csat)": {
        "detractor": "rude or slow support",
        "promoter": "helpful staff",
    },
    "delivery (csat after an order)": {
        "detractor": "delivery delays",
        "promoter": "fast delivery",
    },
    "app checkout (csat after an app order)": {
        "detractor": "app crashes",
        "promoter": "easy to use app",
    },
}


def _context_theme_table() -> np.ndarray:
    """(class, context) -> theme index, -1 for none."""
    table = np.full((3, 4), -1, dtype=np.int64)
    for ctx, themes in enumerate(CONTEXT_THEMES.values(), start=1):
        table[0, ctx] = THEME_NAMES.index(themes["detractor"])
        table[2, ctx] = THEME_NAMES.index(themes["promoter"])
    return table


_COMMENT_OPENERS = ("", "", "", "Honestly, ", "Overall: ", "To be fair, ", "Well, ")
_COMMENT_JOINERS = (" Also, ", " And ", " ", " Plus: ")

EVENT_TYPES: tuple[str, ...] = (
    "ad_impression",
    "social_view",
    "email_open",
    "site_visit",
    "app_open",
    "store_visit",
    "product_view",
    "pricing_view",
    "add_to_cart",
    "support_contact",
    "review",
    "referral",
)
_EV = {e: i for i, e in enumerate(EVENT_TYPES)}
_EVENT_TOUCHPOINT = {
    "ad_impression": "marketing",
    "social_view": "marketing",
    "email_open": "marketing",
    "site_visit": "browse",
    "app_open": "browse",
    "store_visit": "browse",
    "product_view": "browse",
    "pricing_view": "browse",
    "add_to_cart": "checkout",
    "review": "advocacy",
    "referral": "advocacy",
}
TOUCHPOINTS: tuple[str, ...] = (
    "marketing",
    "browse",
    "checkout",
    "advocacy",
    *SUPPORT_TOPICS,
    "relationship",
)
_TP = {t: i for i, t in enumerate(TOUCHPOINTS)}

_US_PER_DAY = 86_400_000_000
#: Relative activity by hour of day (00-23); the time of day of every timestamp follows it.
DIURNAL_WEIGHTS: tuple[float, ...] = tuple(
    float(w)
    for w in "0.6 0.4 0.3 0.25 0.25 0.35 0.7 1.2 1.6 1.8 1.9 2.0 "
    "2.2 2.1 1.9 1.9 2.0 2.2 2.5 2.8 2.9 2.6 1.9 1.1".split()
)
_DIURNAL_CDF = np.concatenate(([0.0], np.cumsum(DIURNAL_WEIGHTS) / np.sum(DIURNAL_WEIGHTS)))
_DIURNAL_HOURS = np.arange(25) / 24.0


# --------------------------------------------------------------------------------------
# small vectorised helpers
# --------------------------------------------------------------------------------------


def _cum(rows: npt.ArrayLike) -> np.ndarray:
    """Return the row-wise cumulative shares of ``rows`` (each row normalised, last = 1)."""
    m = np.asarray(rows, dtype=float)
    m = m / m.sum(axis=1, keepdims=True)
    c = np.cumsum(m, axis=1)
    c[:, -1] = 1.0
    return c


def _pick(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Categorical draw per element: category index from row ``rows[i]`` of ``cum``."""
    n_rows, k = cum.shape
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    u = rng.random(len(rows))
    idx = np.searchsorted(flat, rows + u, side="right") - rows * k
    return np.minimum(idx, k - 1)


def _score_pmf(mean: float, lo: int, hi: int, sd: float) -> np.ndarray:
    """Probabilities of lo..hi for a rounded, clipped normal whose mean is ``mean``."""
    values = np.arange(lo, hi + 1)

    def pmf(mu: float) -> np.ndarray:
        edges = [(v + 0.5 - mu) / sd for v in values[:-1]]
        cdf = np.array([0.0] + [0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges] + [1.0])
        return np.diff(cdf)

    a, b = lo - 5.0, hi + 5.0
    for _ in range(80):
        mid = (a + b) / 2
        if float(pmf(mid) @ values) < mean:
            a = mid
        else:
            b = mid
    return pmf((a + b) / 2)


def _days_to_us(t: np.ndarray, start_us: int) -> np.ndarray:
    """Days since start -> microseconds, with a daily rhythm (quiet nights, busy evenings).

    The time of day is warped by a monotone map, so order and calendar day are kept.
    """
    return start_us + np.floor(_warp(t) * _US_PER_DAY).astype(np.int64)


def _warp(t: np.ndarray) -> np.ndarray:
    day = np.floor(t)
    return day + np.interp(t - day, _DIURNAL_CDF, _DIURNAL_HOURS)


def _by_customer_time(cust: np.ndarray, t: np.ndarray, horizon_days: float) -> np.ndarray:
    """Order by customer, then time: one int64 key (2-3x faster than ``np.lexsort``)."""
    per_customer = math.ceil(horizon_days * _US_PER_DAY) + 1
    key = cust.astype(np.int64) * per_customer + np.floor(t * _US_PER_DAY).astype(np.int64)
    return np.argsort(key, kind="stable")


def _ids(prefix: str, first: int, n: int, width: int) -> pa.Array:
    nums = pa.array(np.arange(first, first + n, dtype=np.int64)).cast(pa.string())
    padded = pc.utf8_lpad(nums, width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), padded, "")


def _labels(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(names, type=pa.string()).take(pa.array(codes.astype(np.int32)))


def _ts(t: np.ndarray, start_us: int) -> pa.Array:
    return pa.array(_days_to_us(t, start_us), type=pa.timestamp("us"))


def _ts_nullable(t: np.ndarray, start_us: int) -> pa.Array:
    mask = np.isnan(t)
    us = _days_to_us(np.where(mask, 0.0, t), start_us)
    return pa.array(us, type=pa.timestamp("us"), mask=mask)


def _float_nullable(x: np.ndarray) -> pa.Array:
    return pa.array(x, type=pa.float64(), mask=np.isnan(x))


# --------------------------------------------------------------------------------------
# the chunk generator
# --------------------------------------------------------------------------------------


@dataclass
class _Tables:
    """Precomputed lookup tables shared by every chunk."""

    session_cum: np.ndarray = field(default_factory=lambda: _cum([p["session_mix"] for p in _P]))
    order_cum: np.ndarray = field(default_factory=lambda: _cum([p["order_mix"] for p in _P]))
    consider_cum: np.ndarray = field(default_factory=lambda: _cum([p["consider_mix"] for p in _P]))
    support_cum: np.ndarray = field(default_factory=lambda: _cum([p["support_mix"] for p in _P]))
    region_cum: np.ndarray = field(default_factory=lambda: _cum([p["region_mix"] for p in _P]))
    acq_cum: np.ndarray = field(default_factory=lambda: _cum([p["acquisition_mix"] for p in _P]))
    plan_cum: np.ndarray = field(default_factory=lambda: _cum([p["plan_mix"] for p in _P]))
    topic_cum: np.ndarray = field(
        default_factory=lambda: _cum([(0.35, 0.20, 0.15, 0.10, 0.20), _PRESALE_TOPICS])
    )
    csat_cum: np.ndarray = field(init=False)
    ces_cum: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # rows: persona * 7 + channel
        csat, ces = [], []
        for p in _P:
            for ch in CHANNELS:
                chat = ch == "chat"
                csat.append(_score_pmf(p["csat_mean_chat" if chat else "csat_mean"], 1, 5, 0.9))
                ces.append(_score_pmf(p["ces_mean_chat" if chat else "ces_mean"], 1, 7, 1.2))
        self.csat_cum = _cum(csat)
        self.ces_cum = _cum(ces)


@functools.cache
def _lookup_tables() -> _Tables:
    return _Tables()


def _param(name: str) -> np.ndarray:
    return np.array([p[name] for p in _P], dtype=float)


def _nested(group: str, name: str) -> np.ndarray:
    return np.array([p[group][name] for p in _P], dtype=float)


@dataclass
class _Clock:
    start: pd.Timestamp
    end: pd.Timestamp
    start_us: int
    horizon_days: float  # T: from start 00:00 to the end of the `end` day


def _clock(start: str | pd.Timestamp, end: str | pd.Timestamp) -> _Clock:
    try:
        s = pd.Timestamp(start).normalize()
        e = pd.Timestamp(end).normalize()
    except (ValueError, TypeError) as err:
        raise UsageError(
            f"start and end must be ISO dates like '2023-01-01', got {start!r}, {end!r}"
        ) from err
    horizon = float((e - s).days + 1)
    if horizon < _GLOBAL["signup_margin_days"] + 60:
        raise UsageError(
            f"end must be at least 150 days after start (got {start!r} to {end!r}): "
            "customers are acquired until 90 days before the end"
        )
    start_us = int(s.value // 1000)
    return _Clock(s, e, start_us, horizon)


@dataclass
class Chunk:
    """One chunk of customers as pyarrow tables (plus per-persona sums for the truth)."""

    index: int
    customers: pa.Table
    events: pa.Table
    orders: pa.Table
    responses: pa.Table
    truth: pa.Table
    sums: dict[str, np.ndarray]
    #: the planted experiment's assignments (``None`` without one) and its realised sums
    assignments: pa.Table | None = None
    experiment: dict[str, float] = field(default_factory=dict)


def _id_width(n: int, default: int) -> int:
    return max(default, len(str(max(n, 1))))


def _chunk(
    rng: np.random.Generator,
    lut: _Tables,
    clock: _Clock,
    index: int,
    first_customer: int,
    n: int,
    n_total: int,
    offsets: dict[str, int],
    xrng: np.random.Generator | None = None,
) -> Chunk:
    g = _GLOBAL
    T = clock.horizon_days
    eps = 1e-7  # keep everything strictly inside [start, end]
    cust = np.arange(n)

    # ---- customers: persona, attributes, first activity -------------------------------
    shares = _param("share")
    persona = _pick(rng, _cum([shares]), np.zeros(n, dtype=np.int64))
    region = _pick(rng, lut.region_cum, persona)
    acq = _pick(rng, lut.acq_cum, persona)
    plan = _pick(rng, lut.plan_cum, persona)
    growth = g["signup_growth"]
    u = rng.random(n)
    x = (-1 + np.sqrt(1 + 2 * growth * u * (1 + growth / 2))) / growth  # linear density
    window = T - 1.0 - g["signup_margin_days"]  # up to end - 90 days (end 00:00)
    aware = x * window

    # ---- funnel -----------------------------------------------------------------------
    considered = rng.random(n) < _param("p_consider")[persona]
    consider_at = np.where(considered, aware + rng.random(n) * g["consider_delay_days"], np.nan)
    purchased = considered & (rng.random(n) < _param("p_purchase")[persona])
    first_order = np.where(
        purchased, consider_at + rng.random(n) * g["purchase_delay_days"], np.nan
    )

    # ---- BG/NBD latent traits and repeat orders ----------------------------------------
    lam = rng.gamma(_nested("bgnbd", "r")[persona], 1.0 / _nested("bgnbd", "alpha")[persona])
    p_drop = rng.beta(_nested("bgnbd", "a")[persona], _nested("bgnbd", "b")[persona])
    nu = rng.gamma(
        _nested("gamma_gamma", "q")[persona], 1.0 / _nested("gamma_gamma", "gamma")[persona]
    )
    gg_p = _nested("gamma_gamma", "p")[persona]
    buyers = np.flatnonzero(purchased)
    t0 = first_order[buyers]
    tau = T - eps - t0
    m = rng.poisson(lam[buyers] * tau)  # purchase opportunities until the end
    k = rng.geometric(p_drop[buyers])  # the repeat order after which the customer drops out
    n_rep = np.minimum(m, k)
    owner_all = np.repeat(np.arange(len(buyers)), m)
    u_all = rng.random(int(m.sum()))
    # sort the uniforms within each buyer with one exact int64 key (owner, u)
    u_key = np.sort((owner_all.astype(np.int64) << 40) | (u_all * 2.0**40).astype(np.int64))
    u_all = (u_key & ((1 << 40) - 1)) / 2.0**40
    starts = (np.cumsum(m) - m).astype(np.int64)
    rank = np.arange(len(u_all)) - np.repeat(starts, m)
    keep = rank < np.repeat(k, m)
    rep_owner = owner_all[keep]
    rep_t = t0[rep_owner] + u_all[keep] * tau[rep_owner]
    drops = k <= m
    dropout = np.full(n, np.nan)
    dropout[buyers[drops]] = t0[drops] + u_all[starts[drops] + k[drops] - 1] * tau[drops]

    # orders: first + repeats, sorted by customer then time
    ord_cust = np.concatenate([buyers, buyers[rep_owner]])
    ord_t = np.concatenate([t0, rep_t])
    o = _by_customer_time(ord_cust, ord_t, T)
    ord_cust, ord_t = ord_cust[o], ord_t[o]
    n_orders = len(ord_cust)
    ord_ch = _pick(rng, lut.order_cum, persona[ord_cust])
    ord_ch_code = np.array([_CH[c] for c in ORDER_CHANNELS])[ord_ch]
    amount = rng.gamma(gg_p[ord_cust], 1.0 / nu[ord_cust])
    amount = np.maximum(np.round(amount, 2), 0.01)

    # ---- activity window ---------------------------------------------------------------
    act_end = np.full(n, T - eps)
    nonbuyer_last = np.where(considered, consider_at, aware)
    tail_nb = nonbuyer_last + g["purchase_delay_days"] + rng.exponential(g["nonbuyer_tail_days"], n)
    act_end = np.where(~purchased, np.minimum(tail_nb, T - eps), act_end)
    has_drop = ~np.isnan(dropout)
    tail_b = dropout + rng.exponential(g["dropout_tail_days"], n)
    act_end = np.where(has_drop, np.minimum(tail_b, T - eps), act_end)
    span = act_end - aware

    ev_cust: list[np.ndarray] = []
    ev_t: list[np.ndarray] = []
    ev_type: list[np.ndarray] = []
    ev_ch: list[np.ndarray] = []
    ev_tp: list[np.ndarray] = []

    def add(c: np.ndarray, t: np.ndarray, typ: np.ndarray, ch: np.ndarray, tp: np.ndarray) -> None:
        ev_cust.append(c)
        ev_t.append(t)
        ev_type.append(typ)
        ev_ch.append(ch)
        ev_tp.append(tp)

    session_ch_code = np.array([_CH[c] for c in SESSION_CHANNELS])
    # session event type by channel (social splits into social_view / ad_impression)
    sess_type = np.array(
        [_EV["site_visit"], _EV["app_open"], _EV["store_visit"], _EV["email_open"], -1]
    )
    type_tp = np.array([_TP.get(_EVENT_TOUCHPOINT.get(e, "marketing"), 0) for e in EVENT_TYPES])

    def session_types(ch_idx: np.ndarray) -> np.ndarray:
        typ = sess_type[ch_idx]
        social = typ < 0
        coin = rng.random(len(typ)) < 0.5
        typ[social] = np.where(coin[social], _EV["social_view"], _EV["ad_impression"])
        return typ

    # awareness: the first event, at `aware`
    a_ch = _pick(rng, lut.session_cum, persona)
    a_type = session_types(a_ch)
    add(cust, aware, a_type, session_ch_code[a_ch], type_tp[a_type])

    # sessions over the activity window
    n_sess = g["min_sessions"] + rng.poisson(_param("session_rate_per_day")[persona] * span)
    sc = np.repeat(cust, n_sess)
    st = aware[sc] + rng.random(len(sc)) * span[sc]
    s_ch = _pick(rng, lut.session_cum, persona[sc])
    s_type = session_types(s_ch)
    add(sc, st, s_type, session_ch_code[s_ch], type_tp[s_type])

    # consideration events
    cons = np.flatnonzero(considered)
    n_cons = 1 + rng.poisson(g["extra_consideration_events"], len(cons))
    cc = np.repeat(cons, n_cons)
    first_of = np.concatenate(([True], cc[1:] != cc[:-1])) if len(cc) else np.zeros(0, bool)
    limit = np.where(purchased, first_order - consider_at, g["purchase_delay_days"])
    ct = consider_at[cc] + np.where(first_of, 0.0, rng.random(len(cc)) * limit[cc])
    ctype = np.array([_EV["product_view"], _EV["pricing_view"], _EV["add_to_cart"]])[
        _pick(rng, _cum([(0.5, 0.25, 0.25)]), np.zeros(len(cc), dtype=np.int64))
    ]
    ctype[first_of] = _EV["product_view"]
    c_ch = np.array([_CH[c] for c in CONSIDER_CHANNELS])[_pick(rng, lut.consider_cum, persona[cc])]
    add(cc, ct, ctype, c_ch, type_tp[ctype])

    # each order is preceded by a product view (and for online orders, often an add to cart)
    floor_t = consider_at[ord_cust]
    pv_t = np.maximum(ord_t - rng.random(n_orders) * 3.0, floor_t)
    add(
        ord_cust,
        pv_t,
        np.full(n_orders, _EV["product_view"]),
        ord_ch_code,
        np.full(n_orders, _TP["browse"]),
    )
    online = (ord_ch_code == _CH["web"]) | (ord_ch_code == _CH["app"])
    cart = online & (rng.random(n_orders) < g["p_add_to_cart"])
    ci = np.flatnonzero(cart)
    cart_t = pv_t[ci] + rng.random(len(ci)) * (ord_t[ci] - pv_t[ci])
    add(
        ord_cust[ci],
        cart_t,
        np.full(len(ci), _EV["add_to_cart"]),
        ord_ch_code[ci],
        np.full(len(ci), _TP["checkout"]),
    )

    # support contacts over the activity window
    n_sup = _param("min_support").astype(np.int64)[persona] + rng.poisson(
        _param("support_rate_per_day")[persona] * span
    )
    supc = np.repeat(cust, n_sup)
    sup_t = aware[supc] + rng.random(len(supc)) * span[supc]
    sup_ch = np.array([_CH[c] for c in SUPPORT_CHANNELS])[
        _pick(rng, lut.support_cum, persona[supc])
    ]
    presale = ~(sup_t > first_order[supc])  # NaN (never bought) counts as pre-sale
    sup_topic = _pick(rng, lut.topic_cum, presale.astype(np.int64))
    sup_tp = np.array([_TP[t] for t in SUPPORT_TOPICS])[sup_topic]
    add(supc, sup_t, np.full(len(supc), _EV["support_contact"]), sup_ch, sup_tp)

    # advocacy: every advocate refers or reviews at least once after the first order
    advocate = purchased & (rng.random(n) < _param("p_advocate")[persona])
    adv = np.flatnonzero(advocate)
    n_adv = 1 + rng.poisson(g["extra_advocacy_events"], len(adv))
    avc = np.repeat(adv, n_adv)
    av_t = first_order[avc] + (0.01 + 0.98 * rng.random(len(avc))) * (
        act_end[avc] - first_order[avc]
    )
    av_type = np.where(rng.random(len(avc)) < 0.5, _EV["review"], _EV["referral"])
    av_ch = np.where(
        av_type == _EV["review"],
        np.array([_CH[c] for c in ORDER_CHANNELS])[_pick(rng, lut.order_cum, persona[avc])],
        _CH["email"],
    )
    av_ch = np.where(av_ch == _CH["phone"], _CH["web"], av_ch)
    add(avc, av_t, av_type, av_ch, np.full(len(avc), _TP["advocacy"]))

    e_cust = np.concatenate(ev_cust)
    e_t = np.concatenate(ev_t)
    eo = _by_customer_time(e_cust, e_t, T)
    e_cust, e_t = e_cust[eo], e_t[eo]
    e_type = np.concatenate(ev_type)[eo]
    e_ch = np.concatenate(ev_ch)[eo]
    e_tp = np.concatenate(ev_tp)[eo]

    # ---- responses -----------------------------------------------------------------------
    # CSAT and CES after support contacts, CSAT after orders, NPS from buyers
    r_parts: list[tuple[np.ndarray, ...]] = []  # (cust, t, survey, score, channel, touchpoint)

    csat_s = np.flatnonzero(rng.random(len(supc)) < g["p_csat_after_support"])
    rc = supc[csat_s]
    rch = sup_ch[csat_s]
    rs = 1 + _pick(rng, lut.csat_cum, persona[rc] * len(CHANNELS) + rch)
    r_parts.append(
        (rc, sup_t[csat_s] + rng.random(len(rc)) * 2.0, 1, rs, rch, sup_tp[csat_s], _CTX_SUPPORT)
    )
    bad_chat = np.zeros(n, dtype=bool)
    bad_chat[rc[(rch == _CH["chat"]) & (rs <= 2)]] = True

    ces_s = np.flatnonzero(rng.random(len(supc)) < g["p_ces_after_support"])
    rc = supc[ces_s]
    rch = sup_ch[ces_s]
    rs = 1 + _pick(rng, lut.ces_cum, persona[rc] * len(CHANNELS) + rch)
    r_parts.append(
        (rc, sup_t[ces_s] + rng.random(len(rc)) * 2.0, 2, rs, rch, sup_tp[ces_s], _CTX_SUPPORT)
    )

    csat_o = np.flatnonzero(rng.random(n_orders) < g["p_csat_after_order"])
    rc = ord_cust[csat_o]
    rch = ord_ch_code[csat_o]
    delivery = rng.random(len(rc)) < 0.6
    rt = ord_t[csat_o] + np.where(
        delivery, 2.0 + rng.random(len(rc)) * 5.0, rng.random(len(rc)) * 0.1
    )
    rtp = np.where(delivery, _TP["delivery"], _TP["checkout"])
    rs = 1 + _pick(rng, lut.csat_cum, persona[rc] * len(CHANNELS) + rch)
    ctx = np.where(delivery, _CTX_DELIVERY, np.where(rch == _CH["app"], _CTX_APP, _CTX_NONE))
    r_parts.append((rc, rt, 1, rs, rch, rtp, ctx))

    n_nps = (purchased & (rng.random(n) < g["p_nps"])).astype(np.int64)
    n_nps += (n_nps > 0) & (rng.random(n) < g["p_second_nps"])
    nc = np.repeat(cust, n_nps)
    nt = first_order[nc] + (0.01 + 0.98 * rng.random(len(nc))) * (act_end[nc] - first_order[nc])
    det_p = np.minimum(
        _param("nps_detractor_base")[persona[nc]]
        + g["nps_detractor_bad_chat_boost"] * bad_chat[nc],
        g["nps_detractor_max"],
    )
    is_det = rng.random(len(nc)) < det_p
    det_score = _pick(rng, _cum([(1, 1, 2, 2, 3, 4, 5)]), np.zeros(len(nc), dtype=np.int64))
    pas_score = 7 + (rng.random(len(nc)) < 0.55)
    pro_score = 9 + (rng.random(len(nc)) < 0.55)
    nscore = np.where(advocate[nc], pro_score, np.where(is_det, det_score, pas_score))
    nch = np.where(rng.random(len(nc)) < 0.7, _CH["email"], _CH["app"])
    nctx = np.where(bad_chat[nc], _CTX_SUPPORT, _CTX_NONE)
    r_parts.append((nc, nt, 0, nscore, nch, np.full(len(nc), _TP["relationship"]), nctx))

    r_cust = np.concatenate([p[0] for p in r_parts])
    r_t = np.concatenate([p[1] for p in r_parts])
    r_survey = np.concatenate([np.full(len(p[0]), p[2]) for p in r_parts])
    r_score = np.concatenate([p[3] for p in r_parts]).astype(np.int64)
    r_ch = np.concatenate([p[4] for p in r_parts])
    r_tp = np.concatenate([p[5] for p in r_parts])
    r_ctx = np.concatenate([np.broadcast_to(p[6], len(p[0])) for p in r_parts])
    inside = r_t < T - eps
    ro = _by_customer_time(r_cust[inside], r_t[inside], T)
    r_cust, r_t, r_survey, r_score, r_ch, r_tp, r_ctx = (
        a[inside][ro] for a in (r_cust, r_t, r_survey, r_score, r_ch, r_tp, r_ctx)
    )
    comments, mentions = _comments(rng, r_survey, r_score, r_ctx)

    # ---- the planted experiment: its own generator, so every draw above is unchanged ------
    x = None
    if xrng is not None:
        x = _plant_experiment(
            xrng,
            lut,
            clock,
            persona=persona,
            purchased=purchased,
            first_order=first_order,
            dropout=dropout,
            nu=nu,
            gg_p=gg_p,
            orders=(ord_cust, ord_t, amount),
            responses=(r_cust, r_t, r_survey, r_score),
        )
    theme_counts = _theme_counts(r_survey, r_score if x is None else x.score, mentions)

    # ---- assemble -------------------------------------------------------------------------
    cw = _id_width(n_total, 7)
    cust_ids = _ids("C", first_customer + 1, n, cw)
    start_us = clock.start_us
    ev_ids = _ids("E", offsets["events"] + 1, len(e_cust), 10)
    ord_ids = _ids("O", offsets["orders"] + 1, n_orders, 9)
    n_base_events = len(e_cust)
    assignments = None
    if x is not None:
        r_score = x.score
        amount = x.amount
        if len(x.order_rows[0]):
            # the added rows go in customer-then-time order; base rows keep their IDs
            xc, xt, xch, xa = x.order_rows
            o = _by_customer_time(np.concatenate([ord_cust, xc]), np.concatenate([ord_t, xt]), T)
            ord_cust, ord_t, ord_ch_code, amount = (
                np.concatenate(pair)[o]
                for pair in ((ord_cust, xc), (ord_t, xt), (ord_ch_code, xch), (amount, xa))
            )
            x_ids = _ids("OX", offsets["x_orders"] + 1, len(xc), 8)
            ord_ids = pa.concat_arrays([ord_ids, x_ids]).take(pa.array(o))
            offsets["x_orders"] += len(xc)
            ec, et, etype, ech, etp = x.event_rows
            o = _by_customer_time(np.concatenate([e_cust, ec]), np.concatenate([e_t, et]), T)
            e_cust, e_t, e_type, e_ch, e_tp = (
                np.concatenate(pair)[o]
                for pair in ((e_cust, ec), (e_t, et), (e_type, etype), (e_ch, ech), (e_tp, etp))
            )
            x_ids = _ids("EX", offsets["x_events"] + 1, len(ec), 9)
            ev_ids = pa.concat_arrays([ev_ids, x_ids]).take(pa.array(o))
            offsets["x_events"] += len(ec)
        assignments = pa.table(
            {
                "customer_id": cust_ids.take(pa.array(x.enrolled)),
                "experiment": pa.array([EXPERIMENT["name"]] * len(x.enrolled), type=pa.string()),
                "variant": _labels(EXPERIMENT["variants"], x.treated.astype(np.int64)),
                "assigned_at": _ts(x.assigned_t, start_us),
            }
        )
    customers = pa.table(
        {
            "customer_id": cust_ids,
            "signup_at": _ts(aware, start_us),
            "region": _labels(REGIONS, region),
            "acquisition_channel": _labels(ACQUISITION, acq),
            "plan": _labels(PLANS, plan),
        }
    )
    events = pa.table(
        {
            "event_id": ev_ids,
            "customer_id": cust_ids.take(pa.array(e_cust)),
            "ts": _ts(e_t, start_us),
            "event": _labels(EVENT_TYPES, e_type),
            "channel": _labels(CHANNELS, e_ch),
            "touchpoint": _labels(TOUCHPOINTS, e_tp),
        }
    )
    orders = pa.table(
        {
            "order_id": ord_ids,
            "customer_id": cust_ids.take(pa.array(ord_cust)),
            "ts": _ts(ord_t, start_us),
            "amount": pa.array(amount, type=pa.float64()),
            "channel": _labels(CHANNELS, ord_ch_code),
        }
    )
    responses = pa.table(
        {
            "response_id": _ids("R", offsets["responses"] + 1, len(r_cust), 9),
            "customer_id": cust_ids.take(pa.array(r_cust)),
            "ts": _ts(r_t, start_us),
            "survey": _labels(("nps", "csat", "ces"), r_survey),
            "score": pa.array(r_score, type=pa.int64()),
            "channel": _labels(CHANNELS, r_ch),
            "touchpoint": _labels(TOUCHPOINTS, r_tp),
            "comment": comments,
        }
    )

    nan = np.nan
    lam_b = np.where(purchased, lam, nan)
    p_b = np.where(purchased, p_drop, nan)
    # days from the (stored) first order time to the end; NaN if no order
    exposure = T - _warp(first_order)
    p_ret = 1.0 - np.exp(-lam_b * exposure)
    truth = pa.table(
        {
            "customer_id": cust_ids,
            "persona": _labels(PERSONA_NAMES, persona),
            "persona_id": pa.array(persona.astype(np.int64)),
            "aware_at": _ts(aware, start_us),
            "considered": pa.array(considered),
            "considered_at": _ts_nullable(consider_at, start_us),
            "purchased": pa.array(purchased),
            "first_order_at": _ts_nullable(first_order, start_us),
            "lambda_per_day": _float_nullable(lam_b),
            "p_dropout": _float_nullable(p_b),
            "dropout_at": _ts_nullable(dropout, start_us),
            "alive_at_end": pa.array(purchased & np.isnan(dropout)),
            "mean_spend": _float_nullable(np.where(purchased, gg_p / nu, nan)),
            "advocate": pa.array(advocate),
            "p_retention": _float_nullable(p_ret),
            "expected_repeat_orders": _float_nullable(
                (1.0 - np.exp(-lam_b * p_b * exposure)) / p_b
            ),
            "activity_end_at": _ts(act_end, start_us),
        }
    )

    # per-persona sums for the global truth
    def by_persona(weights: np.ndarray) -> np.ndarray:
        return np.bincount(persona, weights=weights, minlength=len(_P))

    retained = np.isin(cust, buyers[n_rep > 0]) if len(buyers) else np.zeros(n, dtype=bool)
    if x is not None:  # an extra order is a repeat order (on a later day than the first)
        retained |= x.extra
    sums = {
        "customers": by_persona(np.ones(n)),
        "considered": by_persona(considered.astype(float)),
        "purchased": by_persona(purchased.astype(float)),
        "advocates": by_persona(advocate.astype(float)),
        "p_retention": by_persona(np.nan_to_num(p_ret)),
        "retained": by_persona(retained.astype(float)),
    }
    sums["theme_counts"] = theme_counts
    offsets["events"] += n_base_events
    offsets["orders"] += n_orders
    offsets["responses"] += len(r_cust)
    return Chunk(
        index,
        customers,
        events,
        orders,
        responses,
        truth,
        sums,
        assignments=assignments,
        experiment={} if x is None else x.sums,
    )


# --------------------------------------------------------------------------------------
# the planted experiment
# --------------------------------------------------------------------------------------


@dataclass
class _Planted:
    """What the planted experiment adds to and changes in one chunk."""

    enrolled: np.ndarray  # customer indices assigned, ascending
    assigned_t: np.ndarray  # their assignment times (days since start)
    treated: np.ndarray  # per enrolled customer: in the treatment arm
    extra: np.ndarray  # per customer: placed an extra order
    amount: np.ndarray  # the base orders' amounts after the basket uplift
    order_rows: tuple[np.ndarray, ...]  # the extra orders: customer, time, channel, amount
    event_rows: tuple[np.ndarray, ...]  # their events: customer, time, type, channel, touchpoint
    score: np.ndarray  # the responses' scores after the NPS effect
    sums: dict[str, float]  # realised arm sums, effects on the treated and changed rows


def _plant_experiment(
    rng: np.random.Generator,
    lut: _Tables,
    clock: _Clock,
    *,
    persona: np.ndarray,
    purchased: np.ndarray,
    first_order: np.ndarray,
    dropout: np.ndarray,
    nu: np.ndarray,
    gg_p: np.ndarray,
    orders: tuple[np.ndarray, np.ndarray, np.ndarray],
    responses: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> _Planted | None:
    """Assign customers to :data:`EXPERIMENT` and apply its treatment (see there).

    Uses only ``rng`` (the experiment's own generator) and changes nothing it is given:
    the control arm and unassigned customers keep every row; a treated customer's rows
    after the assignment are the only ones that change. Returns ``None`` when the data's
    span leaves no room for the assignment window.
    """
    X = EXPERIMENT
    T = clock.horizon_days
    eps = 1e-7
    n = len(persona)
    lo = max(T - X["assign_from_days_before_end"], float(X["min_days_after_start"]))
    hi = T - X["assign_until_days_before_end"]
    if hi <= lo:
        return None
    start_us, day = clock.start_us, _US_PER_DAY
    # fixed-size draws first, for every customer
    t_assign = lo + rng.random(n) * (hi - lo)
    treat = rng.random(n) < X["split"][1]
    u_extra = rng.random(n)
    t_extra = t_assign + rng.random(n) * X["extra_order_within_days"]
    with np.errstate(invalid="ignore"):
        enrolled = purchased & (np.floor(first_order) < np.floor(t_assign))
    treated = enrolled & treat
    a_us = _days_to_us(t_assign, start_us)

    # the extra orders, each after a product view (and online often an add to cart), all
    # after the assignment; only customers who have not dropped out by then
    alive = np.isnan(dropout) | (dropout > t_extra)
    extra = (
        treated
        & alive
        & (u_extra < X["p_extra_order"])
        & (t_extra < T - eps)
        & (_days_to_us(t_extra, start_us) > a_us)
    )
    xi = np.flatnonzero(extra)
    x_t = t_extra[xi]
    x_ch = np.array([_CH[c] for c in ORDER_CHANNELS])[_pick(rng, lut.order_cum, persona[xi])]
    x_amount = np.maximum(np.round(rng.gamma(gg_p[xi], 1.0 / nu[xi]), 2), 0.01)
    pv_t = x_t - rng.random(len(xi)) * np.minimum(3.0, x_t - t_assign[xi])
    online = (x_ch == _CH["web"]) | (x_ch == _CH["app"])
    ci = np.flatnonzero(online & (rng.random(len(xi)) < _GLOBAL["p_add_to_cart"]))
    cart_t = pv_t[ci] + rng.random(len(ci)) * (x_t[ci] - pv_t[ci])
    event_rows = (
        np.concatenate([xi, xi[ci]]),
        np.concatenate([pv_t, cart_t]),
        np.concatenate(
            [np.full(len(xi), _EV["product_view"]), np.full(len(ci), _EV["add_to_cart"])]
        ),
        np.concatenate([x_ch, x_ch[ci]]),
        np.concatenate([np.full(len(xi), _TP["browse"]), np.full(len(ci), _TP["checkout"])]),
    )

    # the basket uplift on every order in the offer window
    def uplift(cust: np.ndarray, t: np.ndarray, amt: np.ndarray) -> np.ndarray:
        rel = _days_to_us(t, start_us) - a_us[cust]
        inside = treated[cust] & (rel > 0) & (rel <= X["offer_days"] * day)
        bigger = np.maximum(np.round(amt * (1.0 + X["basket_uplift"]), 2), 0.01)
        return np.where(inside, bigger, amt)

    o_cust, o_t, o_amount = orders
    amount = uplift(o_cust, o_t, o_amount)
    x_amount = uplift(xi, x_t, x_amount)

    # detractor answers turn passive
    r_cust, r_t, r_survey, r_score = responses
    u_flip = rng.random(len(r_cust))
    u_score = rng.random(len(r_cust))
    r_us = _days_to_us(r_t, start_us)
    r_rel = r_us - a_us[r_cust]
    flip = (
        (r_survey == 0)
        & (r_score <= 6)
        & treated[r_cust]
        & (r_rel > 0)
        & (r_rel <= X["nps_effect_days"] * day)
        & (u_flip < X["p_detractor_to_passive"])
    )
    score = np.where(flip, 7 + (u_score < 0.55), r_score).astype(r_score.dtype)

    # realised outcomes with and without the treatment (the base simulation is every
    # customer's outcome without it), by the readout's definitions
    o_us = _days_to_us(o_t, start_us)
    base = _outcomes(o_cust, o_us, o_amount, r_cust, r_us, r_survey, r_score, a_us, n)
    final = _outcomes(
        np.concatenate([o_cust, xi]),
        np.concatenate([o_us, _days_to_us(x_t, start_us)]),
        np.concatenate([amount, x_amount]),
        r_cust,
        r_us,
        r_survey,
        score,
        a_us,
        n,
    )
    sums: dict[str, float] = {}
    for name, arm in zip(X["variants"], (enrolled & ~treat, treated), strict=True):
        prior = arm & final["prior"]
        said = arm & ~np.isnan(final["nps"])
        sums[f"{name}_n"] = float(arm.sum())
        sums[f"{name}_conversion"] = float(final["conversion"][arm].sum())
        sums[f"{name}_churn_n"] = float(prior.sum())
        sums[f"{name}_churn"] = float(final["churn"][prior].sum())
        sums[f"{name}_spend"] = float(final["spend"][arm].sum())
        sums[f"{name}_nps_n"] = float(said.sum())
        sums[f"{name}_nps"] = float(final["nps"][said].sum())
    prior = treated & final["prior"]
    said = treated & ~np.isnan(final["nps"])
    for metric, mask in (("conversion", treated), ("churn", prior), ("spend", treated)):
        delta = final[metric][mask].astype(float) - base[metric][mask].astype(float)
        sums[f"delta_{metric}"] = float(delta.sum())
    sums["delta_nps"] = float((final["nps"][said] - base["nps"][said]).sum())
    sums["orders_added"] = float(len(xi))
    sums["orders_changed"] = float((amount != o_amount).sum())
    sums["events_added"] = float(len(event_rows[0]))
    sums["responses_changed"] = float(flip.sum())
    enrolled_idx = np.flatnonzero(enrolled)
    return _Planted(
        enrolled=enrolled_idx,
        assigned_t=t_assign[enrolled_idx],
        treated=treat[enrolled_idx],
        extra=extra,
        amount=amount,
        order_rows=(xi, x_t, x_ch, x_amount),
        event_rows=event_rows,
        score=score,
        sums=sums,
    )


def _outcomes(
    o_cust: np.ndarray,
    o_us: np.ndarray,
    o_amount: np.ndarray,
    r_cust: np.ndarray,
    r_us: np.ndarray,
    r_survey: np.ndarray,
    r_score: np.ndarray,
    a_us: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Per customer, the readout's outcomes after the assignment time ``a_us``.

    ``conversion``: an order within ``conversion_days``; ``prior``: an order at or before
    the assignment; ``churn``: a prior customer with no order within ``horizon_days``;
    ``spend``: order amounts within ``horizon_days``; ``nps``: the first NPS answer
    within ``nps_days`` as +1 (9-10), 0 (7-8) or -1 (0-6), NaN without one (ties at the
    same instant: the higher score). Windows are ``(assigned_at, assigned_at + days]``.
    """
    X, day = EXPERIMENT, _US_PER_DAY
    rel = o_us - a_us[o_cust]
    conv = np.bincount(o_cust[(rel > 0) & (rel <= X["conversion_days"] * day)], minlength=n) > 0
    in_h = (rel > 0) & (rel <= X["horizon_days"] * day)
    spend = np.bincount(o_cust[in_h], weights=o_amount[in_h], minlength=n)
    ordered = np.bincount(o_cust[in_h], minlength=n) > 0
    prior = np.bincount(o_cust[rel <= 0], minlength=n) > 0
    r_rel = r_us - a_us[r_cust]
    idx = np.flatnonzero((r_survey == 0) & (r_rel > 0) & (r_rel <= X["nps_days"] * day))
    idx = idx[np.lexsort((-r_score[idx], r_us[idx], r_cust[idx]))]
    first = idx[np.concatenate(([True], r_cust[idx][1:] != r_cust[idx][:-1]))] if len(idx) else idx
    nps = np.full(n, np.nan)
    s = r_score[first]
    nps[r_cust[first]] = np.where(s >= 9, 1.0, np.where(s <= 6, -1.0, 0.0))
    return {
        "conversion": conv,
        "prior": prior,
        "churn": prior & ~ordered,
        "spend": spend,
        "nps": nps,
    }


def _comments(
    rng: np.random.Generator, survey: np.ndarray, score: np.ndarray, context: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """Free text for ~40% of responses, built from the planted themes.

    The first theme comes from the sentiment class's shares (:data:`THEME_SHARES`), except
    that with probability ``p_context_theme`` a detractor or promoter comment speaks about
    its context (:data:`CONTEXT_THEMES`: a support contact, a delivery, the app). Returns
    the comments and which themes each one mentions (responses x themes, all False for a
    response without a comment; :func:`_theme_counts` counts them by class).
    """
    n = len(survey)
    # sentiment class: 0 detractor, 1 passive, 2 promoter
    det_hi = np.array([6, 2, 3])[survey]  # nps, csat, ces
    pro_lo = np.array([9, 5, 6])[survey]
    cls = np.where(score <= det_hi, 0, np.where(score >= pro_lo, 2, 1))
    p_c = np.array([_GLOBAL["p_comment"][k] for k in ("detractor", "passive", "promoter")])
    has = rng.random(n) < p_c[cls]
    lut_cum = _cum([THEME_SHARES[k] for k in ("detractor", "passive", "promoter")])
    idx = np.flatnonzero(has)
    t1 = _pick(rng, lut_cum, cls[idx])
    t2 = _pick(rng, lut_cum, cls[idx])
    ctx_theme = _context_theme_table()[cls[idx], context[idx]]
    use_ctx = (ctx_theme >= 0) & (rng.random(len(idx)) < _GLOBAL["p_context_theme"])
    t1 = np.where(use_ctx, ctx_theme, t1)
    two = (rng.random(len(idx)) < _GLOBAL["p_second_theme"]) & (t2 != t1)
    mentions = np.zeros((n, len(THEME_NAMES)), dtype=bool)
    mentions[idx, t1] = True
    mentions[idx[two], t2[two]] = True

    phrases: list[str] = []
    first_phrase = []
    n_phr = []
    for name in THEME_NAMES:
        first_phrase.append(len(phrases))
        n_phr.append(len(THEMES[name]["phrasings"]))
        phrases.extend(THEMES[name]["phrasings"])
    first_phrase_a = np.array(first_phrase)
    n_phr_a = np.array(n_phr)
    p1 = first_phrase_a[t1] + (rng.random(len(idx)) * n_phr_a[t1]).astype(np.int64)
    p2 = first_phrase_a[t2] + (rng.random(len(idx)) * n_phr_a[t2]).astype(np.int64)
    opener = rng.integers(0, len(_COMMENT_OPENERS), len(idx))
    joiner = rng.integers(0, len(_COMMENT_JOINERS), len(idx))
    phrase_arr = pa.array(phrases, type=pa.string())
    s1 = phrase_arr.take(pa.array(p1))
    # a lower-cased first letter after an opener reads naturally ("Honestly, the app ...")
    opened = pa.array(_COMMENT_OPENERS).take(pa.array(opener))
    has_opener = pc.not_equal(opened, "")
    lowered = pc.binary_join_element_wise(
        pc.utf8_lower(pc.utf8_slice_codeunits(s1, 0, 1)), pc.utf8_slice_codeunits(s1, 1), ""
    )
    lowered = pc.if_else(pc.starts_with(s1, "I "), s1, lowered)
    first = pc.binary_join_element_wise(opened, pc.if_else(has_opener, lowered, s1), "")
    second = pc.binary_join_element_wise(
        pa.array(_COMMENT_JOINERS).take(pa.array(joiner)), phrase_arr.take(pa.array(p2)), ""
    )
    text = pc.if_else(pa.array(two), pc.binary_join_element_wise(first, second, ""), first)
    # scatter into a full-length nullable column
    pos = np.full(n, -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    return text.take(pa.array(pos, mask=pos < 0)), mentions


def _theme_counts(survey: np.ndarray, score: np.ndarray, mentions: np.ndarray) -> np.ndarray:
    """Count the comments mentioning each theme by sentiment class (3 x themes + a total).

    The last column is the number of comments of each class. Computed from the final
    scores, so a score the planted experiment changed counts in its new class.
    """
    det_hi = np.array([6, 2, 3])[survey]  # nps, csat, ces
    pro_lo = np.array([9, 5, 6])[survey]
    cls = np.where(score <= det_hi, 0, np.where(score >= pro_lo, 2, 1))
    has = mentions.any(axis=1)
    counts = np.zeros((3, len(THEME_NAMES)))
    for c in range(3):
        counts[c] = mentions[has & (cls == c)].sum(axis=0)
    return np.column_stack([counts, np.bincount(cls[has], minlength=3)])


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def iter_chunks(
    customers: int = 20_000,
    *,
    seed: int = 42,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2024-12-31",
    chunk_size: int = 100_000,
    experiment: bool = True,
) -> Iterator[Chunk]:
    """Yield the demo data chunk by chunk (pyarrow tables), ``chunk_size`` customers each.

    Chunk ``i`` uses ``np.random.default_rng([seed, i])``, so the output depends on
    ``seed``, the dates, ``customers`` and ``chunk_size`` only. The planted experiment
    (:data:`EXPERIMENT`) draws from its own ``np.random.default_rng([seed, i,
    EXPERIMENT_STREAM])`` after the base simulation: with ``experiment=False`` the tables
    are those of the base simulation, and with it only treated customers' rows after
    their assignment differ.

    Parameters
    ----------
    customers
        Number of customers in all.
    seed
        Random seed.
    start, end
        First and last day of activity (ISO dates; ``end`` is inclusive).
    chunk_size
        Customers per chunk (1 to 4,194,304).
    experiment
        Plant the experiment (an ``assignments`` table and its effects).

    Yields
    ------
    Chunk
        The next ``chunk_size`` customers' tables (the last chunk may be smaller).

    Raises
    ------
    UsageError
        When ``customers`` is below 1 or ``chunk_size`` is out of range.

    Examples
    --------
    >>> [len(c.customers) for c in iter_chunks(250, seed=1, chunk_size=100)]
    [100, 100, 50]
    """
    if customers < 1:
        raise UsageError(f"customers must be a positive number, got {customers!r}")
    if not 1 <= chunk_size <= 2**22:
        raise UsageError(f"chunk_size must be between 1 and 4,194,304, got {chunk_size!r}")
    clock = _clock(start, end)
    lut = _lookup_tables()
    offsets = {"events": 0, "orders": 0, "responses": 0, "x_events": 0, "x_orders": 0}
    for i, first in enumerate(range(0, customers, chunk_size)):
        n = min(chunk_size, customers - first)
        rng = np.random.default_rng([seed, i])
        xrng = np.random.default_rng([seed, i, EXPERIMENT_STREAM]) if experiment else None
        yield _chunk(rng, lut, clock, i, first, n, customers, offsets, xrng)


@dataclass(frozen=True)
class Demo:
    """The generated demo data in memory (pandas), with its planted truth.

    Attributes
    ----------
    customers, events, orders, responses
        The contract's four tables.
    truth
        One row per customer (see ``_truth.parquet``).
    info
        The global truth (see ``_truth.json``; the experiment's under ``"experiment"``).
    assignments
        The planted experiment's assignments (the contract's optional table), or
        ``None`` when no experiment was planted.
    """

    customers: pd.DataFrame
    events: pd.DataFrame
    orders: pd.DataFrame
    responses: pd.DataFrame
    truth: pd.DataFrame
    info: dict[str, Any]
    assignments: pd.DataFrame | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The contract tables by name (ready for :func:`cxkit.load`).

        The four core tables, and ``assignments`` when it has rows.
        """
        out = {name: getattr(self, name) for name in TABLE_NAMES}
        if self.assignments is not None and len(self.assignments):
            out["assignments"] = self.assignments
        return out


def generate(
    customers: int = 20_000,
    *,
    seed: int = 42,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2024-12-31",
    chunk_size: int = 100_000,
    experiment: bool = True,
) -> Demo:
    """Generate the demo data in memory.

    Parameters
    ----------
    customers
        Number of customers.
    seed
        Random seed; same seed and arguments give the same data.
    start, end
        First and last day of activity (ISO dates; ``end`` is inclusive).
    chunk_size
        Customers generated at a time (each chunk has its own random generator).
    experiment
        Plant the experiment (:data:`EXPERIMENT`): an ``assignments`` table and its
        effects on treated customers; ``False`` gives the base simulation alone.

    Returns
    -------
    Demo
        The tables, the per-customer truth and the global truth.

    Examples
    --------
    >>> demo = generate(300, seed=3)
    >>> demo.info["customers"], demo.truth.persona.nunique()
    (300, 5)
    """
    parts: dict[str, list[pa.Table]] = {k: [] for k in (*TABLE_NAMES, "truth", "assignments")}
    sums: dict[str, np.ndarray] = {}
    xsums: dict[str, float] = {}
    chunks = iter_chunks(
        customers, seed=seed, start=start, end=end, chunk_size=chunk_size, experiment=experiment
    )
    for chunk in chunks:
        for k in parts:
            if getattr(chunk, k) is not None:
                parts[k].append(getattr(chunk, k))
        _add_sums(sums, chunk.sums)
        _add_sums(xsums, chunk.experiment)
    frames = {k: pa.concat_tables(v).to_pandas() for k, v in parts.items() if v}
    info = truth_info(
        customers=customers, seed=seed, start=start, end=end, sums=sums, experiment=xsums or None
    )
    return Demo(**frames, info=info)


def _add_sums(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def truth_info(
    *,
    customers: int,
    seed: int,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    sums: dict[str, np.ndarray] | None = None,
    experiment: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Return the global truth written to ``_truth.json``.

    ``stage_conversion`` holds, per persona and overall, the planted (expected) rate of
    each stage step. ``purchase_to_retention`` is the mean of the buyers' ``p_retention``
    (so it needs ``sums``). ``overall`` weights the per-persona rates by the realised
    persona mix entering each step (the target a confidence interval on this data should
    cover); ``overall_population`` weights them by the planted shares.
    ``stage_counts_realised`` holds the realised counts (``retained``: buyers with at
    least one repeat order by the end, the planted experiment's extra orders included).
    ``experiment`` (only when one was planted) holds the experiment's design and
    mechanism, and what it did: per arm the realised outcomes, and
    ``effect_on_treated``, the mean over treated customers of their outcome minus the
    base simulation's outcome for them (which is what they would have done without the
    treatment), by the readout's default definitions.

    Parameters
    ----------
    customers, seed, start, end
        The arguments the data was generated with (as for :func:`generate`).
    sums
        The chunks' summed realised counts (:attr:`Chunk.sums`, added up); ``None``
        leaves out what needs them.
    experiment
        The chunks' summed experiment sums (:attr:`Chunk.experiment`, added up); ``None``
        when no experiment was planted.

    Returns
    -------
    dict
        Nested JSON-like values (numpy scalars and arrays included, which
        :func:`write_demo` converts).
    """
    clock = _clock(start, end)
    shares = _param("share")
    pc_, pp, pa_ = _param("p_consider"), _param("p_purchase"), _param("p_advocate")
    personas: dict[str, Any] = {}
    for name, p in PERSONAS.items():
        entry = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in p.items()
            if not k.endswith("mix")
        }
        entry["channel_mix"] = {
            "sessions": dict(zip(SESSION_CHANNELS, p["session_mix"], strict=True)),
            "orders": dict(zip(ORDER_CHANNELS, p["order_mix"], strict=True)),
            "consideration": dict(zip(CONSIDER_CHANNELS, p["consider_mix"], strict=True)),
            "support": dict(zip(SUPPORT_CHANNELS, p["support_mix"], strict=True)),
        }
        entry["region_mix"] = dict(zip(REGIONS, p["region_mix"], strict=True))
        entry["acquisition_mix"] = dict(zip(ACQUISITION, p["acquisition_mix"], strict=True))
        entry["plan_mix"] = dict(zip(PLANS, p["plan_mix"], strict=True))
        bg, gg = p["bgnbd"], p["gamma_gamma"]
        entry["mean_lambda_per_day"] = bg["r"] / bg["alpha"]
        entry["mean_p_dropout"] = bg["a"] / (bg["a"] + bg["b"])
        entry["mean_spend_expected"] = gg["p"] * gg["gamma"] / (gg["q"] - 1)
        personas[name] = entry

    stage: dict[str, Any] = {}
    for i, name in enumerate(PERSONA_NAMES):
        stage[name] = {
            "awareness_to_consideration": pc_[i],
            "consideration_to_purchase": pp[i],
            "purchase_to_retention": None,
            "purchase_to_advocacy": pa_[i],
        }
    w_c = shares * pc_
    w_p = w_c * pp
    # the population's expected rates (persona mix at its planted shares)
    stage["overall_population"] = {
        "awareness_to_consideration": float(w_c.sum()),
        "consideration_to_purchase": float(w_p.sum() / w_c.sum()),
        "purchase_to_retention": None,
        "purchase_to_advocacy": float((w_p * pa_).sum() / w_p.sum()),
    }
    stage["overall"] = dict(stage["overall_population"])
    realised: dict[str, Any] = {}
    if sums:
        # this data set's expected rates: planted per-persona rates weighted by the
        # realised persona mix entering each step (what a Wilson interval should cover)
        n_c, n_k, n_b = sums["customers"], sums["considered"], sums["purchased"]
        overall = stage["overall"]
        overall["awareness_to_consideration"] = float((n_c * pc_).sum() / n_c.sum())
        if n_k.sum() > 0:
            overall["consideration_to_purchase"] = float((n_k * pp).sum() / n_k.sum())
        if n_b.sum() > 0:
            overall["purchase_to_advocacy"] = float((n_b * pa_).sum() / n_b.sum())
        for i, name in enumerate([*PERSONA_NAMES, "overall"]):
            sl = slice(None) if name == "overall" else slice(i, i + 1)
            s = {k: float(np.sum(v[sl])) for k, v in sums.items() if k != "theme_counts"}
            if s["purchased"] > 0:
                stage[name]["purchase_to_retention"] = s["p_retention"] / s["purchased"]
            realised[name] = {
                "customers": int(s["customers"]),
                "considered": int(s["considered"]),
                "purchased": int(s["purchased"]),
                "retained": int(s["retained"]),
                "advocates": int(s["advocates"]),
            }
    lut = _lookup_tables()
    csat_planted = {}
    for i, name in enumerate(PERSONA_NAMES):
        row = {}
        for j, ch in enumerate(CHANNELS):
            pmf = np.diff(np.concatenate(([0.0], lut.csat_cum[i * len(CHANNELS) + j])))
            row[ch] = round(float(pmf @ np.arange(1, 6)), 4)
        csat_planted[name] = row
    info: dict[str, Any] = {
        "seed": seed,
        "customers": customers,
        "start": clock.start.date().isoformat(),
        "end": clock.end.date().isoformat(),
        "time_unit": "day",
        "personas": personas,
        "persona_shares": dict(zip(PERSONA_NAMES, shares.tolist(), strict=True)),
        "persona_ids": {name: i for i, name in enumerate(PERSONA_NAMES)},
        "global": {k: v for k, v in _GLOBAL.items()},
        "stage_conversion": stage,
        "stage_counts_realised": realised,
        "pain_point": {
            "persona": "support_heavy",
            "channel": "chat",
            "survey": "csat",
            "csat_mean_planted": PERSONAS["support_heavy"]["csat_mean_chat"],
            "csat_mean_other_channels": PERSONAS["support_heavy"]["csat_mean"],
            "csat_mean_chat_other_personas": 4.0,
            "ces_mean_planted": PERSONAS["support_heavy"]["ces_mean_chat"],
            "nps_effect": "a CSAT <= 2 on chat raises the customer's detractor probability "
            f"by {_GLOBAL['nps_detractor_bad_chat_boost']}",
        },
        "csat_mean_planted": csat_planted,
        "themes": {
            name: {"kind": t["kind"], "keywords": t["keywords"], "n_phrasings": len(t["phrasings"])}
            for name, t in THEMES.items()
        },
        "theme_shares": _theme_shares(sums),
        "theme_model": {
            "first_theme_shares": {
                cls: dict(zip(THEME_NAMES, shares_, strict=True))
                for cls, shares_ in THEME_SHARES.items()
            },
            "p_context_theme": _GLOBAL["p_context_theme"],
            "context_themes": CONTEXT_THEMES,
            "p_second_theme": _GLOBAL["p_second_theme"],
            "note": "a comment's first theme follows first_theme_shares by sentiment class, "
            "except that with p_context_theme a detractor/promoter comment speaks about its "
            "context; with p_second_theme a second theme of the same class is added. "
            "theme_shares is the realised share of comments mentioning each theme.",
        },
        "sentiment_classes": {
            "nps": {"detractor": "0-6", "passive": "7-8", "promoter": "9-10"},
            "csat": {"detractor": "1-2", "passive": "3", "promoter": "4-5"},
            "ces": {"detractor": "1-3", "passive": "4-5", "promoter": "6-7"},
        },
        "comment_probability": _GLOBAL["p_comment"],
        "truth_columns": {
            "lambda_per_day": "BG/NBD purchase rate per day (buyers only)",
            "p_dropout": "BG/NBD dropout probability after each repeat order (buyers only)",
            "dropout_at": "time of the repeat order after which the customer dropped out",
            "p_retention": "1 - exp(-lambda * days from first order to the end)",
            "expected_repeat_orders": "(1 - exp(-lambda * p * exposure_days)) / p",
            "mean_spend": "Gamma-Gamma p / nu",
            "activity_end_at": "events stop here (dropout + a short tail, or the end)",
        },
    }
    if experiment is not None:
        info["experiment"] = _experiment_info(clock, experiment)
    return info


def _experiment_info(clock: _Clock, xs: dict[str, float]) -> dict[str, Any]:
    """Return the planted experiment's part of ``_truth.json`` (see :func:`truth_info`)."""
    X = EXPERIMENT
    T = clock.horizon_days
    lo = max(T - X["assign_from_days_before_end"], float(X["min_days_after_start"]))
    hi = T - X["assign_until_days_before_end"]

    def ratio(num: float, den: float, scale: float = 1.0) -> float | None:
        return scale * num / den if den else None

    arms: dict[str, Any] = {}
    for v in X["variants"]:
        arms[v] = {
            "n": int(xs[f"{v}_n"]),
            "conversion": ratio(xs[f"{v}_conversion"], xs[f"{v}_n"]),
            "churn_n": int(xs[f"{v}_churn_n"]),
            "churn": ratio(xs[f"{v}_churn"], xs[f"{v}_churn_n"]),
            "spend": ratio(xs[f"{v}_spend"], xs[f"{v}_n"]),
            "nps_n": int(xs[f"{v}_nps_n"]),
            "nps": ratio(xs[f"{v}_nps"], xs[f"{v}_nps_n"], 100.0),
        }
    treated = X["variants"][1]
    t = arms[treated]
    return {
        "name": X["name"],
        "variants": list(X["variants"]),
        "control": X["variants"][0],
        "planned_split": dict(zip(X["variants"], X["split"], strict=True)),
        "assigned_between": [
            (clock.start + pd.Timedelta(days=lo)).isoformat(),
            (clock.start + pd.Timedelta(days=hi)).isoformat(),
        ],
        "eligibility": "customers whose first order fell on an earlier day than their "
        "assignment; every eligible customer is assigned",
        "mechanism": {
            k: X[k]
            for k in (
                "p_extra_order",
                "extra_order_within_days",
                "basket_uplift",
                "offer_days",
                "p_detractor_to_passive",
                "nps_effect_days",
            )
        },
        "definitions": {k: X[k] for k in ("conversion_days", "horizon_days", "nps_days")},
        "units": {
            "conversion": "share",
            "churn": "share",
            "spend": "currency per customer",
            "nps": "points",
        },
        "arms": arms,
        "effect_on_treated": {
            "conversion": ratio(xs["delta_conversion"], xs[f"{treated}_n"]),
            "churn": ratio(xs["delta_churn"], t["churn_n"]),
            "spend": ratio(xs["delta_spend"], xs[f"{treated}_n"]),
            "nps": ratio(xs["delta_nps"], t["nps_n"], 100.0),
        },
        "rows_changed": {
            "orders_added": int(xs["orders_added"]),
            "orders_amount_changed": int(xs["orders_changed"]),
            "events_added": int(xs["events_added"]),
            "responses_score_changed": int(xs["responses_changed"]),
        },
        "note": "effect_on_treated is what a randomised comparison of the arms estimates: "
        "the mean over treated customers of their outcome with the treatment minus their "
        "outcome in the base simulation. arms holds each arm's realised outcomes with the "
        "readout's definitions (nps: first NPS answer in the window, +1/0/-1, in points).",
    }


def _theme_shares(sums: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """Share of comments of each sentiment class that mention each theme (realised)."""
    if not sums or "theme_counts" not in sums:
        return {}
    counts = np.asarray(sums["theme_counts"], dtype=float)
    out: dict[str, Any] = {}
    for i, cls in enumerate(("detractor", "passive", "promoter")):
        n = counts[i, -1]
        out[cls] = {
            "n_comments": int(n),
            **{t: (round(counts[i, j] / n, 4) if n else None) for j, t in enumerate(THEME_NAMES)},
        }
    return out


def write_demo(
    out: str | os.PathLike[str],
    *,
    customers: int = 20_000,
    seed: int = 42,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2024-12-31",
    fmt: str = "parquet",
    chunk_size: int = 100_000,
    experiment: bool = True,
) -> Path:
    """Write the demo data set to the folder ``out`` (created if needed).

    Writes ``customers``, ``events``, ``orders`` and ``responses`` (``.parquet`` or
    ``.csv``), ``assignments`` when the planted experiment assigned anyone, plus
    ``_truth.parquet`` and ``_truth.json``. Each file is written to a temporary name and
    renamed when complete, so a reader never sees half a file.

    Parameters
    ----------
    out
        Output folder.
    customers, seed, start, end, chunk_size, experiment
        As for :func:`generate`.
    fmt
        ``"parquet"`` or ``"csv"`` for the four tables (the truth stays Parquet/JSON).

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    UsageError
        When ``fmt`` is not ``"parquet"`` or ``"csv"``, or as :func:`iter_chunks`.

    Examples
    --------
    >>> import tempfile
    >>> folder = write_demo(tempfile.mkdtemp(), customers=100, seed=1)
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['_truth.json', '_truth.parquet', 'assignments.parquet']
    """
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tables = (*TABLE_NAMES, "assignments")
    names = [*tables, "truth"]
    final = {k: folder / f"{k}.{fmt}" for k in tables}
    final["truth"] = folder / "_truth.parquet"
    tmp = {k: p.with_name(f".{p.name}.tmp-{os.getpid()}") for k, p in final.items()}
    writers: dict[str, Any] = {}
    sums: dict[str, np.ndarray] = {}
    xsums: dict[str, float] = {}
    chunks = iter_chunks(
        customers, seed=seed, start=start, end=end, chunk_size=chunk_size, experiment=experiment
    )
    try:
        for chunk in chunks:
            for k in names:
                table = getattr(chunk, k)
                if table is None or (k == "assignments" and k not in writers and not len(table)):
                    continue  # written from the first chunk that assigns anyone
                if k not in writers:
                    if fmt == "csv" and k != "truth":
                        writers[k] = pacsv.CSVWriter(str(tmp[k]), table.schema)
                    else:
                        writers[k] = pq.ParquetWriter(str(tmp[k]), table.schema, compression="zstd")
                writers[k].write_table(table)
            _add_sums(sums, chunk.sums)
            _add_sums(xsums, chunk.experiment)
        written = [k for k in names if k in writers]
        for w in writers.values():
            w.close()
        writers.clear()
        info = truth_info(
            customers=customers,
            seed=seed,
            start=start,
            end=end,
            sums=sums,
            experiment=xsums or None,
        )
        json_tmp = folder / f"._truth.json.tmp-{os.getpid()}"
        json_tmp.write_text(json.dumps(info, indent=2, default=_json_default) + "\n")
        for k in written:
            os.replace(tmp[k], final[k])
        os.replace(json_tmp, folder / "_truth.json")
        # the other format's tables from an earlier run would shadow or confuse, and so
        # would an earlier run's assignments when this one has none: remove them
        other = "csv" if fmt == "parquet" else "parquet"
        stale = [folder / f"{k}.{other}" for k in tables]
        if "assignments" not in written:
            stale.append(final["assignments"])
        for path in stale:
            if path.is_file():
                path.unlink()
    finally:
        for w in writers.values():
            w.close()
        for p in tmp.values():
            if p.exists():
                p.unlink()
    return folder


def _json_default(v: object) -> int | float | list:
    """Convert a numpy value for :func:`json.dumps`."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v).__name__)
