"""Audio I/O: decode to mono float32 at a fixed rate, read windows, durations from headers.

Decoding goes through libsndfile (`soundfile`), which reads WAV, FLAC, OGG Vorbis/Opus and MP3
(libsndfile >= 1.1) and can seek, so a 5-s window of a 10-minute recording costs a 5-s decode.
Resampling uses `soxr` (the resampler librosa uses for `res_type="soxr_hq"`) called directly:
importing librosa costs ~1 s and its first call compiles numba code for ~25 s in a fresh
environment, which must stay off start-up paths (app, CLI, inference).

Every failure becomes an `AudioError` naming the file and the problem: an unreadable, empty or
truncated file never crashes deep inside a library and never turns into a silent array of zeros.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from birdcore.config.features import DEFAULT_SR
from birdcore.errors import AudioError, brief, not_found_message

# DEFAULT_SR (32 kHz, the default decode rate) is defined once, as MelConfig.sample_rate's default in
# birdcore.config.features; it is imported from here too.

AUDIO_EXTENSIONS = (".ogg", ".wav", ".flac", ".mp3", ".oga", ".opus")


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file (no decoding)."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        """Length in seconds (frames / samplerate)."""
        return self.frames / self.samplerate if self.samplerate else 0.0


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of `path`: sample rate, channels, frames, duration. Raises AudioError."""
    p = Path(path)
    _check_file(p)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile raises several types; all mean "unreadable"
        raise AudioError(f"{p}: cannot read audio header ({_short(exc)})") from None
    if info.samplerate <= 0:
        raise AudioError(f"{p}: header has an invalid sample rate {info.samplerate}")
    return AudioInfo(p, int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header only."""
    return audio_info(path).duration


def check_audio(path: str | os.PathLike) -> AudioInfo:
    """Header facts of `path` after the checks that need no decoding; raises AudioError when the
    file is missing, empty, unreadable, holds 0 frames or is cut off (a WAV shorter than its
    header declares, an Ogg stream without its end-of-stream page). Cheap: for pre-scans."""
    p = Path(path)
    info = audio_info(p)
    if info.format.upper() in ("WAV", "WAVEX"):
        # libsndfile quietly clamps a cut-off WAV to the bytes present: compare with the header.
        declared = _wav_declared_frames(p)
        if declared is not None and declared > info.frames:
            raise AudioError(
                f"{p}: truncated: the WAV header declares {declared} samples"
                f" ({declared / info.samplerate:.3f} s), the file holds {info.frames}"
            )
    if info.frames <= 0:
        raise AudioError(f"{p}: file holds no audio samples (0 frames in the header: empty, truncated or corrupt)")
    if info.format.upper() == "OGG" and not _ogg_ends_cleanly(p):
        # libsndfile reports a cut-off Ogg as a shorter file (up to its last whole page).
        raise AudioError(
            f"{p}: truncated or corrupt: the Ogg stream has no end-of-stream page (file cut off?);"
            f" only {info.duration:.3f} s are readable"
        )
    return info


def load_audio(
    path: str | os.PathLike,
    sr: int | None = DEFAULT_SR,
    offset: float = 0.0,
    duration: float | None = None,
    allow_short: bool = True,
) -> np.ndarray:
    """Decode `path` (or the window `[offset, offset + duration)` seconds) to mono float32.

    - `sr`: target rate (None keeps the file's rate). Resampled with soxr HQ.
    - Only the requested window is decoded (libsndfile seeks).
    - Multi-channel audio is averaged to mono.
    - A window running past the end returns the available samples when `allow_short`, else
      raises AudioError. Pad afterwards with `fit_length` if a fixed length is needed.
    - Raises AudioError when the file is missing, empty, corrupt, truncated (fewer samples than
      the header promises), decodes to zero samples, or holds NaN/inf samples.
    - All-silent audio is valid input (an empty recording) and loads as zeros: the model gets
      silence. Use `audio_stats(y).silent` to flag it (EDA, the app).
    """
    p = Path(path)
    info = check_audio(p)
    if offset < 0:
        raise AudioError(f"{p}: negative offset {offset}")
    start = int(round(offset * info.samplerate))
    if start >= info.frames:
        raise AudioError(f"{p}: offset {offset:.3f} s is past the end ({info.duration:.3f} s)")
    stop = info.frames if duration is None else min(info.frames, start + int(round(duration * info.samplerate)))
    wanted = stop - start
    try:
        with sf.SoundFile(str(p)) as fh:
            if start:
                fh.seek(start)
            data = fh.read(wanted, dtype="float32", always_2d=True)
    except Exception as exc:
        raise decode_error(p, exc) from None
    got = data.shape[0]
    check_decoded_count(info, got, wanted, offset)
    y = to_mono(p, data)
    if duration is not None and not allow_short and got < int(round(duration * info.samplerate)):
        raise AudioError(f"{p}: window {offset:.3f}+{duration:.3f} s runs past the end ({info.duration:.3f} s)")
    if sr is not None and sr != info.samplerate:
        y = resample(y, info.samplerate, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def check_decoded_count(info: AudioInfo, got: int, wanted: int, offset: float = 0.0) -> None:
    """AudioError naming `info.path` when decoding gave none or fewer of the `wanted` samples
    (from `offset` seconds) than the header promises. Shared with block reading (`blocks`) so
    both paths accept and refuse the same files."""
    p = info.path
    if got == 0:
        raise AudioError(f"{p}: decoded 0 samples (file is empty or corrupt)")
    # MP3 headers estimate the frame count; allow a small slack there, none elsewhere.
    slack = int(0.05 * info.samplerate) if info.format.upper().startswith("MP") else 0
    if got + slack < wanted:
        raise AudioError(
            f"{p}: truncated or corrupt: header promises {wanted} samples from {offset:.3f} s, decoded {got}"
        )


def decode_error(p: Path, exc: BaseException) -> AudioError:
    """The AudioError for libsndfile failing to decode file `p`, with libsndfile's own words."""
    return AudioError(f"{p}: cannot decode audio ({_short(exc)})")


def to_mono(p: Path, data: np.ndarray) -> np.ndarray:
    """Decoded frames (frames, channels) of file `p` as mono (channels averaged); AudioError
    naming `p` when any sample is NaN or infinite. Block reading mixes with this same function,
    so a block holds exactly the samples `load_audio` gives."""
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise AudioError(f"{p}: {bad} samples are NaN or infinite")
    return y


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (HQ), as librosa's `soxr_hq` does."""
    if orig_sr == target_sr:
        return y.astype(np.float32, copy=False)
    return soxr.resample(y.astype(np.float32, copy=False), orig_sr, target_sr, quality="HQ").astype(np.float32)


def fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or cut `y` to exactly `length` samples."""
    if len(y) >= length:
        return y[:length]
    return np.pad(y, (0, length - len(y)))


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int = DEFAULT_SR) -> Path:
    """Write mono float audio atomically; the format follows the suffix (.ogg = Vorbis, .wav, .flac)."""
    from birdcore.atomic_io import atomic_path

    p = Path(path)
    suffix = p.suffix.lower()
    fmt = {".ogg": ("OGG", "VORBIS"), ".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}.get(suffix)
    if fmt is None:
        raise AudioError(f"{p}: cannot write audio with suffix {suffix!r} (use .ogg, .wav or .flac)")
    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    with atomic_path(p, suffix=suffix) as tmp, \
            sf.SoundFile(str(tmp), "w", samplerate=sr, channels=1, format=fmt[0], subtype=fmt[1]) as fh:
        # In blocks: libsndfile 1.2 segfaults when one write hands the Vorbis encoder >= 2**21
        # frames (65.5 s at 32 kHz), killing the whole process (the app server included).
        for start in range(0, len(y), _WRITE_BLOCK):
            fh.write(y[start:start + _WRITE_BLOCK])
    return p


_WRITE_BLOCK = 1 << 18


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files directly in `folder` (by extension), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


SILENCE_PEAK = 1e-4  # -80 dBFS: below 16-bit dither, nothing a model can hear


@dataclass(frozen=True)
class AudioStats:
    """Level facts of a decoded signal: peak, RMS in dBFS, share of clipped samples, silence."""

    peak: float
    rms_dbfs: float
    clipped_fraction: float

    @property
    def silent(self) -> bool:
        """True when no sample exceeds -80 dBFS (digital silence or a dead microphone)."""
        return self.peak <= SILENCE_PEAK


def audio_stats(y: np.ndarray) -> AudioStats:
    """Peak, RMS (dBFS, -inf for zeros) and the share of samples at full scale (|y| >= 0.999)."""
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        return AudioStats(0.0, float("-inf"), 0.0)
    a = np.abs(y)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return AudioStats(float(a.max()), 20 * np.log10(rms) if rms > 0 else float("-inf"),
                      float(np.count_nonzero(a >= 0.999) / y.size))


def _wav_declared_frames(p: Path) -> int | None:
    """Frames the RIFF `data` chunk declares, or None when unknown (streamed/placeholder sizes)."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align, pos = 0, 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"fmt " and pos + 22 <= len(head):
            block_align = int.from_bytes(head[pos + 20:pos + 22], "little")
        elif cid == b"data":
            if block_align <= 0 or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


_OGG_MAX_PAGE = 27 + 255 + 255 * 255


def _ogg_ends_cleanly(p: Path) -> bool:
    """True when the file ends exactly with a complete Ogg page flagged end-of-stream.

    Every Ogg writer (libogg, libsndfile, ffmpeg) closes a stream with an EOS page, so a file
    whose tail is a partial page, or a whole page without the flag, was cut off. Reads only the
    last 64 kB (the largest possible page).
    """
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            fh.seek(max(0, size - _OGG_MAX_PAGE))
            tail = fh.read()
    except OSError:
        return True  # unreadable tails are reported by the decoder itself
    pos = len(tail)
    while True:
        pos = tail.rfind(b"OggS", 0, pos)
        if pos < 0:
            return False
        head = tail[pos:pos + 27]
        if len(head) == 27 and head[4] == 0:
            nseg = head[26]
            lacing = tail[pos + 27:pos + 27 + nseg]
            if len(lacing) == nseg and pos + 27 + nseg + sum(lacing) == len(tail):
                return bool(head[5] & 0x04)  # the last page: is it flagged end-of-stream?
        # "OggS" inside packet data, or a page that does not reach the end: look further back


def _check_file(p: Path) -> None:
    if not p.exists():
        raise AudioError(not_found_message(p, "audio file"))
    if not p.is_file():
        raise AudioError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes)")


def _short(exc: BaseException) -> str:
    # libsndfile's useful words are on its last line ("Error : ... format not recognised")
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return brief(Exception(text))
