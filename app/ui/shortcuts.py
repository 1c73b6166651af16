"""Keyboard shortcuts for a page: keys that click the page's own buttons.

Streamlit has no key bindings. A one-pixel `st.iframe` runs a script that listens
for keydown on the app's document (the frame is same-origin) and clicks the button whose
container carries `st-key-<button key>` — so a shortcut does exactly what the click does,
callbacks included, and stays in sync with what the page draws. Keys typed into a text field,
or with Alt/Meta held, are left alone; Ctrl only with "z" (undo).
"""

from __future__ import annotations

import json

import streamlit as st

# Annotation page: key (KeyboardEvent.key) → button key. Digits 1–9 are added per window for the
# species keys (`species_keymap`).
ANNOTATION_KEYS: dict[str, str] = {
    "ArrowRight": "ann_next", "d": "ann_next",
    "ArrowLeft": "ann_prev", "a": "ann_prev",
    "Enter": "ann_save", "s": "ann_save",
    "0": "ann_nobird", "n": "ann_nobird",
    "u": "ann_undo", "ctrl+z": "ann_undo",
}
HELP = ("Keys: → / d next · ← / a previous · 1–9 toggle a species · s / Enter save & next ·"
        " 0 / n no bird (save empty & next) · u / Ctrl+Z undo the last save")


def species_keymap(species: list[str]) -> dict[str, str]:
    """Digit keys "1" … "9" → the button keys toggling the first nine `species` (`ann_key_<digit>`)."""
    return {str(i + 1): f"ann_key_{i + 1}" for i in range(min(len(species), 9))}


def script(keymap: dict[str, str]) -> str:
    """The listener script for `keymap` (key → button key). One listener per browser tab: each run
    replaces the previous one, so a key never fires twice."""
    return f"""<script>
(function() {{
  const doc = window.parent.document;
  doc.__birdcoreKeys = {json.dumps(keymap)};
  // A listener dies with the frame that made it (Streamlit re-creates this frame on some reruns), so
  // each run swaps in its own listener for the last one instead of adding a second.
  if (doc.__birdcoreKeyHandler) doc.removeEventListener("keydown", doc.__birdcoreKeyHandler, true);
  doc.__birdcoreKeyHandler = (e) => {{
    const t = e.target, tag = (t && t.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable)) return;
    if (e.altKey || e.metaKey) return;
    const name = e.ctrlKey ? "ctrl+" + e.key.toLowerCase() : e.key;
    const target = (doc.__birdcoreKeys || {{}})[name];
    if (!target) return;
    const button = doc.querySelector(".st-key-" + target + " button");
    if (!button || button.disabled) return;
    e.preventDefault();
    button.click();
  }};
  doc.addEventListener("keydown", doc.__birdcoreKeyHandler, true);
}})();
</script>"""


def install(keymap: dict[str, str]) -> None:
    """Put the listener for `keymap` in the page (an invisible frame)."""
    st.iframe(script(keymap), height=1)
