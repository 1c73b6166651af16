"""The CPU-budget planner (`birdcore budget`): measured figures, the extrapolation and its advice."""

from __future__ import annotations

import shutil

import pytest
from helpers.synth import make_tone_dataset

from birdcore.config.run import load_run_config
from birdcore.errors import ConfigError
from birdcore.inference.predict import PredictOptions
from birdcore.submission.budget import SAFETY, BudgetPlan, ModelTiming, plan_budget, suggestions
from birdcore.training.launcher import prepare_run, run_in_process


def _plan(models, ensemble_s, limit, audio=700.0, backend="onnx", hop=None) -> BudgetPlan:
    plan = BudgetPlan([m.source for m in models], backend, 60.0, models, ensemble_s, audio, limit, hop)
    plan.suggestions = suggestions(plan)
    return plan


def test_extrapolation_and_verdict_arithmetic():
    plan = _plan([ModelTiming("a", 3.0, 0.5)], ensemble_s=0.5, limit=90)
    assert plan.rtf == pytest.approx(120.0)  # 60 s of probe audio in 0.5 s
    assert plan.predicted_minutes == pytest.approx((3.0 + 700 * 60 / 120) / 60)
    assert plan.fits and plan.suggestions == []
    assert plan.usable_minutes == pytest.approx(90 * (1 - SAFETY))
    slow = _plan([ModelTiming("a", 3.0, 6.0)], ensemble_s=6.0, limit=90)  # 10x real time: 70 min + the load
    assert slow.predicted_minutes == pytest.approx((3.0 + 700 * 6) / 60)
    assert not _plan([ModelTiming("a", 3.0, 8.0)], ensemble_s=8.0, limit=90).fits  # 7.5x: 93 min


def test_advice_drops_the_costliest_models_first_and_names_backend_and_hop():
    models = [ModelTiming("fast", 1.0, 2.0), ModelTiming("slow", 1.0, 6.0), ModelTiming("mid", 1.0, 4.0)]
    # ensemble 12 s per 60 s probe: 700 min -> 140 min; without "slow" 70 min; limit 90 (81 usable)
    plan = _plan(models, ensemble_s=12.0, limit=90, backend="torch", hop=2.5)
    assert not plan.fits
    text = " | ".join(plan.suggestions)
    assert "drop slow:" in text and "mid" not in text.split("drop")[1].split(":")[0]
    assert "--backend onnx" in text and "--hop 5" in text
    # a limit only the fastest model alone meets: both others go
    plan = _plan(models, ensemble_s=12.0, limit=50)
    assert any(s.startswith("drop slow, mid:") for s in plan.suggestions), plan.suggestions
    # nothing fits even alone: said so, not a silent empty list
    plan = _plan(models, ensemble_s=12.0, limit=5)
    assert any("even the fastest model alone (fast)" in s for s in plan.suggestions), plan.suggestions
    assert "does NOT fit" in " ".join(plan.lines())


@pytest.mark.slow
def test_measures_a_real_ensemble(tmp_path):
    root = make_tone_dataset(tmp_path / "data", n_species=3, per_species=6, seconds=3.0, soundscapes=1)
    cfg = load_run_config("demo-cpu", ["train.epochs=1", "train.num_workers=0", "data.clip_seconds=5.0",
                                       "train.batch_size=6"])
    run = prepare_run(root, cfg, tmp_path / "runs")
    assert run_in_process(run)["state"] == "finished"
    twin = tmp_path / "twin"
    shutil.copytree(run.path, twin)
    with pytest.raises(ConfigError):
        plan_budget([], 700, 90)
    plan = plan_budget([run.path, twin], audio_minutes=700, limit_minutes=10_000, probe_seconds=30)
    assert plan.probe_audio_s == pytest.approx(30.0, abs=0.1)
    assert [m.source for m in plan.models] == [str(run.path), str(twin)]
    assert all(m.score_s > 0 and m.load_s > 0 for m in plan.models)
    # the ensemble decodes once and runs both models: slower than either alone, faster than both plus a decode each
    assert plan.ensemble_s > 0.5 * max(m.score_s for m in plan.models)
    assert plan.fits and plan.rtf > 1
    tight = plan_budget([run.path], audio_minutes=700, limit_minutes=0.01, probe_seconds=10,
                        options=PredictOptions(hop_s=2.5))
    assert not tight.fits and any("--hop" in s for s in tight.suggestions)
    # the command: exit 0 when it fits, 1 when not, 2 for a bad option (argparse, naming the flag)
    from birdcore.cli import main as cli

    assert cli(["budget", "--model", str(run.path), "--limit-minutes", "10000", "--probe-seconds", "10"]) == 0
    assert cli(["budget", "--model", str(run.path), "--limit-minutes", "0.01", "--probe-seconds", "10",
                "--data", str(root)]) == 1
    with pytest.raises(SystemExit) as exc:
        cli(["budget", "--model", str(run.path), "--audio-minutes", "0"])
    assert exc.value.code == 2
