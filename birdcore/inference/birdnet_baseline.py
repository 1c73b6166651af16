"""BirdNET V2.4's own scores as a model (no training): the one path every command and page uses.

BirdNET reads each recording at its native 48 kHz (decoded from the file, not from a 32-kHz copy),
scores each 5-s window as the max over its 3-s chunks (`pretrained.birdnet.window_plan`), and
maps its labels to eBird codes through the taxonomy. Species BirdNET lacks get `fill_missing`
(NaN = no opinion for display; 0.0 for a submission). Unreadable files are skipped and listed,
as `inference.predict.predict_files` does for trained models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from birdcore.audio.io import audio_info
from birdcore.audio.windows import WINDOW_S
from birdcore.inference.predict import PredictResult


def predict_birdnet(paths: Sequence[str | os.PathLike], classes: Sequence[str] | None, taxonomy_csv: Any, *,
                    window_s: float = WINDOW_S, fill_missing: float = float("nan"), model: Any = None,
                    threads: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """Window probabilities of BirdNET for `paths`: table file_id, end_time, <classes>.

    `classes` None = every eBird code BirdNET maps to. `model`: a loaded BirdNET (loaded here when
    None). Files whose header cannot be read are listed in `.skipped` (path, message).
    """
    from birdcore.pretrained import birdnet as bn

    ok, skipped = [], []
    for p in paths:  # bn.predict_files stops at the first bad file; check headers first
        try:
            audio_info(p)
            ok.append(Path(p))
        except Exception as exc:  # noqa: BLE001 - reported per file like predict_files does
            skipped.append((str(p), str(exc)))
    model = model or bn.load_birdnet(threads or 2)
    table = bn.predict_files(ok, classes=None if classes is None else list(classes), taxonomy_csv=taxonomy_csv,
                             window_s=window_s, fill_missing=fill_missing, model=model, progress=progress)
    cols = [c for c in table.columns if c not in ("file_id", "end_time")]
    return PredictResult(table=table, skipped=skipped, classes=cols)
