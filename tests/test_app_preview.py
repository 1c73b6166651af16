"""The Preview page (app/pages/2_Preview.py) under Streamlit's AppTest: what the charts and tables hold.

Heatmap and line data come back from Plotly as typed arrays ({"dtype", "bdata", "shape"}); `arr`
decodes them. Timing is printed (run with -s), never asserted: the 2 CPU cores are shared.
"""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.apptest import chart, charts_with_key, plotly_array, texts  # noqa: F401
from streamlit.testing.v1 import AppTest

from birdcore import demo as demo_data
from birdcore.audio.io import audio_info, load_audio

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("denoise", "wave", "spec", "mix")  # app/ui/preview_widgets.SECTIONS
PREVIEW = REPO / "app" / "pages" / "2_Preview.py"
TIMEOUT = 90  # the first run imports audiomentations/librosa (several seconds on a busy machine)
SWITCHES = ("normalize", "background", "gaussian_noise", "color_noise", "pitch_shift", "time_stretch", "gain",
            "freq_mask", "time_mask", "spec_shift", "flip", "rotate", "mixup", "cutmix")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "birdcore-home"))
    monkeypatch.delenv("BIRDCORE_DATA", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the page's upload copies land here
    return tmp_path / "birdcore-home"


@pytest.fixture(scope="module")
def demo():
    from birdcore.data.dataset import load_dataset

    return load_dataset(demo_data.ensure_demo_dataset(demo_data.default_demo_dir()))


def start(preset_file: str | None = None, data: Path | None = None, monkeypatch=None,
          zoomable: bool = True, sections_open: bool = True) -> AppTest:
    if data is not None:
        monkeypatch.setenv("BIRDCORE_DATA", str(data))
    at = AppTest.from_file(str(PREVIEW), default_timeout=TIMEOUT)
    if preset_file:
        at.session_state["preview_filename"] = preset_file  # what the EDA page sets
    at.session_state["pv_zoomable"] = zoomable  # the Plotly views these tests read are in that expander
    for name in SECTIONS:  # the form's sections are lazy: open, their widgets are there to set
        at.session_state[f"pv_x_{name}"] = sections_open
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


arr = plotly_array  # a Plotly JSON array (list or typed array) as numpy


def fired(at: AppTest) -> dict[str, str]:
    # The fired transforms are a static st.table indexed by transform.
    tables = [t.value.reset_index() for t in at.table if t.value.index.name == "transform"]
    return dict(zip(tables[0]["transform"], tables[0]["parameters"])) if tables else {}


def param(text: str, name: str) -> float:
    m = re.search(rf"{name} = (-?[\d.e+-]+)", text)
    assert m, f"{name} not in {text!r}"
    return float(m.group(1))


def rms_db(y: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))))


def only(at: AppTest, *keep: str) -> None:
    """Switch every random transform off except `keep` (widget changes; run afterwards)."""
    for name in SWITCHES:
        at.toggle(key=f"pv_on_{name}").set_value(name in keep)


