"""BirdNET's spectrogram front end outside TFLite (`birdnet_frontend`): same results, checked at load.

Skipped when the BirdNET extra is not installed; the real-audio test skips when ../shared is absent.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from helpers.birdnet import require_birdnet

require_birdnet()  # before the imports that need the extra: a clear skip reason when it is absent

from birdcore.errors import ConfigError  # noqa: E402
from birdcore.pretrained import birdnet as bn  # noqa: E402
from birdcore.pretrained import birdnet_frontend as bf  # noqa: E402


pytestmark = pytest.mark.slow


# `birdnet_model` (conftest) is the default front_end="auto": the fast split model, checked against this one
@pytest.fixture(scope="module")
def graph():
    return bn.load_birdnet(num_threads=2, front_end="graph")


@pytest.fixture(scope="module")
def split():
    from ai_edge_litert.interpreter import Interpreter

    parsed, out_idx, emb_idx = bn.expose_embedding(bn.model_files()[0].read_bytes())
    got = bf.split_model(parsed, [out_idx, emb_idx])
    assert got is not None
    return got, Interpreter


def _bird_like(seconds: float, seed: int) -> np.ndarray:
    """Noise floor + chirps + harmonic whistles at 48 kHz: spectrally rich, like a recording."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * bn.SAMPLE_RATE)) / bn.SAMPLE_RATE
    y = 0.01 * rng.standard_normal(t.size)
    for start in rng.uniform(0, seconds - 1, 6):
        on = (t >= start) & (t < start + 0.4)
        f0 = rng.uniform(2000, 6000)
        y[on] += 0.3 * np.sin(2 * np.pi * (f0 + 3000 * (t[on] - start)) * t[on])
    return y.astype(np.float32)


def test_auto_uses_the_split_model_and_its_load_check_passes(birdnet_model, graph):
    assert birdnet_model.front_end == "torch" and birdnet_model.front_end_delta is not None
    assert birdnet_model.front_end_delta <= bf.PROBE_TOLERANCE
    assert graph.front_end == "graph" and graph.front_end_delta is None
    assert birdnet_model.num_classes == graph.num_classes == 6522
    assert birdnet_model.embedding_dim == graph.embedding_dim == 1024
    with pytest.raises(ConfigError, match="front_end"):
        bn.load_birdnet(front_end="fast-please")


def test_same_outputs_as_the_whole_graph(birdnet_model, graph):
    y = _bird_like(12.0, seed=1)
    _, starts, _ = bn.window_plan(len(y))
    chunks = np.stack([np.pad(y[s:s + bn.CHUNK_SAMPLES], (0, max(0, s + bn.CHUNK_SAMPLES - len(y)))) for s in starts])
    chunks[1] = 0.0  # digital silence: the normalisation's epsilon path
    lf, ef = birdnet_model.run_chunks(chunks)
    lg, eg = graph.run_chunks(chunks)
    assert np.abs(bn.sigmoid(lf) - bn.sigmoid(lg)).max() < 1e-4
    # Logits of pure synthetic tones move by up to ~0.01 (the graph's own complex64 FFT rounding,
    # amplified by the power law); a wrong front end moves them by whole units.
    assert np.abs(lf - lg).max() < 5e-2
    np.testing.assert_allclose(ef, eg, atol=1e-3 * np.abs(eg).max())
    # the top classes of each chunk are the same
    assert all(set(np.argsort(-a)[:5]) == set(np.argsort(-b)[:5]) for a, b in zip(lf, lg))


def test_results_do_not_depend_on_the_callers_torch_threads(birdnet_model):
    import torch

    x = _bird_like(3.0, seed=4)[None, :]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = birdnet_model.run_chunks(x)
        torch.set_num_threads(2)
        two = birdnet_model.run_chunks(x)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_same_window_scores_on_a_real_recording(birdnet_model, graph, real_audio_dir):
    path = real_audio_dir / "opensoundscape_1min.wav"
    if not path.exists():
        pytest.skip(f"{path} not found")
    _, ef = bn.embed_windows([path], model=birdnet_model)
    _, eg = bn.embed_windows([path], model=graph)
    assert ef.shape == eg.shape == (12, 1024)
    assert np.abs(ef - eg).max() < 1e-3


def test_a_wrong_front_end_fails_the_load_check(split):
    got, interpreter = split
    assert bf.check_front_end(got, interpreter, bn.CHUNK_SAMPLES, bn.SAMPLE_RATE) <= bf.PROBE_TOLERANCE
    s0 = got.front_end.stfts[0]
    wrong = [
        dataclasses.replace(got.front_end, stfts=(dataclasses.replace(s0, step=s0.step + 2), *got.front_end.stfts[1:])),
        dataclasses.replace(got.front_end, stfts=(dataclasses.replace(s0, exponent=s0.exponent * 1.1), *got.front_end.stfts[1:])),
        dataclasses.replace(got.front_end, stfts=tuple(reversed(got.front_end.stfts))),
        dataclasses.replace(got.front_end, offset=got.front_end.offset[::-1].copy()),
    ]
    for front_end in wrong:
        assert bf.check_front_end(dataclasses.replace(got, front_end=front_end), interpreter,
                                  bn.CHUNK_SAMPLES, bn.SAMPLE_RATE) > 10 * bf.PROBE_TOLERANCE


def test_falls_back_to_the_whole_graph_when_the_check_fails(monkeypatch):
    monkeypatch.setattr(bn, "PROBE_TOLERANCE", 0.0)
    model = bn.BirdNET(*bn.model_files(), num_threads=1)
    assert model.front_end == "graph" and model.front_end_delta > 0
    logits, emb = model.run_chunks(_bird_like(3.0, seed=2))
    assert logits.shape == (1, 6522) and emb.shape == (1, 1024)


def test_a_graph_of_another_shape_is_not_split():
    parsed, out_idx, emb_idx = bn.expose_embedding(bn.model_files()[0].read_bytes())
    from ai_edge_litert import schema_py_generated as schema

    rfft = [i for i, op in enumerate(parsed.subgraphs[0].operators)
            if bf._op_name(parsed, op, schema) == "RFFT2D"]
    assert len(rfft) == 2
    ops = parsed.subgraphs[0].operators
    parsed.subgraphs[0].operators = [op for i, op in enumerate(ops) if i != rfft[0]]  # an op the walk expects is gone
    assert bf.split_model(parsed, [out_idx, emb_idx]) is None
    parsed.subgraphs[0].operators = [op for op in ops if bf._op_name(parsed, op, schema) != "CONV_2D"]
    assert bf.split_model(parsed, [out_idx, emb_idx]) is None
