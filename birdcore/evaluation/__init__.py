"""Scores and decisions: metrics, thresholds, threshold curves.

Public API: `metrics` (`micro_f1`, `macro_f1`, `birdclef2022_score`, `padded_cmap`,
`macro_roc_auc`, `compute_all`, `per_class_report`), `thresholds` (`Thresholds`, `THRESHOLDS_FILE`,
`class_thresholds` / `threshold_vector` — the one rule "a class's threshold, else the global one",
`tune_thresholds`, `load_thresholds`, `save_thresholds`, `apply_thresholds`, `check_thresholds_cover` /
`uncovered_classes` — a file made for other classes is refused or warned about, never applied silently) and `curves`
(`read_oof`, `threshold_curve`, `pr_curve`, `tune_run_thresholds`).
"""
