"""BirdNET V2.4's spectrogram front end, computed outside TFLite, and the rest of its graph.

Why: measured on 2 cores, the first 95 of the graph's 376 ops (input normalisation, two STFTs
through TFLite's RFFT2D, two mel projections, a power law) take ~80 % of an invoke (645 of 790 ms
per 16 chunks) because TFLite runs them single-threaded in reference kernels; the CNN after them
is delegated to XNNPACK and takes ~150 ms. Here the front end is one float64 matrix product per
STFT (torch, multi-threaded), and TFLite runs only the CNN.

The algebra: the graph keeps the *real part* of each STFT bin (BirdNET's `tf.cast(stft, float32)`)
and projects it on a mel filterbank, so `mel = frames @ (window ⊙ cos basis) @ filterbank.T` —
one (L, 96) matrix per STFT, built once in float64. Float64 matters: the next step is
`(mel²)^0.23`, whose slope is unbounded near 0, and signed real parts cancel to near 0 often; a
float32 FFT (or a float32 product) moved BirdNET's logits by up to 0.4, while this path stays
within ~1e-4 of the TFLite graph (which computes its FFT in double).

Every number (windows, filterbanks, exponents, frame steps, the final scale and offset) is read
from the flatbuffer, and `FrontEnd.check` compares the result with TFLite's own front-end ops on
probe chunks at load time: a model whose graph does not have this shape, or disagrees, is run
whole by TFLite instead (`split_model` returns None / the check raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Load check: max |Δ| / max |value| over the probe chunks. Measured: 2e-4 to 4e-4 (the tonal probes,
# where the graph's complex64 rounding is amplified by the power law); a wrong window, step, flip or
# filterbank gives > 1e-1. On real audio BirdNET's probabilities then differ by < 1e-5.
PROBE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Stft:
    """One of the front end's spectrograms: frame length/step (samples) and its (L, bands) basis."""

    length: int
    step: int
    basis: np.ndarray  # float64 (length, bands): window ⊙ cosine basis, projected on the mel filterbank
    exponent: float  # the graph's pow after squaring


