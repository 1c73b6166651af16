"""Human labels of recording windows.

Public API: `store` (`read_annotations`, `save_window(s)` — species of a range, optionally with a
frequency band (low_hz, high_hz), `window_species` / `window_bands`, `raven_table` / `raven_text`,
`read_audacity_labels`, `annotations_to_labels`, `overlaps_enough` — the presence rule, `raven_tables` /
`raven_zip` — one Raven selection table per sound file, Low/High Freq = each label's band else a
default, `remove_window` — undo) and `queue`
(`uncertain_windows`: which windows to label next; `context_span`: the neighbours shown around one).
"""
