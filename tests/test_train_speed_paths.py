"""The CPU training fast paths (issue 17 item 5) compute what the plain paths compute.

Chunked mel front end, RAM-preloaded audio, cached validation mel images, channels-last memory
format and the thread choice: each is checked against the path it replaces, on small inputs.
Timings live in benchmarks/bench_train.py and bench_pipeline.py, never here.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from birdcore.audio.io import load_audio
from birdcore.config.features import MelConfig
from birdcore.config.run import load_run_config, preset
from birdcore.errors import ConfigError
from birdcore.features import mel_frontend
from birdcore.features.mel_frontend import MelFrontend
from birdcore.training.clips import preload_audio
from birdcore.training.loop import _evaluate, _ValCache, train_threads

SR = 32000


def _noise_tone(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (1000 + 500 * seed) * t)).astype(np.float32)


def test_chunked_cpu_mel_equals_the_whole_batch_at_once(monkeypatch):
    fe = MelFrontend(MelConfig(n_mels=64, n_fft=1024, hop_length=640)).eval()
    wave = torch.from_numpy(np.stack([_noise_tone(2.0, i) for i in range(5)]))
    with torch.inference_mode():
        whole = fe._power_mel_block(wave)
        # 1 frame-row per piece: every clip is computed on its own
        monkeypatch.setattr(mel_frontend, "_CPU_CHUNK_BYTES", 1)
        chunked = fe.power_mel(wave)
        monkeypatch.setattr(mel_frontend, "_CPU_CHUNK_BYTES", 8 << 20)
        big = fe.power_mel(wave)
    assert chunked.shape == whole.shape == (5, 64, fe.num_frames(2 * SR))
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=0) and torch.equal(big, whole)


def test_in_place_block_projection_equals_the_dense_filterbank():
    fe = MelFrontend(MelConfig()).eval()
    wave = torch.from_numpy(_noise_tone(1.0, 3))[None]
    with torch.inference_mode():
        spec = torch.fft.rfft(torch.nn.functional.pad(wave, (1024, 1024)).unfold(-1, 2048, 512) * fe.window, dim=-1)
        dense = (spec.abs() ** 2) @ fe.fb
        assert torch.allclose(fe.power_mel(wave), dense.transpose(1, 2), rtol=1e-4, atol=1e-6)


def test_preloaded_audio_reads_what_decoding_reads(tmp_path):
    paths = []
    for i, secs in enumerate((3.0, 7.5)):
        p = tmp_path / f"r{i}.ogg"
        sf.write(p, _noise_tone(secs, i), SR, format="OGG", subtype="VORBIS")
        paths.append(str(p))
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(b"OggS not really")
    ram = preload_audio(paths + [paths[0], str(broken)], SR, budget_mb=64)
    assert sorted(ram) == sorted(paths)  # duplicates once; an undecodable file is left to the loader
    for p in paths:
        src = ram[p]
        assert src.duration == pytest.approx(load_audio(p, sr=SR).size / SR)
        for off, dur in ((0.0, 2.0), (1.25, 5.0), (0.5, None)):
            assert np.array_equal(src.read(off, dur), load_audio(p, sr=SR, offset=off, duration=dur))
        a = src.read(0.0, 1.0)
        a[:] = 0  # a read is a copy: augmentations write their input
        assert not np.array_equal(src.read(0.0, 1.0), a)
    assert preload_audio(paths, SR, budget_mb=0.5) == {}  # 10.5 s of float32 at 32 kHz is ~1.3 MB


class _TinyNet(torch.nn.Module):
    """The BirdModel interface `_evaluate` uses: `frontend`, `forward(x, from_mel)`, `inference_prob`."""

    inference_prob = "clip"

    def __init__(self) -> None:
        super().__init__()
        self.frontend = MelFrontend(MelConfig(n_mels=32, n_fft=512, hop_length=320, fmax=8000.0))
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, from_mel: bool = False):
        m = x if from_mel else self.frontend(x)
        frame = self.conv(m).mean(2)  # (B, 4, T)
        return frame.mean(-1), frame


def test_cached_validation_equals_recomputing_and_respects_its_limit():
    torch.manual_seed(0)
    net = _TinyNet()
    rng = np.random.default_rng(0)
    batches = [(torch.from_numpy(np.stack([_noise_tone(1.0, k) for k in range(b, b + 3)])),
                torch.from_numpy((rng.random((3, 4)) > 0.5).astype(np.float32)),
                torch.tensor([1.0, -1.0, 1.0])) for b in (0, 3)]
    loss = torch.nn.BCEWithLogitsLoss()
    dev = torch.device("cpu")

    plain = _evaluate(net, batches, loss, dev, False)
    cache = _ValCache(64 << 20)
    first = _evaluate(net, batches, loss, dev, False, cache, channels_last=True)
    assert cache.batches is not None and len(cache.batches) == 2
    second = _evaluate(net, iter(()), loss, dev, False, cache, channels_last=True)  # the loader is not read
    for a, b, c in zip(plain, first, second):
        assert np.allclose(a, b, atol=1e-6) and np.allclose(b, c, atol=1e-6)
    assert plain[3].tolist() == [True, False, True] * 2  # decode failures stay masked
    # direct model(wave) agrees with the split front end
    with torch.inference_mode():
        direct = torch.sigmoid(net.eval()(batches[0][0])[0]).numpy()
    assert np.allclose(plain[0][:3], direct, atol=1e-6)

    small = _ValCache(16)
    _evaluate(net, batches, loss, dev, False, small)
    assert small.batches is None and small.full


def test_channels_last_network_matches_contiguous():
    cfg = load_run_config("demo-cpu", ["model.pretrained=false", 'model.backbone="resnet10t"'])
    from birdcore.models import build_model

    torch.manual_seed(0)
    model = build_model(cfg, 3).eval()
    x = torch.randn(2, 3, cfg.mel.n_mels, 60)
    with torch.inference_mode():
        ref = model(x, from_mel=True)[0]
        model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last), from_mel=True)[0]
    assert torch.allclose(ref, cl, rtol=1e-4, atol=1e-5)


def test_training_threads_leave_cores_to_the_loader(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert train_threads(0, 1, "cpu") == 1          # 2 cores, 1 worker: the step gets the other core
    assert train_threads(0, 0, "cpu") == 2
    assert train_threads(0, 4, "cpu") == 1          # never 0
    assert train_threads(3, 1, "cpu") == 3          # asked for: as asked
    assert train_threads(0, 1, "cuda") == 0         # GPUs: torch's default untouched
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert train_threads(0, 3, "cpu", world=2) == 5


def test_speed_fields_are_validated_and_demo_cpu_preloads():
    assert preset("demo-cpu").train.preload_audio_mb > 0
    with pytest.raises(ConfigError, match="preload_audio_mb"):
        load_run_config("demo-cpu", ["train.preload_audio_mb=-1"])
    with pytest.raises(ConfigError, match="torch_threads"):
        load_run_config("demo-cpu", ["train.torch_threads=-2"])


@pytest.mark.parametrize("mode", ["repeat", "deltas"])
def test_augmenting_one_channel_then_copying_equals_augmenting_the_copies(mode):
    from birdcore.training.clips import BatchAugment
    from birdcore.training.loop import model_input

    cfg = load_run_config("demo-cpu", [f'mel.channel_mode="{mode}"', "augment.freq_mask.p=1.0",
                                       "augment.time_mask.p=1.0", 'augment.mix_on="mel"', "augment.mixup.p=0.5"])
    fe, aug = MelFrontend(cfg.mel), BatchAugment(cfg, seed=3)
    wave = torch.from_numpy(np.stack([_noise_tone(1.0, i) for i in range(4)]))
    target, sw = torch.eye(4), torch.ones(4)
    with torch.inference_mode():
        ref = aug.after_frontend(fe(wave), target, sw, 5)
        got = model_input(fe, aug, wave, target, sw, 5, channels_last=True)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(ref, got):
        assert torch.allclose(a, b, atol=1e-6)


def test_one_state_save_per_chain_gives_the_same_clips_and_restores_global_randomness():
    import random

    from birdcore.augment.pipeline import WaveformPipeline
    from birdcore.augment.waveform import global_seed, keep_global_state
    from birdcore.config.augment import AugmentConfig

    from birdcore.config.base import from_dict

    cfg = from_dict(AugmentConfig, {"gaussian_noise": {"p": 1.0}, "color_noise": {"p": 1.0}, "gain": {"p": 1.0}})
    pipe = WaveformPipeline(cfg, SR)
    y = _noise_tone(1.0, 0)
    random.seed(5)
    np.random.seed(5)
    before = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    out, fired = pipe(y, 11)
    assert (random.random(), np.random.random()) == before  # the chain left the global states alone
    # the same chain with a save/restore per transform (no outer block): identical clip and reports
    per_call = y
    rng = np.random.default_rng(11)
    for t in pipe.transforms:
        per_call, _ = t(per_call, SR, rng)
    assert np.array_equal(out, per_call) and [f.name for f in fired] == ["gaussian_noise", "color_noise", "gain"]
    with keep_global_state():
        with global_seed(1):
            a = np.random.random()
        with global_seed(1):
            assert np.random.random() == a
