"""`MelFrontend`: waveforms (B, T) → normalised log-mel images (B, in_chans, n_mels, frames).

One `torch.nn.Module` used by training *and* inference (the model wraps it as the first stage), so
both see identical features. It has no trainable parameters; its buffers (window, mel filters) are
derived from `MelConfig` and registered with `persistent=False`, so checkpoints do not carry them
and a checkpoint loads into a frontend rebuilt from the run's config.

Computation (matches `librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels, fmin, fmax,
power=2)` followed by `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)`, librosa ≥ 0.10
defaults: periodic Hann window, `center=True` with zero padding, Slaney mel scale and Slaney
area normalisation; measured max |ΔdB| ≤ 0.0007 dB on the real test clips, tests assert < 0.01):

1. zero-pad n_fft/2 on both sides, cut frames with `unfold` (frames = 1 + T // hop);
2. window × frame → `torch.fft.rfft` → power |X|²;
3. mel = power @ filterbank (the filterbank is interleaved re/im so the product reads the
   `view_as_real` spectrum directly, skipping a separate |X|² reduction pass; computed as ~10
   dense blocks covering the band of non-zero weights, exact up to float summation order);
4. dB = 10·log10(max(mel, 1e-10)) (ref = 1.0: absolute level), floored per image at max − top_db;
5. normalise ("db80": (dB + 80) / 80, or "minmax" per image) and build 1 or 3 channels.

Why unfold + rfft rather than `torch.stft` or a conv1d with a windowed-DFT kernel (measured on
this shared 2-core CPU, interleaved runs, best of 5, batch of 32 five-second clips, linear mel
power; absolute figures roughly double under the other users' load): unfold+rfft 220–380 ms,
`torch.stft` 300–480 ms (same FFT, slower framing and complex handling), conv1d DFT 510–1530 ms
(O(n_fft²) per frame). It also exports: the dynamo exporter (`torch.onnx.export(...,
dynamo=True)`) maps it to ONNX `DFT` with dynamic batch and length; ONNX Runtime agrees to ~1e-6
relative and runs it faster than the conv1d graph (546 vs 912 ms for 12 windows), though slower
than torch itself — a CPU inference path may compute the mel in torch and run only the backbone
in ONNX Runtime. The legacy TorchScript exporter cannot export `unfold` with a dynamic length:
use `dynamo=True` (see `birdcore.inference.onnx_graph.export_onnx`). The whole front end (with the block-sparse projection)
ran 32 five-second clips at 227 clips/s on 2 threads and 161 clips/s on one (lightly loaded).

On CPU a batch is computed a few clips at a time (`_CPU_CHUNK_BYTES` of frames per piece):
the frame, spectrum and power tensors of a whole batch (~80 MB each for 32 × 5 s at n_fft 2048)
stream through memory several times, while a piece of ~2–4 clips stays in cache. Measured on the
shared 2-core CPU, one thread, 32 × 5 s, n_fft 2048, 128 mels: power_mel 172 → 102–110 ms
(identical values). Each block's product is added into its mel columns in place instead of padded
to the full width and summed (155 vs 172 ms on its own). Not on GPUs (less parallelism per
launch), nor while tracing/exporting (the loop would fix the batch size).

Pitfall: under autocast the mel matmul would run in fp16/bf16 and |X|² (up to ~3e5 for a
full-scale tone) overflows fp16; the frontend therefore disables autocast for itself.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from birdcore.config.features import MelConfig

__all__ = ["MelFrontend", "mel_filterbank", "compute_mel", "mel_frequencies"]

_AMIN_POWER = 1e-10  # librosa.power_to_db default amin
# Bytes of windowed frames per CPU piece (see the module docstring): ~8 MB = 4 five-second clips
# at n_fft 2048 (measured 102 ms per 32 clips, against 99–119 ms one clip at a time and 172 ms for
# the whole batch at once).
_CPU_CHUNK_BYTES = 8 << 20


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_frequencies(cfg: MelConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band: the peaks of the front end's Slaney filters."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    return np.asarray(edges[1:-1], dtype=float)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters (n_mels, 1 + n_fft // 2), float64.

    Same algorithm as `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax)`, re-implemented so inference never imports librosa (~1 s import).
    """
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def _band_blocks(fb: np.ndarray, count: int = 10) -> list[tuple[int, int, int, int]]:
    """Row ranges [a, b) of `fb` (rows = frequency, cols = mels) with geometrically growing
    sizes (mel bands widen with frequency), each with the column range [m0, m1) of its non-zeros.
    Rows whose block has no non-zero weight are dropped."""
    nz = fb > 0
    rows = fb.shape[0]
    bounds = np.concatenate([[0], np.unique(np.round(np.geomspace(16, rows, count)).astype(int))])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        cols = np.flatnonzero(nz[a:b].any(axis=0))
        if cols.size:
            out.append((int(a), int(b), int(cols[0]), int(cols[-1]) + 1))
    return out