@dataclass(frozen=True)
class FrontEnd:
    """BirdNET's input → spectrogram tensor `(N, bands, frames, channels)` float32, as the CNN reads it."""

    stfts: tuple[Stft, ...]
    scale: np.ndarray  # per channel, applied after stacking
    offset: np.ndarray
    eps: float  # added to the max in the input normalisation

    def __call__(self, chunks: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The spectrogram tensor of `chunks` (N, samples). `threads`: torch threads for the products,
        set for this call only (None: the process's setting)."""
        import torch

        x = np.ascontiguousarray(chunks, dtype=np.float32)
        # The BLAS product rounds differently with its thread count (1 float32 ulp now and then), so
        # the caller fixes it: a Ray worker (1 OpenMP thread by default) and a local run then agree.
        previous = torch.get_num_threads()
        if threads and threads != previous:
            torch.set_num_threads(int(threads))
        try:
            with torch.no_grad():
                bases = [torch.from_numpy(s.basis) for s in self.stfts]
                scale, offset = torch.from_numpy(self.scale), torch.from_numpy(self.offset)
                # Chunk by chunk, never over the batch: vectorised kernels (BLAS blocking, SIMD pow with
                # a scalar tail) round differently with the tensor's size, so a batched call would make a
                # chunk's result depend on its batch; the embedding cache promises identical values.
                return np.stack([self._one(torch.from_numpy(c), bases, scale, offset).numpy() for c in x])
        finally:
            if threads and threads != previous:
                torch.set_num_threads(previous)

    def _one(self, chunk: Any, bases: list, scale: Any, offset: Any) -> Any:
        import torch

        # The graph's normalisation: min-max to [0, 1], then to [-1, 1]; it holds the result in float32.
        y = chunk.double() - chunk.min()
        y = ((y / (y.max() + self.eps) - 0.5) * 2.0).float().double()
        outs = []
        for s, basis in zip(self.stfts, bases):
            mel = (y.unfold(0, s.length, s.step) @ basis).float()  # (frames, bands)
            mel = (mel * mel) ** s.exponent
            outs.append(mel.flip(1).T)  # the graph flips the band axis, then puts it first
        return torch.stack(outs, dim=-1) * scale + offset


@dataclass(frozen=True)
class SplitModel:
    """The front end, the CNN-only flatbuffer (input: the spectrogram tensor), and both halves' tensor ids."""

    front_end: FrontEnd
    backend: bytes
    front_only: bytes  # the graph's own front-end ops, for the load-time check
    cut_tensor: int


def _op_name(model: Any, op: Any, schema: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    number = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    return next((k for k, v in vars(schema.BuiltinOperator).items() if v == number and not k.startswith("_")), "?")


def pack_model(model: Any, size_hint: int = 1 << 20) -> bytes:
    """The flatbuffer bytes of a parsed TFLite model (`schema.ModelT`)."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def split_model(model: Any, outputs: list[int]) -> SplitModel | None:
    """Split a parsed BirdNET model (`schema.ModelT`, left unchanged) at the first convolution.

    `outputs`: the tensor ids the CNN half must expose (the classifier output and the embedding).
    Returns None when the front end is not the one this module knows.
    """
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[0]
    ops = list(graph.operators)
    names = [_op_name(model, op, schema) for op in ops]
    producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}

    def const(t: int) -> np.ndarray | None:
        tensor = graph.tensors[int(t)]
        data = model.buffers[tensor.buffer].data
        if data is None or not len(data):
            return None
        dtype = {0: np.float32, 2: np.int32}.get(int(tensor.type))
        return None if dtype is None else np.frombuffer(bytes(data), dtype=dtype).reshape(list(tensor.shape))

    def source(t: int, *kinds: str) -> int | None:
        """Index of the op producing tensor t, when it is one of `kinds`."""
        i = producer.get(int(t))
        return i if i is not None and names[i] in kinds else None

    def consts_of(i: int) -> list[np.ndarray]:
        return [c for c in (const(t) for t in ops[i].inputs if t >= 0) if c is not None]

    try:
        first_conv = names.index("CONV_2D")
        front = range(first_conv)
        cut = {int(t) for op in ops[first_conv:] for t in op.inputs if int(t) in producer and producer[int(t)] < first_conv}
        if len(cut) != 1:
            return None
        cut_tensor = cut.pop()
        # cut tensor = ADD(MUL(CONCATENATION(spec...), scale), offset)
        add = source(cut_tensor, "ADD")
        mul = source(ops[add].inputs[0], "MUL")
        concat = source(ops[mul].inputs[0], "CONCATENATION")
        (scale,), (offset,) = consts_of(mul), consts_of(add)
        stfts = []
        for branch in ops[concat].inputs:
            # EXPAND_DIMS(TRANSPOSE(REVERSE(POW(MUL(x, x), k)))) with x = RESHAPE(FC(RESHAPE(CAST(SQUEEZE(RFFT(...))))))
            i = source(branch, "EXPAND_DIMS")
            i = source(ops[i].inputs[0], "TRANSPOSE")
            i = source(ops[i].inputs[0], "REVERSE_V2")
            pw = source(ops[i].inputs[0], "POW")
            exponent = float(consts_of(pw)[0])
            sq = source(ops[pw].inputs[0], "MUL")
            fc = source(ops[source(ops[sq].inputs[0], "RESHAPE")].inputs[0], "FULLY_CONNECTED")
            filterbank = consts_of(fc)[0]  # (bands, bins)
            i = source(ops[fc].inputs[0], "RESHAPE")
            i = source(ops[i].inputs[0], "CAST")
            i = source(ops[i].inputs[0], "SQUEEZE")
            rfft = source(ops[i].inputs[0], "RFFT2D")
            length = int(consts_of(rfft)[0].ravel()[-1])
            i = source(ops[rfft].inputs[0], "EXPAND_DIMS")
            win_mul = source(ops[i].inputs[0], "MUL")
            window = consts_of(win_mul)[0].astype(np.float64)
            gather = source(ops[source(ops[win_mul].inputs[0], "RESHAPE")].inputs[0], "GATHER")
            idx_add = source(ops[gather].inputs[1], "ADD")
            sub_offsets = consts_of(idx_add)[0]  # (1, length / sub) frame-relative sub-frame indices
            step_mul = source(ops[source(ops[idx_add].inputs[0], "RESHAPE")].inputs[0], "MUL")
            sub = length // sub_offsets.shape[-1]
            step = int(consts_of(step_mul)[0].ravel()[0]) * sub
            if window.shape != (length,) or filterbank.shape[1] != length // 2 + 1:
                return None
            stfts.append(Stft(length, step, _basis(window, filterbank), exponent))
        # eps: the ADD on the normalisation's REDUCE_MAX (x - min) / (max + eps)
        reduce_max = names.index("REDUCE_MAX")
        eps_add = next(i for i in front if names[i] == "ADD" and int(ops[i].inputs[0]) == int(ops[reduce_max].outputs[0]))
        eps = float(consts_of(eps_add)[0].ravel()[0])
    except (ValueError, TypeError, IndexError, StopIteration):
        return None  # any op of another kind on the path: not the front end this code knows

    front_end = FrontEnd(tuple(stfts), scale.astype(np.float32).copy(), offset.astype(np.float32).copy(), eps)

    def rebuilt(keep: range, inputs: list[int], outs: list[int], prune: bool) -> bytes:
        # One parsed model serves both halves: only the op list and the graph's ends change.
        # `prune` drops the constants the kept ops never read (the front-only check model would
        # otherwise carry all 50 MB of CNN weights).
        saved = graph.operators, graph.inputs, graph.outputs, model.buffers
        graph.operators = [ops[i] for i in keep]
        graph.inputs, graph.outputs = np.asarray(inputs, np.int32), np.asarray(outs, np.int32)
        if prune:
            used = {graph.tensors[int(t)].buffer for op in graph.operators for t in op.inputs if t >= 0}
            model.buffers = [b if i in used or i == 0 else schema.BufferT() for i, b in enumerate(saved[3])]
        try:
            return pack_model(model)
        finally:
            graph.operators, graph.inputs, graph.outputs, model.buffers = saved

    backend = rebuilt(range(first_conv, len(ops)), [cut_tensor], list(outputs), prune=False)
    front_only = rebuilt(front, [int(graph.inputs[0])], [cut_tensor], prune=True)
    return SplitModel(front_end, backend, front_only, cut_tensor)


def _basis(window: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """(L, bands) float64: Re(rfft(w ⊙ frame)) @ filterbank.T == frame @ basis."""
    length = window.shape[0]
    n = np.arange(length)[:, None]
    k = np.arange(length // 2 + 1)[None, :]
    cos = np.cos(2.0 * np.pi * ((n * k) % length) / length)  # the modulo keeps the phase exact for large n·k
    return (window[:, None] * cos) @ filterbank.T.astype(np.float64)


def probe_chunks(n_samples: int, sample_rate: int) -> np.ndarray:
    """Chunks that exercise the front end: noise, a loud chirp, a quiet tone, silence (deterministic).

    The tones carry a 16-bit quantisation floor, as every real recording does: on a mathematically
    pure tone the graph's own complex64 FFT output is the noisier side (its rounding, amplified by
    the power law near 0, differs from the float64 path by ~0.01), which says nothing about audio.
    """
    t = np.arange(n_samples) / sample_rate
    rng = np.random.default_rng(0)
    floor = rng.uniform(-0.5, 0.5, (2, n_samples)) / 32768.0
    return np.stack([
        0.1 * rng.standard_normal(n_samples),
        0.3 * np.sin(2 * np.pi * (500 + 2000 * t) * t) + floor[0],
        1e-3 * np.sin(2 * np.pi * 3000 * t) + floor[1],
        np.zeros(n_samples),
    ]).astype(np.float32)


def check_front_end(split: SplitModel, interpreter_cls: Any, n_samples: int, sample_rate: int) -> float:
    """Max |Δ| / max |value| between `split.front_end` and the graph's own front-end ops on `probe_chunks`."""
    probe = probe_chunks(n_samples, sample_rate)
    interp = interpreter_cls(model_content=split.front_only, num_threads=1)
    index = int(interp.get_input_details()[0]["index"])
    interp.resize_tensor_input(index, list(probe.shape))
    interp.allocate_tensors()
    interp.set_tensor(index, probe)
    interp.invoke()
    want = interp.get_tensor(int(interp.get_output_details()[0]["index"]))
    try:
        got = split.front_end(probe)
    except (RuntimeError, ValueError):  # e.g. the two spectrograms' frame counts differ: not this graph
        return float("inf")
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
