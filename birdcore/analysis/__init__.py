"""What the app's pages and reports compute from datasets and runs (no Streamlit here).

Public API, by module: `eda` (species / rating / map / duration tables, `EdaFilter`), `run_compare`
(`runs_table`, `rank_runs`, `metric_curves`, `MetricsTail`, `log_tail`, `epoch_progress`, `config_diff`,
`delete_run`), `inspection` (`window_grid`, `top_species`, `detections`, `truth_matrix`, `clip_labels`,
`spectrogram`, `window_audio`) and
`cross_validation` (`cross_validate`, `birdnet_scores`, `CvResult`) and `selftrain_view` (self-training
families: `rounds_table`, `passed_per_species`, `labels_beside_scores`). Top layer of the engine:
it may import every other package except `cli`.
"""
