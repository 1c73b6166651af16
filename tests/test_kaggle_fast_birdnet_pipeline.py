"""BirdNET throughput plumbing: each 3-s chunk is scored once, and the overlapped front end / CNN
pipeline (`BirdNET.run_batches`) returns exactly what running the batches one by one returns."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.birdnet import require_birdnet

require_birdnet()  # before the imports that need the extra: a clear skip reason when it is absent

from birdcore.errors import AudioError  # noqa: E402
from birdcore.pretrained import birdnet as bn  # noqa: E402


SR = bn.SAMPLE_RATE


@pytest.mark.parametrize("seconds", [0.5, 3.0, 7.2, 21.0, 60.0, 60.004, 61.6])
@pytest.mark.parametrize("hop_s", [1.0, 1.5, 3.0])
def test_window_plan_scores_each_chunk_once(seconds, hop_s):
    n_windows, starts, owner = bn.window_plan(int(seconds * SR), hop_s=hop_s)
    assert len(np.unique(starts)) == len(starts)  # no 3-s chunk is computed twice
    assert np.all(np.diff(starts) > 0) and set(owner) == set(range(n_windows))
    # every chunk lies inside its own 5-s window: windows tile the recording, so none is shared
    assert np.all(starts >= owner * 5 * SR) and np.all(starts + bn.CHUNK_SAMPLES <= (owner + 1) * 5 * SR)


@pytest.mark.slow
def test_a_minute_costs_36_chunk_evaluations(birdnet_model, monkeypatch):
    y = (0.05 * np.random.default_rng(0).standard_normal(60 * SR)).astype(np.float32)
    seen = []
    invoke = birdnet_model._invoke
    monkeypatch.setattr(birdnet_model, "_invoke", lambda part: seen.append(len(part)) or invoke(part))
    index, mat = bn.embed_windows([y], SR, model=birdnet_model)
    assert len(index) == 12 and sum(seen) == 36 and max(seen) <= bn.DEFAULT_BATCH


@pytest.fixture(params=["in turn", "overlapped"])
def cores(request, birdnet_model, monkeypatch):
    """Both schedules whatever this machine has: with a core to spare the front end overlaps the CNN."""
    spare = 1 if request.param == "overlapped" else 0
    monkeypatch.setattr(bn.os, "cpu_count", lambda: birdnet_model.num_threads + spare)
    assert birdnet_model.overlap == (request.param == "overlapped")
    return request.param


@pytest.mark.slow
def test_pipelined_batches_equal_batches_run_alone(birdnet_model, cores):
    rng = np.random.default_rng(1)
    t = np.arange(bn.CHUNK_SAMPLES) / SR
    chunks = (0.05 * rng.standard_normal((7, bn.CHUNK_SAMPLES))
              + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    batches = [(chunks[:3], "a"), (chunks[3:6], "b"), (chunks[6:], "c")]  # the last one re-allocates
    piped = list(birdnet_model.run_batches(iter(batches)))
    assert [tag for _, tag in piped] == ["a", "b", "c"]
    for ((logits, emb), _), (x, _) in zip(piped, batches):
        front = birdnet_model._front(x, threads=birdnet_model.front_end_threads)
        alone_logits, alone_emb = birdnet_model._invoke(front)
        np.testing.assert_array_equal(logits, alone_logits)
        np.testing.assert_array_equal(emb, alone_emb)
    # and run_chunks (pipelined over its own batches) agrees with one batch of everything
    np.testing.assert_array_equal(birdnet_model.run_chunks(chunks, batch_size=3)[1],
                                  birdnet_model.run_chunks(chunks, batch_size=7)[1])


def test_an_error_while_preparing_a_batch_reaches_the_caller(birdnet_model, cores, tmp_path):
    good = (0.05 * np.random.default_rng(2).standard_normal(6 * SR)).astype(np.float32)
    bad = tmp_path / "corrupt.ogg"
    bad.write_bytes(b"OggS" + bytes(300))
    with pytest.raises(AudioError):
        bn.embed_windows([good, bad], SR, model=birdnet_model, batch_size=2)  # decoded on the worker thread
