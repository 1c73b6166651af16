"""Render user-input errors as message boxes, never as tracebacks.

`BirdcoreError` (bad dataset, config, audio ...) and `OSError` (unreadable file, permission
denied) come from what the user pointed the app at: the message already names the file and the
fix, so it is shown as is. Any other exception is a bug and keeps Streamlit's traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from birdcore.errors import BirdcoreError

USER_ERRORS = (BirdcoreError, OSError)


def show_error(exc: BaseException) -> None:
    """Show `exc` as an st.error box with its message (OSError: "<file>: <reason>")."""
    if isinstance(exc, OSError) and not isinstance(exc, BirdcoreError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    st.error(text, icon=":material/error:")


@contextmanager
def error_box(stop: bool = False) -> Iterator[None]:
    """Run the block; a user-input error inside becomes an st.error (then st.stop() if `stop`)."""
    try:
        yield
    except USER_ERRORS as exc:
        show_error(exc)
        if stop:
            st.stop()
