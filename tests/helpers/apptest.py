"""Shared AppTest helpers for the app page tests."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def charts_with_key(at: AppTest, key: str) -> list:
    """The st.plotly_chart elements drawn with `key=key` (Streamlit suffixes the element id with it)."""
    return [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]


def chart(at: AppTest, key: str) -> dict:
    """The Plotly figure (as JSON) drawn with st.plotly_chart(..., key=key); fails when absent."""
    found = charts_with_key(at, key)
    assert found, f"no chart {key!r}; have {[c.proto.id.rsplit('-', 1)[-1] for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)
