"""The competition's output: the submission table, `birdcore submit`, reports, the Kaggle bundle.

Public API: `table` (`build_submission`, `validate_submission`, `write_submission`,
`evaluate_submission`), `submit` (`make_submission`, `soundscapes_for_test`, `resolve_thresholds`,
`model_thresholds`), `report` (`submission_bytes`, `positive_rates`, `read_submission_bytes`,
`check_predictions`) and `kaggle_bundle` (`write_kaggle_bundle`; `kaggle_infer_template.py` is copied, never imported).
"""
