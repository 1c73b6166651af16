"""An audio player that draws its playhead over a spectrogram picture, in a small HTML component.

`st.audio` cannot report where it is playing, so a cursor synced with it needs the audio element
and the picture in one page: `st.iframe` gets both (the WAV and the PNG as data: URLs, no
file server, no CDN, works offline). Clicking the picture seeks there. The cursor follows
`currentTime` on every animation frame while playing.
"""

from __future__ import annotations

import base64
import html
from typing import Sequence

import streamlit as st


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def player_html(wav: bytes, png: bytes, *, start_s: float, end_s: float, label: str = "",
                highlight: tuple[float, float] | None = None, height_px: int = 150, seek_s: float | None = None,
                autoplay: bool = False, marks: Sequence[float] = (), axis: str = "") -> str:
    """The player's HTML: the picture spans [`start_s`, `end_s`] of the recording, as does the audio;
    playback begins at `seek_s` (default `start_s`); `highlight` (start, end in s) frames a part of
    the picture (the annotated window) and dims the rest; `marks` (s) draws thin lines there (window
    edges) with their times; `axis` is a note under the picture (its frequency range). `autoplay`
    starts playing as soon as the audio is loaded (the click that chose the window is the user
    gesture browsers ask for)."""
    span = max(end_s - start_s, 1e-6)
    lines = "".join(f'<div class="mk" style="left:{(t - start_s) / span * 100:.3f}%"><span>{t:g} s</span></div>'
                    for t in marks if start_s < t < end_s)
    box = ""
    if highlight is not None:
        a = max(0.0, (highlight[0] - start_s) / span) * 100
        b = min(1.0, (highlight[1] - start_s) / span) * 100
        box = (f'<div class="hl" style="left:{a:.3f}%;width:{b - a:.3f}%"></div>'
               f'<div class="dim" style="left:0;width:{a:.3f}%"></div>'
               f'<div class="dim" style="left:{b:.3f}%;right:0"></div>')
    return f"""<div class="bc-player" data-start="{start_s:.3f}" data-end="{end_s:.3f}">
<style>
 .bc-player {{font-family: sans-serif; font-size: 12px; color: #1f2933;}}
 .bc-pic {{position: relative; width: 100%; height: {height_px}px; cursor: pointer; background: #000;}}
 .bc-pic img {{width: 100%; height: 100%; display: block; image-rendering: auto;}}
 .bc-cursor {{position: absolute; top: 0; bottom: 0; width: 2px; background: #fff; box-shadow: 0 0 2px #000;
              left: 0; pointer-events: none;}}
 .hl {{position: absolute; top: 0; bottom: 0; border: 2px solid #7fdbff; box-sizing: border-box;
       pointer-events: none;}}
 .dim {{position: absolute; top: 0; bottom: 0; background: rgba(0,0,0,.35); pointer-events: none;}}
 .mk {{position: absolute; top: 0; bottom: 0; width: 0; border-left: 1px dashed rgba(255,255,255,.7);
       pointer-events: none;}}
 .mk span {{position: absolute; top: 2px; left: 3px; color: #fff; font-size: 10px; text-shadow: 0 0 2px #000;
           white-space: nowrap;}}
 .bc-axis {{color: #52606d; font-size: 11px;}}
 audio {{width: 100%; height: 32px; margin-top: 4px;}}
 .bc-t {{float: right;}}
</style>
<div>{html.escape(label)}<span class="bc-t">{start_s:.2f}–{end_s:.2f} s</span></div>
<div class="bc-pic"><img alt="spectrogram" src="{_data_url(png, 'image/png')}">{lines}{box}<div class="bc-cursor"></div></div>
{f'<div class="bc-axis">{html.escape(axis)}</div>' if axis else ''}
<audio controls preload="auto" src="{_data_url(wav, 'audio/wav')}"></audio>
<script>
(function() {{
  const root = document.currentScript.parentElement;
  const audio = root.querySelector("audio"), cursor = root.querySelector(".bc-cursor");
  const pic = root.querySelector(".bc-pic"), t0 = {start_s:.6f}, span = {span:.6f};
  audio.addEventListener("loadedmetadata", () => {{ audio.currentTime = {max(0.0, (seek_s if seek_s is not None else start_s) - start_s):.3f}; draw();
    if ({'true' if autoplay else 'false'}) audio.play().catch(() => {{}}); }}, {{once: true}});
  function draw() {{
    const f = Math.min(Math.max(audio.currentTime / span, 0), 1);
    cursor.style.left = (f * 100) + "%";
    cursor.dataset.time = (t0 + audio.currentTime).toFixed(3);
    if (!audio.paused) requestAnimationFrame(draw);
  }}
  audio.addEventListener("play", () => requestAnimationFrame(draw));
  audio.addEventListener("timeupdate", draw);
  audio.addEventListener("seeked", draw);
  pic.addEventListener("click", (e) => {{
    const r = pic.getBoundingClientRect();
    audio.currentTime = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1) * span;
    draw();
  }});
}})();
</script></div>"""


def player(wav: bytes, png: bytes, *, start_s: float, end_s: float, label: str = "",
           highlight: tuple[float, float] | None = None, height_px: int = 150, seek_s: float | None = None,
           autoplay: bool = False, marks: Sequence[float] = (), axis: str = "") -> None:
    """Draw `player_html` (picture + playhead + audio controls) in the page."""
    st.iframe(player_html(wav, png, start_s=start_s, end_s=end_s, label=label, highlight=highlight,
                          height_px=height_px, seek_s=seek_s, autoplay=autoplay, marks=marks, axis=axis),
              height=height_px + 62 + (16 if axis else 0))
