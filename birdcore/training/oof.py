"""The out-of-fold predictions table every model family writes (the threshold tuner reads it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path
from birdcore.training.data import RunData
from birdcore.training.runs import RunFolder


def write_oof(run: RunFolder, data: RunData, rows: np.ndarray, probs: np.ndarray, targets: np.ndarray,
              epoch: int) -> None:
    """Out-of-fold table: filename, epoch, `p:<code>` probabilities and `t:<code>` 0/1 targets."""
    cols = {"filename": [data.filenames[r] for r in rows], "epoch": epoch}
    cols.update({f"p:{c}": probs[:, k] for k, c in enumerate(data.classes)})
    cols.update({f"t:{c}": targets[:, k].astype(np.int8) for k, c in enumerate(data.classes)})
    df = pd.DataFrame(cols)
    with atomic_path(run.oof_path, suffix=".parquet") as tmp:
        df.to_parquet(tmp, index=False)