class MelFrontend(nn.Module):
    """Log-mel front end; see the module docstring for the exact computation.

    Input: float waveforms (B, T) or (B, 1, T) at `cfg.sample_rate`, any T ≥ 1, on any device.
    Output of `forward`: float32 (B, cfg.in_chans, cfg.n_mels, 1 + T // cfg.hop_length).
    Other stages: `power_mel` (linear mel power), `db` (un-normalised dB, comparable with librosa),
    `normalize` (dB → normalised image), `to_channels` (B, n_mels, frames) → (B, C, n_mels, frames).
    """

    def __init__(self, cfg: MelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else MelConfig()
        window = torch.hann_window(cfg.n_fft, periodic=True, dtype=torch.float64).float()
        fb = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax))
        fb = fb.T.contiguous().float()  # (n_freq, n_mels)
        self.register_buffer("window", window, persistent=False)
        # Interleaved (re, im) rows: |X|²·W == (re², im² interleaved)·(W rows repeated twice).
        fb2 = fb.repeat_interleave(2, dim=0)
        self.register_buffer("fb_interleaved", fb2, persistent=False)
        self.register_buffer("fb", fb, persistent=False)
        # Block-sparse projection: the filterbank is banded (each bin feeds ≤ 2 adjacent filters),
        # so a few dense (rows × mel-range) blocks cover every non-zero with ~15 % of the dense
        # multiply-adds. Measured 166 vs 201 ms (one thread) for the whole power_mel of 32 × 5 s.
        self._blocks: list[tuple[int, int, int, int]] = []
        for i, (a, b, m0, m1) in enumerate(_band_blocks(fb2.numpy())):
            self.register_buffer(f"fb_block{i}", fb2[a:b, m0:m1].contiguous(), persistent=False)
            self._blocks.append((a, b, m0, m1))

    # ---- geometry ---------------------------------------------------------------------------
    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (1 + num_samples // hop_length)."""
        return self.cfg.num_frames(num_samples)

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"sr={c.sample_rate}, n_fft={c.n_fft}, hop={c.hop_length}, n_mels={c.n_mels}, "
                f"fmin={c.fmin}, fmax={c.fmax}, norm={c.normalization}, in_chans={c.in_chans}, "
                f"channel_mode={c.channel_mode}")

    # ---- stages -----------------------------------------------------------------------------
    def power_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear mel spectrogram (B, n_mels, frames): |STFT|^power projected on the mel filters."""
        if wave.dim() == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        if wave.dim() != 2:
            raise ValueError(f"MelFrontend expects waveforms (B, T) or (B, 1, T), got shape {tuple(wave.shape)}")
        if torch.is_autocast_enabled(wave.device.type):
            with torch.autocast(device_type=wave.device.type, enabled=False):
                return self._power_mel(wave.float())
        return self._power_mel(wave.float())

    def _power_mel(self, wave: torch.Tensor) -> torch.Tensor:
        # `_tracing()` first: reading a symbolic batch size or length would make an exporter
        # specialise it
        if _tracing() or wave.device.type != "cpu":
            return self._power_mel_block(wave)
        rows = max(1, _CPU_CHUNK_BYTES // (4 * self.cfg.n_fft * self.num_frames(wave.shape[-1])))
        if wave.shape[0] <= rows:
            return self._power_mel_block(wave)
        return torch.cat([self._power_mel_block(wave[i:i + rows]) for i in range(0, wave.shape[0], rows)])

    def _power_mel_block(self, wave: torch.Tensor) -> torch.Tensor:
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_length
        padded = F.pad(wave, (n_fft // 2, n_fft // 2))  # centre=True, zeros (librosa >= 0.10)
        frames = padded.unfold(-1, n_fft, hop)  # (B, frames, n_fft), a view
        spec = torch.view_as_real(torch.fft.rfft(frames * self.window, dim=-1))  # (B, frames, F, 2)
        if self.cfg.power == 2.0:
            # In-place square of the (re, im)-interleaved spectrum, then the interleaved filters:
            # measured ~220 ms per 32×5 s against ~300 ms for `.square().sum(-1) @ fb` or
            # `.abs()**2` (a reduction over a size-2 axis is slow on CPU).
            power = spec.flatten(-2).square_()
            n_mels = self.cfg.n_mels
            if _tracing():  # out-of-place: what the ONNX exporters have always been given
                mel = None
                for i, (a, b, m0, m1) in enumerate(self._blocks):
                    part = F.pad(power[..., a:b] @ getattr(self, f"fb_block{i}"), (m0, n_mels - m1))
                    mel = part if mel is None else mel + part
            else:
                mel = power.new_zeros(power.shape[:-1] + (n_mels,))
                for i, (a, b, m0, m1) in enumerate(self._blocks):
                    mel[..., m0:m1] += power[..., a:b] @ getattr(self, f"fb_block{i}")
        else:
            mel = spec.square().sum(-1).sqrt() @ self.fb
        return mel.transpose(1, 2)

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-mel in dB (B, n_mels, frames), ref = 1.0, floored at max − top_db.

        Equals `librosa.power_to_db(melspectrogram(...), ref=1.0, top_db=cfg.top_db)` for power 2
        (`amplitude_to_db` semantics, 20·log10 with amin 1e-5, for power 1).
        """
        return self.power_to_db(self.power_mel(wave))

    def power_to_db(self, mel: torch.Tensor) -> torch.Tensor:
        """dB of a mel power (or magnitude, for power 1) tensor, per-image top_db floor."""
        p = self.cfg.power
        amin = _AMIN_POWER ** (p / 2.0)
        db = (20.0 / p) * torch.log10(torch.clamp(mel, min=amin))
        if self.cfg.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.cfg.top_db)
        return db

    def normalize(self, db: torch.Tensor) -> torch.Tensor:
        """dB → network input: (dB + 80) / 80 ("db80") or per-image min-max to [0, 1] ("minmax")."""
        if self.cfg.normalization == "db80":
            return (db + 80.0) / 80.0
        lo = db.amin(dim=(-2, -1), keepdim=True)
        hi = db.amax(dim=(-2, -1), keepdim=True)
        return (db - lo) / (hi - lo).clamp(min=1e-6)  # a constant image (digital silence) → 0

    def to_channels(self, image: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) → (B, in_chans, n_mels, frames): 1 channel, 3 repeats, or deltas."""
        if self.cfg.in_chans == 1:
            return image.unsqueeze(1)
        if self.cfg.channel_mode == "repeat":
            # A real copy, not `expand`: in-place spectrogram augmentation must be able to write it.
            return image.unsqueeze(1).repeat(1, 3, 1, 1)
        d1 = self.delta(image)
        return torch.stack([image, d1, self.delta(d1)], dim=1)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """HTK regression delta over time (last axis), edges replicated.

        d_t = Σ_{n=1..N} n·(x_{t+n} − x_{t−n}) / (2·Σ n²), N = cfg.delta_width (torchaudio's
        `ComputeDeltas` formula with win_length 2N+1).
        """
        n_w = self.cfg.delta_width
        t = x.shape[-1]
        padded = torch.cat([x[..., :1].expand(*x.shape[:-1], n_w), x, x[..., -1:].expand(*x.shape[:-1], n_w)], dim=-1)
        out = torch.zeros_like(x)
        for n in range(1, n_w + 1):
            out = out + n * (padded[..., n_w + n: n_w + n + t] - padded[..., n_w - n: n_w - n + t])
        return out / (2.0 * sum(n * n for n in range(1, n_w + 1)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) waveforms → (B, in_chans, n_mels, frames) normalised float32 images."""
        return self.to_channels(self.normalize(self.db(wave)))


def _tracing() -> bool:
    """True while TorchScript-tracing, compiling or exporting (no data-dependent Python loops)."""
    # `torch.onnx` is imported lazily by torch (0.25 s on a first mel); no ONNX export can be running
    # before something imported it, so only ask it once it is loaded.
    onnx = sys.modules.get("torch.onnx")
    return (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
            or (onnx is not None and onnx.is_in_onnx_export()))


_CACHE: dict[str, MelFrontend] = {}


def compute_mel(y: np.ndarray, cfg: MelConfig, stage: str = "normalized") -> np.ndarray:
    """Mel image of one mono float waveform as numpy (n_mels, frames), on CPU.

    `stage`: "db" (un-normalised dB) or "normalized" (the network's first channel). For the app,
    previews and tests; training and inference run the module on batches instead.
    """
    if stage not in ("db", "normalized"):
        raise ValueError(f"compute_mel: stage {stage!r} is not 'db' or 'normalized'")
    key = repr(cfg)
    fe = _CACHE.get(key)
    if fe is None:
        fe = _CACHE[key] = MelFrontend(cfg).eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None]
        db = fe.db(x)
        out = db if stage == "db" else fe.normalize(db)
    return out[0].numpy()
