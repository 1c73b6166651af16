"""Training runs: data selection, folds, the loop, run folders, and launching runs as processes.

Public API: `launcher` (`prepare_run`, `run_in_process`, `launch_run`, `stop_run`, `run_config`),
`runs` (`RunFolder`, `open_run`, `list_runs`, `create_run`), `folds` (`assign_folds`,
`group_keys`, `validation_split`), `loop` (`train`, the CNN family), `embedding_head`
(`train_embedding_head`, the `birdnet_head` family), `losses`, `data` (`select_run_data`,
`RunData`), `run_lock` (`hold`, `require_free`, `current_owner`: one writer per run folder),
`audio_check` (unreadable recordings skipped; a class left with none refused), `checkpoint` and `oof`
(`write_oof`).
"""