def slaney_centres(sr: int, fmin: float, fmax: float, n_mels: int) -> np.ndarray:
    """Mel bin centre frequencies, independently of birdcore (librosa's Slaney mel scale)."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax, htk=False)[1:-1]


# ---------------------------------------------------------------------------------------------------
def test_loads_on_demo_with_heatmaps_in_seconds_and_hz(demo):
    t0 = time.perf_counter()
    at = start()  # no BIRDCORE_DATA: the demo dataset is the default
    first = time.perf_counter() - t0
    assert not at.error
    assert at.selectbox(key="pv_species").value == demo.species[0]
    for side in ("orig", "aug"):
        spec = chart(at, f"pv_mel_{side}")
        trace = spec["data"][0]
        assert trace["type"] == "heatmap"
        z = arr(trace["z"])
        assert z.shape == (128, 313)  # hop512: 1 + 5 s * 32000 / 512 frames
        assert spec["layout"]["xaxis"]["title"]["text"] == "time (s)"
        assert spec["layout"]["yaxis"]["title"]["text"] == "frequency (Hz)"
        x = arr(trace["x"])
        assert x[0] == 0.0 and np.allclose(np.diff(x), 512 / 32000)
        hz = np.array([float(v) for v in trace["y"]])
        assert np.allclose(hz, slaney_centres(32000, 20.0, 16000.0, 128), atol=0.5)
        assert all(t.endswith("k") or float(t) < 1000 for t in spec["layout"]["yaxis"]["ticktext"])
        wave = chart(at, f"pv_wave_{side}")
        assert wave["layout"]["xaxis"]["title"]["text"] == "time (s)"
        assert len(arr(wave["data"][0]["y"])) <= 2 * 1500 + 2  # downsampled envelope, not 160,000 points
    assert len([h for h in at.get("iframe") if "bc-player" in str(h.proto)]) == 2  # players with a playhead

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        at.button(key="pv_reroll").click().run()
        times.append(time.perf_counter() - t0)
    ok(at)
    print(f"\nPreview page under AppTest: first run {first:.2f} s; re-roll reruns "
          + ", ".join(f"{t:.2f}" for t in times) + " s")

    at.selectbox(key="pv_mel").set_value("hop320").run()  # the other front end lineage
    ok(at)
    trace = chart(at, "pv_mel_orig")["data"][0]
    assert arr(trace["z"]).shape == (128, 501)
    assert np.allclose([float(v) for v in trace["y"]], slaney_centres(32000, 50.0, 14000.0, 128), atol=0.5)


def test_preview_filename_selects_that_recording_and_window(demo):
    ds = demo
    durations = {f: audio_info(ds.train_audio_dir / f).duration for f in ds.metadata["filename"]}
    candidates = [f for f in durations if not f.startswith(ds.species[0] + "/")]
    target = max(candidates, key=durations.get)  # a long recording of another species than the first
    assert durations[target] > 12

    at = start(target)
    assert not at.error
    assert at.selectbox(key="pv_species").value == target.split("/")[0]
    assert at.selectbox(key="pv_recording").value == target
    assert "preview_filename" not in at.session_state  # consumed: a later EDA click applies again
    assert target in texts(at.caption)
    y = load_audio(ds.train_audio_dir / target, sr=32000, offset=0.0, duration=5.0)
    assert f"Original** · RMS {rms_db(y):.1f} dBFS" in texts(at.markdown)

    slider = at.slider(key="pv_start")
    assert slider.max == pytest.approx(math.floor((durations[target] - 5.0) * 10) / 10)
    slider.set_value(7.0).run()
    ok(at)
    x = arr(chart(at, "pv_mel_orig")["data"][0]["x"])
    assert x[0] == pytest.approx(7.0)  # the time axis is the recording's time
    y = load_audio(ds.train_audio_dir / target, sr=32000, offset=7.0, duration=5.0)
    assert f"Original** · RMS {rms_db(y):.1f} dBFS" in texts(at.markdown)


def test_reroll_changes_augmented_only(demo):
    at = start()
    before_o = arr(chart(at, "pv_mel_orig")["data"][0]["z"]).copy()
    before_a = arr(chart(at, "pv_mel_aug")["data"][0]["z"]).copy()
    assert at.number_input(key="pv_seed").value == 0 and "seed 0" in texts(at.caption)
    at.button(key="pv_reroll").click().run()
    ok(at)
    assert at.number_input(key="pv_seed").value == 1 and "seed 1" in texts(at.caption)
    after_o = arr(chart(at, "pv_mel_orig")["data"][0]["z"])
    after_a = arr(chart(at, "pv_mel_aug")["data"][0]["z"])
    assert np.array_equal(before_o, after_o)
    assert not np.array_equal(before_a, after_a)
    at.number_input(key="pv_seed").set_value(0).run()  # the same seed gives the same picture again
    assert np.array_equal(arr(chart(at, "pv_mel_aug")["data"][0]["z"]), before_a)


def test_fixed_gain_changes_rms_as_reported(demo):
    at = start()
    only(at, "gain")
    at.slider(key="pv_p_gain").set_value(1.0)
    at.number_input(key="pv_gain_min_db").set_value(6.0)
    at.number_input(key="pv_gain_max_db").set_value(6.0).run()
    ok(at)
    assert not at.error
    table = fired(at)
    assert list(table) == ["gain"]
    gain_db = param(table["gain"], "gain_db")
    assert gain_db == pytest.approx(6.0, abs=1e-6)
    metrics = {m.label: m for m in at.metric}
    before = float(metrics["RMS original"].value.split()[0])
    after = float(metrics["RMS augmented"].value.split()[0])
    assert after - before == pytest.approx(gain_db, abs=0.11)  # values shown to 0.1 dB
    assert metrics["RMS augmented"].proto.delta == "+6.0 dB"
    wave_o = arr(chart(at, "pv_wave_orig")["data"][0]["y"]).astype(np.float64)
    wave_a = arr(chart(at, "pv_wave_aug")["data"][0]["y"]).astype(np.float64)
    assert np.allclose(wave_a, wave_o * 10 ** (6 / 20), rtol=1e-4, atol=1e-6)  # the envelope scaled by 2×

    at.toggle(key="pv_enabled").set_value(False).run()  # master switch: nothing fires
    assert fired(at) == {} and "None fired" in texts(at.caption)


def test_denoise_is_reported_and_changes_audio(demo):
    at = start()
    only(at)
    at.toggle(key="pv_denoise").set_value(True).run()
    ok(at)
    table = fired(at)
    assert list(table) == ["denoise"] and "prop_decrease = 0.9" in table["denoise"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["RMS augmented"] != metrics["RMS original"]


def test_min_above_max_shows_the_config_error(demo, isolated_home):
    at = start()
    at.number_input(key="pv_gain_min_db").set_value(10.0)
    at.number_input(key="pv_gain_max_db").set_value(5.0).run()
    ok(at)
    assert "augment.gain.min_db: min 10.0 is greater than max 5.0" in texts(at.error)
    assert not [c for c in at.get("plotly_chart") if "pv_mel_aug" in c.proto.id]
    assert at.button(key="pv_save").disabled
    at.number_input(key="pv_gain_max_db").set_value(12.0).run()  # fixed: the preview is back
    ok(at)
    assert not at.error and chart(at, "pv_mel_aug")

    at.toggle(key="pv_on_background").set_value(True)
    at.text_input(key="pv_background_path").set_value("/no/such/noise").run()  # fails inside the engine
    ok(at)
    assert "augment.background.path: no audio files found under '/no/such/noise'" in texts(at.error)


def test_settings_survive_a_visit_to_another_page(demo):
    at = AppTest.from_file(str(REPO / "app" / "Home.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/2_Preview.py").run()
    ok(at)
    assert not [n for n in at.number_input if n.key == "pv_gain_min_db"]  # its section starts closed
    at.session_state["pv_x_wave"] = True  # open "Waveform"
    at.run()
    at.number_input(key="pv_gain_min_db").set_value(-3.0)
    at.button(key="pv_reroll").click().run()
    at.switch_page("pages/1_EDA.py").run()
    at.switch_page("pages/2_Preview.py").run()
    ok(at)
    # the value, the seed and the open section all come back
    assert at.number_input(key="pv_gain_min_db").value == -3.0 and at.number_input(key="pv_seed").value == 1


def test_save_writes_what_load_returns(demo, isolated_home):
    from birdcore.augment import presets_store
    from birdcore.config.augment import (
        AugmentConfig,
        GainConfig,
        MaskConfig,
        MixupConfig,
    )
    from birdcore.config.base import to_dict

    at = start()
    at.slider(key="pv_p_gain").set_value(0.8)
    at.number_input(key="pv_gain_min_db").set_value(-6.0)
    at.number_input(key="pv_gain_max_db").set_value(3.0)
    at.toggle(key="pv_on_time_mask").set_value(False)
    at.number_input(key="pv_freq_mask_count").set_value(2)
    at.selectbox(key="pv_mixup_mode").set_value("weighted")
    at.text_input(key="pv_save_name").set_value("my aug").run()
    at.button(key="pv_save").click().run()
    ok(at)
    path = isolated_home / "augment" / "my aug.json"
    assert path.is_file() and str(path) in texts(at.success)
    expected = AugmentConfig(gain=GainConfig(p=0.8, min_db=-6.0, max_db=3.0),
                             freq_mask=MaskConfig(p=0.3, count=2, max_width=10),
                             time_mask=MaskConfig(p=0.0, max_width=20), mixup=MixupConfig(mode="weighted"))
    assert presets_store.load("my aug") == expected
    assert json.loads(path.read_text(encoding="utf-8")) == to_dict(expected)  # what the Training page reads

    fresh = start()  # a new session loads it back into the form
    assert fresh.selectbox(key="pv_load_name").options == ["my aug"]
    fresh.selectbox(key="pv_load_name").set_value("my aug").run()
    fresh.button(key="pv_load").click().run()
    ok(fresh)
    assert fresh.slider(key="pv_p_gain").value == 0.8 and fresh.number_input(key="pv_gain_min_db").value == -6.0
    assert fresh.toggle(key="pv_on_time_mask").value is False
    assert "Loaded `my aug`" in texts(fresh.success)

    fresh.text_input(key="pv_save_name").set_value("../escape").run()
    fresh.button(key="pv_save").click().run()
    ok(fresh)
    assert "must not contain" in texts(fresh.error) and not (isolated_home / "escape.json").exists()


def wav_bytes(seconds: float = 3.0, sr: int = 22050) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def test_metadata_only_explains_and_upload_works(real_data_dir, monkeypatch):
    at = start(data=real_data_dir, monkeypatch=monkeypatch)
    assert at.radio(key="pv_source").value == "Upload a file"
    assert "metadata only" in texts(at.info) and at.file_uploader(key="pv_upload")
    at.radio(key="pv_source").set_value("Dataset recording").run()
    info = texts(at.info)
    assert "metadata only" in info and "train_audio" in info and "Upload a file" in info
    assert not at.get("plotly_chart")

    at.radio(key="pv_source").set_value("Upload a file").run()
    at.file_uploader(key="pv_upload").set_value(("tone.wav", wav_bytes(), "audio/wav")).run()
    ok(at)
    assert not at.error
    z = arr(chart(at, "pv_mel_orig")["data"][0]["z"])
    hz = np.array([float(v) for v in chart(at, "pv_mel_orig")["data"][0]["y"]])
    assert hz[z[:, 50:250].mean(axis=1).argmax()] == pytest.approx(2000, rel=0.05)  # the 2-kHz tone
    assert "tone.wav" in texts(at.caption)
    assert len(list(Path(tempfile.gettempdir()).glob("birdcore-upload-*/upload.wav"))) == 1  # one copy per session


def test_bad_upload_shows_audio_error(demo):
    at = start()
    at.radio(key="pv_source").set_value("Upload a file").run()
    at.file_uploader(key="pv_upload").set_value(("broken.ogg", b"OggS not really audio", "audio/ogg")).run()
    ok(at)
    message = texts(at.error)
    assert "uploaded file 'broken.ogg'" in message and "cannot read audio header" in message
    assert "birdcore-upload-" not in message  # the temp copy's path is not shown
    assert not at.get("plotly_chart")


def test_sections_keep_their_label_across_toggles_and_result_is_beside_the_controls(demo):
    """A section (expander) whose label changes is a new widget to Streamlit and collapses: toggling
    transforms must leave every label as it was, while the count inside and the summary move."""
    at = start()
    labels = [e.label for e in at.expander]
    assert "Waveform" in labels and "Spectrogram" in labels
    toggles = [t for t in at.toggle if t.key and t.key.startswith("pv_on_")]
    for t in toggles[:3]:
        before = t.value
        t.set_value(not before).run()
        ok(at)
        assert [e.label for e in at.expander] == labels
    assert "On:" in texts(at.caption) or "No transform is on." in texts(at.caption)
    players = [h for h in at.get("iframe") if "bc-player" in h.proto.srcdoc]
    assert len(players) == 2 and all("data:audio/wav;base64," in h.proto.srcdoc for h in players)
    assert all("data:image/png;base64," in h.proto.srcdoc and "bc-cursor" in h.proto.srcdoc for h in players)
    assert "http" not in " ".join(h.proto.srcdoc for h in players)  # nothing fetched: works offline


def test_zoomable_view_is_closed_until_opened_and_a_remembered_open_is_kept(demo, isolated_home):
    """The four Plotly views are drawn only once their expander is opened; the players show the mels
    meanwhile. A user who opened it before (remembered) finds it open in a new session."""
    from birdcore import settings as app_settings

    at = start(zoomable=False)  # a new user: closed
    assert not at.get("plotly_chart")
    players = [h for h in at.get("iframe") if "bc-cursor" in h.proto.srcdoc]
    assert len(players) == 2  # original and augmented log-mel pictures with a playhead
    at.session_state["pv_zoomable"] = True  # what opening it in the browser sets
    at.run()
    ok(at)
    drawn = sorted(c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart"))
    assert drawn == ["pv_mel_aug", "pv_mel_orig", "pv_wave_aug", "pv_wave_orig"]

    app_settings.update_settings({"preview.zoomable": True})  # what the expander's on_change stores
    fresh = AppTest.from_file(str(PREVIEW), default_timeout=TIMEOUT).run()
    ok(fresh)
    assert fresh.session_state["pv_zoomable"] is True and charts_with_key(fresh, "pv_mel_orig")


def test_closed_sections_draw_no_widgets_and_keep_their_values(demo):
    """The form's sections are lazy: a closed one draws none of its widgets, yet what was set in it
    still makes the config and the preview, also after closing it, a page visit and coming back."""
    at = start(sections_open=False)
    assert not [t for t in at.toggle if t.key and t.key.startswith("pv_on_")]  # nothing drawn while closed
    assert {e.label for e in at.expander} >= {"Noise reduction", "Waveform", "Spectrogram",
                                              "Batch mix & training window"}
    at.session_state["pv_x_wave"] = True  # open "Waveform" (what clicking it does)
    at.run()
    ok(at)
    at.toggle(key="pv_on_gain").set_value(True).run()
    at.number_input(key="pv_gain_min_db").set_value(6.0).run()
    at.number_input(key="pv_gain_max_db").set_value(6.0).run()
    at.session_state["pv_x_wave"] = False  # close it again
    at.run()
    ok(at)
    at.run()  # a second run: Streamlit has dropped the closed section's widget state by now
    ok(at)
    assert not [t for t in at.toggle if t.key == "pv_on_gain"]
    assert "Gain" in texts(at.caption)  # the summary above the sections still counts it on
    fired = [d.value.reset_index() for d in at.table if d.value.index.name == "transform"][0]
    assert "gain" in fired["transform"].tolist()
    gain_row = fired[fired["transform"] == "gain"]["parameters"].iat[0]
    assert "= 6 " in f"{gain_row} " or gain_row.endswith("= 6")  # min = max = 6 dB, set before closing
    at.session_state["pv_x_wave"] = True  # reopened: the widgets show what was set
    at.run()
    assert at.toggle(key="pv_on_gain").value is True and at.number_input(key="pv_gain_min_db").value == 6.0
