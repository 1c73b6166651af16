"""Training runs: folds, datasets, the loop, run folders, and launching runs as processes."""
