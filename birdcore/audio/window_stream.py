"""Cut model inputs from a recording that arrives in blocks, exactly as `windows.cut_windows` cuts it whole.

`WindowStream(blocks, sr, ...)` yields `(input, owner)` pairs in `cut_windows`' order with equal
values, while holding only the audio from the current input's start onwards (about one block
plus one input). Inputs that straddle block edges, contexts reaching before the start or past
the end (zeros), hop overlap and the trailing partial window (`min_last_s`) all come out as in
the whole-file cut.

Which inputs exist depends on the recording's length, known only at its end. The rule
(`window_count`) never shrinks as samples arrive, so an input is yielded as soon as the samples
read so far prove that it exists and cover it; only the last window or two wait for the end.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from birdcore.audio.windows import MIN_LAST_S, WINDOW_S, window_count


class WindowStream:
    """Iterate `(input (L,) float32, owner window index)` over a block stream of mono audio.

    - `blocks`: consecutive mono float32 blocks at `sr` (e.g. `blocks.read_blocks`); any sizes.
    - `window_s`, `context_s`, `hop_s`, `min_last_s`: as in `windows.cut_windows`.
    - After iteration, `n_samples` is the recording's length and `n_windows` its window count.
    """

    def __init__(self, blocks: Iterable[np.ndarray], sr: int, window_s: float = WINDOW_S,
                 context_s: float | None = None, hop_s: float | None = None, min_last_s: float = MIN_LAST_S):
        self._blocks = iter(blocks)
        self.sr, self.window_s, self.min_last_s = sr, window_s, min_last_s
        self.context_s, self.hop_s = context_s, hop_s
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0          # absolute index of _buf[0]
        self._keep_from = 0          # no input still to come starts before this sample
        self._ended = False
        self.n_samples: int | None = None
        self.n_windows: int | None = None

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        win = int(round(self.window_s * self.sr))
        if self.context_s and self.context_s > self.window_s:
            ctx = int(round(self.context_s * self.sr))
            pad = (ctx - win) // 2
            i = 0
            while self._has_window(i):
                yield self._take(i * win - pad, i * win - pad + ctx), i
                i += 1
        elif self.hop_s and self.hop_s < self.window_s:
            hop = int(round(self.hop_s * self.sr))
            s = 0
            # cut_windows starts inputs at 0, hop, … up to the start of the last window: a start
            # s exists when window ceil(s / win) does.
            while self._has_window(-(-s // win)):
                # Only the windows under s overlap it; both exist when s does (s // win + 1 is
                # ceil(s / win) whenever it overlaps s at all).
                for w in (s // win, s // win + 1):
                    overlap = min(s + win, (w + 1) * win) - max(s, w * win)
                    if overlap >= win / 2:
                        yield self._take(s, s + win), w
                s += hop
        else:
            i = 0
            while self._has_window(i):
                yield self._take(i * win, (i + 1) * win), i
                i += 1
        self._finish()

    def _lower_bound(self) -> int:
        """Windows that surely exist given the samples read so far (all of them once ended)."""
        have = self._buf_start + len(self._buf)
        return window_count(have, self.sr, self.window_s, self.min_last_s)

    def _has_window(self, i: int) -> bool:
        while i >= self._lower_bound():
            if self._ended:
                return False
            self._pull(self._buf_start + len(self._buf) + 1)
        return True

    def _take(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) of the recording, zeros outside it; later inputs start at `a` or after."""
        self._keep_from = max(self._keep_from, a)
        self._pull(b)
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, self._buf_start), min(b, self._buf_start + len(self._buf))
        if hi > lo:
            out[lo - a: hi - a] = self._buf[lo - self._buf_start: hi - self._buf_start]
        return out

    def _pull(self, upto: int) -> None:
        """Read blocks until samples up to `upto` are held or the recording has ended; drop the
        samples no future input needs."""
        have = self._buf_start + len(self._buf)
        parts = []
        while have < upto and not self._ended:
            block = next(self._blocks, None)
            if block is None:
                self._ended = True
                break
            parts.append(np.asarray(block, dtype=np.float32))
            have += len(block)
        if not parts:
            return
        drop = min(max(0, self._keep_from - self._buf_start), len(self._buf))
        self._buf = np.concatenate([self._buf[drop:], *parts])
        self._buf_start += drop

    def _finish(self) -> None:
        # Reached only after `_has_window` found the end, so the length is known.
        self.n_samples = self._buf_start + len(self._buf)
        self.n_windows = window_count(self.n_samples, self.sr, self.window_s, self.min_last_s)
