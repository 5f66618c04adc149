"""Tests for cxkit.voc.plots and the display of comments: untrusted text never reaches HTML
unescaped."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import display, voc
from tests.voc.helpers import XSS, comment_frame

# --------------------------------------------------------------------------------------
# escaping: untrusted comments never reach HTML unescaped
# --------------------------------------------------------------------------------------


def test_every_display_helper_escapes_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    th = voc.themes(cxkit.load({"responses": comment_frame()}), n_themes=3, min_df=2)
    rep = voc.representative_comments(th, n=20)
    rep.loc[0, "comment"] = XSS
    frames = {
        "representative": rep,
        "theme_comments": th.comments,
        "comments": voc.comments(cxkit.load({"responses": comment_frame()})),
        "themes": th.topics,
        "sentiment": voc.comment_sentiment(th.comments),
        "labels_in_columns": pd.DataFrame({XSS: [1]}),
    }
    shown: list[str] = []
    # cxkit.display shows through the IPython display it imported
    monkeypatch.setattr(
        display,
        "display",
        lambda obj: shown.append(obj.to_html() if hasattr(obj, "to_html") else obj.data),
    )
    for name, df in frames.items():
        for text in (display.style_table(df, caption=XSS).to_html(), None):
            if text is None:
                display.show_table(df, caption=XSS)
                text = shown[-1]
            assert "<script>" not in text, name
            assert "<b>x</b>" not in text, name
        if XSS in set(df.astype(str).stack()) | set(df.columns):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in text, name
    # plain display of a DataFrame is escaped by pandas too
    assert "<script>" not in rep.to_html()
    # plots: labels pass through html.escape
    share = voc.theme_share(th)
    share.loc[0, "label"] = XSS
    figs = [
        voc.plot_theme_share(share, title=XSS),
        voc.plot_distinctive_terms(
            pd.DataFrame({"term": [XSS], "z": [1.0], "count_a": [1], "count_b": [0]}), title=XSS
        ),
        voc.plot_scores(
            pd.DataFrame(
                {
                    "channel": [XSS],
                    "n": [5],
                    "small_n": [True],
                    "nps": [1.0],
                    "nps_low": [0.0],
                    "nps_high": [2.0],
                }
            ),
            x="channel",
            title=XSS,
        ),
    ]
    for fig in figs:
        assert "<script>" not in fig.to_json()
        assert "<b>x</b>" not in fig.to_json()
