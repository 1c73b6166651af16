"""A submission as the app shows and hands it over: its exact bytes, positive rates per bird,
an uploaded submission read back for validation, and a check that every soundscape was scored."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd

from birdcore.errors import SubmissionError, brief
from birdcore.inference.predict import PredictResult
from birdcore.submission.table import write_submission


def submission_bytes(sub: pd.DataFrame, test_df: pd.DataFrame) -> bytes:
    """The exact bytes `write_submission` writes for `sub` (validated first: SubmissionError)."""
    with tempfile.TemporaryDirectory(prefix="birdcore-sub-") as tmp:
        out = write_submission(Path(tmp) / "submission.csv", sub, test_df)
        return out.read_bytes()


def positive_rates(sub: pd.DataFrame, test_df: pd.DataFrame, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per bird of test.csv: rows, positives (target True), rate = positives / rows, most first; with
    `labels` (row_id,target ground truth) also `labelled_rate`, the share truly present (NaN if unlabelled)."""
    ids = test_df["row_id"].astype(str)
    df = pd.DataFrame({"species": test_df["bird"].astype(str).to_numpy(),
                       "target": sub.set_index("row_id").loc[ids, "target"].astype(bool).to_numpy()})
    if labels is not None:
        df["truth"] = ids.map(dict(zip(labels["row_id"].astype(str), labels["target"].astype(float)))).to_numpy()
    g = df.groupby("species", sort=True).agg(rows=("target", "size"), positives=("target", "sum"),
                                             **({"labelled_rate": ("truth", "mean")} if labels is not None else {}))
    g = g.reset_index()
    g.insert(3, "rate", g["positives"] / g["rows"])
    return g.sort_values(["rate", "species"], ascending=[False, True], kind="stable").reset_index(drop=True)


def read_submission_bytes(data: bytes, where: str = "submission.csv") -> pd.DataFrame:
    """A submission CSV (an upload) as a table for `validate_submission`: exactly "True"/"False"
    become bools; anything else (1, "yes", blanks) stays text so the validator names it."""
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{where}: cannot parse as CSV ({brief(exc)})") from None
    if "target" in df.columns:
        mapped = df["target"].map({"True": True, "False": False})
        df["target"] = mapped.where(mapped.notna(), df["target"]) if mapped.isna().any() else mapped.astype(bool)
    return df


def check_predictions(result: PredictResult) -> None:
    """SubmissionError when a soundscape could not be read (a submission needs every window)."""
    if result.skipped:
        path, err = result.skipped[0]
        raise SubmissionError(f"{len(result.skipped)} soundscape(s) could not be read, e.g. {err}")
