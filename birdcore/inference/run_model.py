"""Load a run folder's trained network (best or last checkpoint) ready to score."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from birdcore.errors import ModelError, RunError
from birdcore.inference.base import ScorerInfo


def load_run_model(run_path: str | Path, device: str = "auto", checkpoint: str = "best", threads: int | None = None):
    """(model in eval mode on its device, the run's RunConfig, ScorerInfo, torch.device).

    RunError when the run has no checkpoint yet; ModelError when the checkpoint's classes differ
    from the run's config. Weights come only from the checkpoint (no pretrained download).
    """
    import torch

    from birdcore.models import build_model, resolve_device
    from birdcore.training.checkpoint import load_checkpoint
    from birdcore.training.runs import open_run

    run = open_run(run_path)
    cfg, extra = run.read_config()
    classes = list(extra.get("classes") or [])
    ck_path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not ck_path.exists():
        raise RunError(f"{ck_path}: no checkpoint yet — has the run finished an epoch?")
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    ck = load_checkpoint(ck_path, map_location="cpu")
    if ck.get("classes") and list(ck["classes"]) != classes:
        raise ModelError(f"{ck_path}: checkpoint classes differ from {run.config_path}")
    model = build_model(replace(cfg, model=replace(cfg.model, pretrained=False)), len(classes))
    model.load_state_dict(ck["model"])
    info = ScorerInfo(run.path, classes, cfg.sample_rate, cfg.data.clip_seconds, cfg.model.inference_prob,
                      "torch", cfg.denoise)
    return model.to(dev).eval(), cfg, info, dev
