"""Remembered settings for pages: `recall(key, default)` and `remember(key, value)`.

Backed by `birdcore.settings` (`$BIRDCORE_HOME/app.json`). A settings file that cannot be
written (read-only home) only loses the memory: the page carries on and says so in a toast.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from birdcore import settings as app_settings


def recall(key: str, default: Any = None) -> Any:
    """The remembered value of `key` (e.g. "dataset_path", "eda.log_scale"), else `default`."""
    return app_settings.get_setting(key, default)


def remember(key: str, value: Any) -> None:
    """Store `value` under `key` for later sessions (no write when unchanged)."""
    try:
        app_settings.update_settings({key: value})
    except OSError as exc:
        st.toast(f"Could not save settings to {app_settings.settings_path()}: {exc.strerror or exc}")


def remembered(widget_key: str, setting: str, default: Any) -> Callable[[], None]:
    """Make the widget with `widget_key` start from the remembered value of `setting`; returns the
    `on_change` callback that remembers new values.

        st.toggle("Log scale", key="eda_log", on_change=ui.remembered("eda_log", "eda.log_scale", False))

    The seed happens only while the key is absent from session state (first run of a session, or
    after a page switch dropped the widget's state), so it never overrides what the user just did.
    """
    if widget_key not in st.session_state:
        st.session_state[widget_key] = recall(setting, default)

    def _save() -> None:
        remember(setting, st.session_state[widget_key])

    return _save
