"""Window annotations: round trip, validation, concurrent savers, crash safety, Raven/Audacity, ground truth."""

from __future__ import annotations

import multiprocessing as mp
import re
import threading

import pandas as pd
import pytest

from birdcore.annotation import store as ann
from birdcore.errors import DatasetError

CLASSES = ["aaa1", "bbb1", "ccc1"]


def test_round_trip_replace_and_empty_windows(tmp_path):
    path = ann.default_labels_path(tmp_path)
    assert path == tmp_path / "annotations" / "labels.csv"
    assert ann.read_annotations(path).empty  # no file yet = no labels
    ann.save_window(path, "sc_1", 0, 5, ["bbb1", "aaa1"], annotator="ann", classes=CLASSES)
    ann.save_window(path, "sc_1", 5, 10, [], annotator="bob")  # checked, nothing there
    ann.save_window(path, "sc_2", 0.1 + 0.2, 5.3, ["ccc1"])  # float noise must not split keys
    table = ann.save_window(path, "sc_2", 0.3, 5.3, ["aaa1"])  # same range again: replaces
    back = ann.read_annotations(path, classes=CLASSES)
    pd.testing.assert_frame_equal(back, table)
    assert list(back.columns) == ann.COLUMNS
    assert ann.window_species(back) == {("sc_1", 0.0, 5.0): {"aaa1", "bbb1"}, ("sc_1", 5.0, 10.0): set(),
                                        ("sc_2", 0.3, 5.3): {"aaa1"}}
    assert ann.annotated_windows(back, "sc_1") == {("sc_1", 0.0, 5.0), ("sc_1", 5.0, 10.0)}
    rows = back[back["file_id"] == "sc_1"]
    assert list(rows["species"]) == ["aaa1", "bbb1", ""] and list(rows["annotator"]) == ["ann", "ann", "bob"]
    assert all(t.endswith("+00:00") for t in back["updated_at"])
    text = path.read_text()
    assert text.startswith("file_id,start,end,species,annotator,updated_at,low_hz,high_hz\n") and text.endswith("\n")
    assert "sc_2,0.3,5.3,aaa1," in text  # millisecond keys, no float noise in the file
    assert back["low_hz"].isna().all() and text.splitlines()[1].endswith("+00:00,,")  # no band: empty cells
    with pytest.raises(DatasetError, match="unknown species code"):
        ann.save_window(path, "sc_1", 0, 5, ["zzz9"], classes=CLASSES)
    with pytest.raises(DatasetError, match="start < end"):
        ann.save_window(path, "sc_1", 5, 5, ["aaa1"])


GOOD_ROW = "sc_1,0,5,aaa1,ann,2026-01-01T00:00:00+00:00\n"


@pytest.mark.parametrize("body, message", [
    ("file_id,start,end,species,annotator,updated_at,extra\n", re.escape("line 1: unknown column(s) ['extra']")),
    ("file_id,start,end,species\n", re.escape("missing column(s) ['annotator', 'updated_at']")),
    (GOOD_ROW + "sc_1,five,10,aaa1,ann,2026-01-01T00:00:00+00:00\n", "line 3, field start: 'five' is not a number"),
    (GOOD_ROW + "sc_1,10,5,aaa1,ann,\n", "line 3, field end: '5' is not after start"),
    (GOOD_ROW + "sc_1,5,10,zzz9,ann,\n", "line 3, field species: unknown species code 'zzz9'"),
    (GOOD_ROW + ",5,10,aaa1,ann,\n", "line 3, field file_id: empty"),
    (GOOD_ROW + "sc_1,5,10,aa", "line 3: expected 6 fields, got 4 — the file looks truncated"),
    (GOOD_ROW + "sc_1,5,10,aaa1,ann,2026-01-01T00:0", "line 3, field updated_at: .* looks truncated"),
])
def test_invalid_files_name_file_line_and_field(tmp_path, body, message):
    path = tmp_path / "labels.csv"
    header = "" if body.startswith("file_id") else ",".join(ann.COLUMNS[:6]) + "\n"  # six columns: no bands
    path.write_text(header + body)
    with pytest.raises(DatasetError, match=message) as err:
        ann.read_annotations(path, classes=CLASSES)
    assert str(path) in str(err.value)


def test_empty_file_is_reported_and_never_overwritten(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty file"):
        ann.read_annotations(path)
    path.write_text(",".join(ann.COLUMNS) + "\nsc_1,5,10,aa")  # truncated: a save must not drop its rows
    with pytest.raises(DatasetError, match="truncated"):
        ann.save_window(path, "sc_1", 0, 5, ["aaa1"])
    assert path.read_text().endswith("sc_1,5,10,aa")


def _writer(path: str, file_id: str, n: int) -> None:
    for i in range(n):
        ann.save_window(path, file_id, i * 5, i * 5 + 5, ["aaa1"] if i % 2 else [], annotator=file_id)


@pytest.mark.slow
def test_concurrent_writers_lose_nothing_and_file_always_parses(tmp_path):
    path = tmp_path / "labels.csv"
    n = 40
    stop, seen, problems = threading.Event(), [], []

    def reader() -> None:  # a third party reading all along: never a torn or half-written file
        while not stop.is_set():
            try:
                seen.append(len(ann.read_annotations(path)))
            except Exception as exc:  # noqa: BLE001 - any failure is the bug under test
                problems.append(repr(exc))

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), f"writer_{k}", n)) for k in range(2)]
    for p in procs:  # fork before starting the reader thread: forking a threaded process can deadlock
        p.start()
    watcher = threading.Thread(target=reader)
    watcher.start()
    for p in procs:
        p.join(60)
    stop.set()
    watcher.join()
    assert all(p.exitcode == 0 for p in procs)
    assert not problems, problems[:3]
    final = ann.read_annotations(path)
    keys = ann.annotated_windows(final)
    assert len(keys) == 2 * n and len(final) == 2 * n  # one row per window: "" or aaa1
    for k in range(2):
        assert {(f"writer_{k}", i * 5.0, i * 5.0 + 5) for i in range(n)} <= keys
    assert seen == sorted(seen)  # rows only ever grow: no save undid another's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "labels.csv.lock"]  # no temp files left


def test_threads_in_one_process_also_serialise(tmp_path):
    path = tmp_path / "labels.csv"
    threads = [threading.Thread(target=_writer, args=(str(path), f"t{k}", 15)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ann.annotated_windows(ann.read_annotations(path))) == 45


def test_crash_during_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "labels.csv"
    for i in range(5):
        ann.save_window(path, "sc_1", i * 5, i * 5 + 5, ["aaa1"])
    before = path.read_bytes()
    real, calls = ann._format_row, []

    def dying(row):  # the disk "fails" after two rows of the new file were written
        calls.append(row)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real(row)

    monkeypatch.setattr(ann, "_format_row", dying)
    with pytest.raises(OSError, match="(?i)no space left"):  # maybe wrapped as StorageError
        ann.save_window(path, "sc_1", 100, 105, ["bbb1"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "labels.csv.lock"]
    monkeypatch.undo()
    assert len(ann.save_window(path, "sc_1", 100, 105, ["bbb1"])) == 6  # the lock was released


def test_raven_selection_table(tmp_path):
    path = tmp_path / "labels.csv"
    ann.save_window(path, "sc_2", 5, 10, ["ccc1"])
    ann.save_window(path, "sc_1", 0, 5, ["bbb1", "aaa1"])
    table = ann.save_window(path, "sc_1", 5, 10, [])
    raven = ann.raven_table(table, high_hz=14000)
    assert list(raven.columns) == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                                   "High Freq (Hz)", "Species Code", "file"]
    assert raven["Selection"].tolist() == [1, 2, 3]
    assert raven["Species Code"].tolist() == ["aaa1", "bbb1", "ccc1"]
    assert raven["file"].tolist() == ["sc_1", "sc_1", "sc_2"]
    assert raven["Begin Time (s)"].tolist() == [0.0, 0.0, 5.0] and raven["End Time (s)"].tolist() == [5.0, 5.0, 10.0]
    assert set(raven["High Freq (Hz)"]) == {14000.0} and set(raven["View"]) == {"Spectrogram 1"}
    lines = ann.raven_text(table).splitlines()
    assert lines[0].split("\t") == ann.RAVEN_COLUMNS
    assert lines[1].split("\t") == ["1", "Spectrogram 1", "1", "0.000", "5.000", "0.000", "16000.000", "aaa1", "sc_1"]
    assert len(ann.raven_table(table, include_empty=True)) == 4


def test_audacity_import_of_spinetail(real_audio_dir):
    boxes = ann.read_audacity_labels(real_audio_dir / "spinetail.txt")
    crer = boxes[boxes["label"] == "CRER"]
    assert len(crer) == 4 and set(boxes["label"]) == {"SP", "CRER"}
    first = crer.iloc[0]
    assert (first["start"], first["end"]) == pytest.approx((0.506924, 3.041545))
    assert (first["low_hz"], first["high_hz"]) == pytest.approx((2593.156006, 8866.920898))
    rows = ann.audacity_to_annotations(boxes, "spinetail", annotator="import", duration=20.0)
    assert len(rows) == len(boxes) + 1 and (rows["species"] == "CRER").sum() == 4
    first_row = rows[rows["species"] == "CRER"].iloc[0]  # the spectral selection becomes the label's band
    assert (first_row["low_hz"], first_row["high_hz"]) == pytest.approx((2593.156, 8866.921))
    assert rows[rows["species"] == ""]["low_hz"].isna().all()  # the whole-recording "checked" row: no band
    assert ((rows["species"] == "") & (rows["start"] == 0) & (rows["end"] == 20.0)).sum() == 1


def test_audacity_errors(tmp_path):
    bad = tmp_path / "labels.txt"
    bad.write_text("0.5\t1.0\tCRER\n\\\tlow\t900\n")
    with pytest.raises(DatasetError, match="line 2, field low_hz"):
        ann.read_audacity_labels(bad)
    bad.write_text("0.5\n")
    with pytest.raises(DatasetError, match="line 1: expected start<TAB>end<TAB>label"):
        ann.read_audacity_labels(bad)


def test_annotations_to_labels_hand_case():
    test = pd.DataFrame([(f"{f}_{b}_{e}", f, b, e) for f in ("f", "g") for b in ("aaa1", "bbb1") for e in (5, 10, 15)],
                        columns=["row_id", "file_id", "bird", "end_time"])
    rows = [("f", 0, 5, "aaa1"), ("f", 5, 10, ""),  # window 10–15 of f: nobody listened
            ("g", 0, 10, ""), ("g", 3.0, 7.2, "bbb1"),  # a call across the 5-s boundary: both windows
            ("g", 9.8, 10.3, "aaa1")]  # 0.2 s in window 5–10 < half its 0.5 s: not there; window 10–15 unchecked
    ann_df = pd.DataFrame([(*r, "", "") for r in rows], columns=ann.COLUMNS[:6])  # a table without bands
    got = ann.annotations_to_labels(ann_df, test)
    assert dict(zip(got["row_id"], got["target"])) == {
        "f_aaa1_5": True, "f_aaa1_10": False, "f_bbb1_5": False, "f_bbb1_10": False,
        "g_aaa1_5": False, "g_aaa1_10": False, "g_bbb1_5": True, "g_bbb1_10": True}
    assert got["row_id"].tolist() == [r for r in test["row_id"] if r in set(got["row_id"])]  # test.csv order
    full = ann.annotations_to_labels(ann_df, test, unannotated="false")
    assert full["row_id"].tolist() == test["row_id"].tolist() and full["target"].sum() == 3
    assert ann.annotations_to_labels(ann.empty_annotations(), test).empty


def test_write_labels_table(tmp_path):
    table = pd.DataFrame({"row_id": ["a_x_5", "a_x_10"], "target": [True, False]})
    out = ann.write_labels_table(tmp_path / "gt.csv", table)
    assert out.read_text() == "row_id,target\na_x_5,True\na_x_10,False\n"


def test_labels_path_that_is_a_folder_is_a_clear_error(tmp_path):
    from birdcore.annotation.store import read_annotations
    from birdcore.errors import DatasetError

    (tmp_path / "labels.csv").mkdir()
    with pytest.raises(DatasetError, match=r"labels\.csv: cannot read the labels file"):
        read_annotations(tmp_path / "labels.csv")


def test_raven_tables_one_per_file_and_remove_window(tmp_path):
    import io
    import zipfile

    from birdcore.annotation import queue

    path = tmp_path / "labels.csv"
    ann.save_windows(path, [("sc_2", 5, 10, ["ccc1"]), ("sc_1", 0, 5, ["bbb1", "aaa1"]), ("sc_1", 5, 10, [])])
    tables = ann.raven_tables(ann.read_annotations(path), low_hz=500, high_hz=9000)
    assert list(tables) == ["sc_1", "sc_2"]
    one = tables["sc_1"]
    assert list(one.columns) == ann.RAVEN_FILE_COLUMNS and one["Selection"].tolist() == [1, 2]
    assert one["Species Code"].tolist() == ["aaa1", "bbb1"] and set(one["Low Freq (Hz)"]) == {500.0}
    assert tables["sc_2"]["Selection"].tolist() == [1] and tables["sc_2"]["Begin Time (s)"].tolist() == [5.0]
    with zipfile.ZipFile(io.BytesIO(ann.raven_zip(ann.read_annotations(path), high_hz=9000))) as zf:
        assert sorted(zf.namelist()) == ["sc_1.Table.1.selections.txt", "sc_2.Table.1.selections.txt"]
        text = zf.read("sc_2.Table.1.selections.txt").decode()
    assert text.splitlines() == ["\t".join(ann.RAVEN_FILE_COLUMNS),
                                 "1\tSpectrogram 1\t1\t5.000\t10.000\t0.000\t9000.000\tccc1"]
    assert ann.raven_file_name("a/b c") == "a_b_c.Table.1.selections.txt"

    left = ann.remove_window(path, "sc_1", 0, 5)
    assert set(ann.window_species(left)) == {("sc_1", 5.0, 10.0), ("sc_2", 5.0, 10.0)}
    assert ann.read_annotations(path).equals(left)
    assert queue.context_span(5, 10, 60) == (0.0, 15.0) and queue.context_span(0, 5, 7.5) == (0.0, 7.5)
    assert queue.context_span(50, 55, None, neighbours=2) == (40.0, 65.0)
    assert queue.window_edges(0.0, 15.0) == [0.0, 5.0, 10.0, 15.0] and queue.window_edges(2.5, 9) == [5.0]


# ---- frequency bands (low_hz, high_hz) ---------------------------------------------------------------------
OLD_HEADER = "file_id,start,end,species,annotator,updated_at"  # files written before bands existed


def test_bands_round_trip_and_survive_other_saves_removes_and_merges(tmp_path):
    path = tmp_path / "labels.csv"
    ann.save_windows(path, [("sc_1", 0, 5, ["bbb1", "aaa1"], (1000, 8000.5)),  # 5th element: the band
                            ("sc_1", 5, 10, [], (250.0, 4000.0)),  # a "no bird" row carries its band too
                            ("sc_1", 10, 15, ["ccc1"], None),
                            ("sc_2", 0, 5, ["aaa1"])])  # a 4-tuple as before: no band
    table = ann.save_window(path, "sc_3", 0, 5, ["ccc1"], band=(500, 12000))
    back = ann.read_annotations(path, classes=CLASSES)
    pd.testing.assert_frame_equal(back, table)
    assert list(back.columns) == ann.COLUMNS
    want = {("sc_1", 0.0, 5.0): (1000.0, 8000.5), ("sc_1", 5.0, 10.0): (250.0, 4000.0), ("sc_1", 10.0, 15.0): None,
            ("sc_2", 0.0, 5.0): None, ("sc_3", 0.0, 5.0): (500.0, 12000.0)}
    assert ann.window_bands(back) == want
    both = back[(back["file_id"] == "sc_1") & (back["start"] == 0)]
    assert both["low_hz"].tolist() == [1000.0, 1000.0] and both["high_hz"].tolist() == [8000.5, 8000.5]
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(ann.COLUMNS)
    assert [ln.split(",")[-2:] for ln in lines[1:4]] == [["1000", "8000.5"], ["1000", "8000.5"], ["250", "4000"]]

    # A rewrite for another window (save, re-save without band, remove) leaves the other bands alone.
    ann.save_window(path, "sc_2", 0, 5, ["bbb1"], band=(2000, 3000))
    ann.save_window(path, "sc_3", 0, 5, ["ccc1"])  # re-saved without a band: its band goes
    after = ann.remove_window(path, "sc_1", 10, 15)
    assert ann.window_bands(ann.read_annotations(path)) == ann.window_bands(after) == {
        **{k: v for k, v in want.items() if k != ("sc_1", 10.0, 15.0)},
        ("sc_2", 0.0, 5.0): (2000.0, 3000.0), ("sc_3", 0.0, 5.0): None}


@pytest.mark.parametrize("band, why", [
    ((8000, 1000), "need finite 0 <= low_hz < high_hz"), ((1000, 1000), "need finite 0 <= low_hz < high_hz"),
    ((-5, 1000), "need finite"), ((float("nan"), 1000), "need finite"), ((0, float("inf")), "need finite"),
    (("low", 900), "could not convert"), ((1000,), "not enough values"),
])
def test_save_refuses_a_bad_band_and_keeps_the_file(tmp_path, band, why):
    path = tmp_path / "labels.csv"
    ann.save_window(path, "sc_1", 0, 5, ["aaa1"], band=(100, 200))
    before = path.read_bytes()
    message = f"cannot save sc_1 5.0–10.0 s with band {band!r} ({why}"
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        ann.save_window(path, "sc_1", 5, 10, ["aaa1"], band=band)
    assert str(err.value).startswith(str(path))
    with pytest.raises(DatasetError, match=re.escape(message)):
        ann.save_windows(path, [("sc_1", 5, 10, ["aaa1"], band)])
    assert path.read_bytes() == before


def test_old_six_column_file_reads_without_bands_and_keeps_its_rows_on_save(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(OLD_HEADER + "\n" + GOOD_ROW + "sc_1,5,10,,bob,2026-01-01T00:00:01+00:00\n")
    old = ann.read_annotations(path, classes=CLASSES)
    assert list(old.columns) == ann.COLUMNS and len(old) == 2
    assert old["low_hz"].isna().all() and old["high_hz"].isna().all()
    assert ann.window_bands(old) == {("sc_1", 0.0, 5.0): None, ("sc_1", 5.0, 10.0): None}
    assert ann.read_annotations(tmp_path / "none.csv").columns.tolist() == ann.COLUMNS  # empty table: same columns
    ann.save_window(path, "sc_2", 0, 5, ["bbb1"], band=(1500, 6000))  # the first save of new code
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(ann.COLUMNS)  # upgraded to eight columns
    assert lines[1:3] == [GOOD_ROW.strip() + ",,", "sc_1,5,10,,bob,2026-01-01T00:00:01+00:00,,"]
    new = ann.read_annotations(path, classes=CLASSES)
    pd.testing.assert_frame_equal(new[new["file_id"] == "sc_1"].reset_index(drop=True), old)
    assert ann.window_bands(new)[("sc_2", 0.0, 5.0)] == (1500.0, 6000.0)


BAND_HEADER = ",".join(ann.COLUMNS) + "\n"
GOOD_BAND_ROW = "sc_1,0,5,aaa1,ann,2026-01-01T00:00:00+00:00,1000,8000\n"
ROW = "sc_1,5,10,aaa1,ann,2026-01-01T00:00:00+00:00,"


@pytest.mark.parametrize("body, message", [
    (GOOD_BAND_ROW + ROW + "1000,\n", "line 3, field high_hz: empty while low_hz is '1000' (give both or neither)"),
    (GOOD_BAND_ROW + ROW + ",8000\n", "line 3, field low_hz: empty while high_hz is '8000'"),
    (GOOD_BAND_ROW + ROW + "8000,1000\n", "line 3, field high_hz: '1000' is not above low_hz '8000'"),
    (GOOD_BAND_ROW + ROW + "1000,1000\n", "line 3, field high_hz: '1000' is not above low_hz '1000'"),
    (GOOD_BAND_ROW + ROW + "-1,1000\n", "line 3, field low_hz: '-1' is negative"),
    (GOOD_BAND_ROW + ROW + "low,1000\n", "line 3, field low_hz: 'low' is not a number (Hz)"),
    (GOOD_BAND_ROW + ROW + "0,high\n", "line 3, field high_hz: 'high' is not a number (Hz)"),
    (GOOD_BAND_ROW + ROW + "0,inf\n", "line 3, field high_hz: 'inf' is not a finite number"),
    (GOOD_BAND_ROW + ROW + "0\n", "line 3: expected 8 fields, got 7"),
])
def test_invalid_bands_name_file_line_and_field(tmp_path, body, message):
    path = tmp_path / "labels.csv"
    path.write_text(BAND_HEADER + body)
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        ann.read_annotations(path, classes=CLASSES)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("header, message", [
    (OLD_HEADER + ",low_hz", "line 1: missing column(s) ['high_hz']"),
    (OLD_HEADER + ",high_hz", "line 1: missing column(s) ['low_hz']"),
    (OLD_HEADER + ",low_hz,high_hz,mid_hz", "line 1: unknown column(s) ['mid_hz']"),
])
def test_band_columns_come_together_and_unknown_columns_still_fail(tmp_path, header, message):
    path = tmp_path / "labels.csv"
    path.write_text(header + "\n")
    with pytest.raises(DatasetError, match=re.escape(message)):
        ann.read_annotations(path)


def test_raven_uses_each_labels_band_else_the_default(tmp_path):
    import io
    import zipfile

    path = tmp_path / "labels.csv"
    ann.save_windows(path, [("sc_1", 0, 5, ["bbb1", "aaa1"], (1000, 8000)), ("sc_1", 5, 10, ["ccc1"]),
                            ("sc_2", 5, 10, ["ccc1"], (2500.25, 4000)), ("sc_2", 10, 15, [], (100, 200))])
    saved = ann.read_annotations(path)
    tables = ann.raven_tables(saved, low_hz=500, high_hz=9000)
    one = tables["sc_1"]
    assert one["Species Code"].tolist() == ["aaa1", "bbb1", "ccc1"]
    assert one["Low Freq (Hz)"].tolist() == [1000.0, 1000.0, 500.0]  # ccc1 has no band: the default
    assert one["High Freq (Hz)"].tolist() == [8000.0, 8000.0, 9000.0]
    assert tables["sc_2"][["Low Freq (Hz)", "High Freq (Hz)"]].values.tolist() == [[2500.25, 4000.0]]
    with_empty = ann.raven_table(saved, include_empty=True)  # default 0–16 kHz for rows without a band
    assert with_empty[["Low Freq (Hz)", "High Freq (Hz)"]].values.tolist() == [
        [1000.0, 8000.0], [1000.0, 8000.0], [0.0, 16000.0], [2500.25, 4000.0], [100.0, 200.0]]
    with zipfile.ZipFile(io.BytesIO(ann.raven_zip(saved, low_hz=500, high_hz=9000))) as zf:
        text = zf.read("sc_1.Table.1.selections.txt").decode()
    assert text.splitlines()[1:] == ["1\tSpectrogram 1\t1\t0.000\t5.000\t1000.000\t8000.000\taaa1",
                                     "2\tSpectrogram 1\t1\t0.000\t5.000\t1000.000\t8000.000\tbbb1",
                                     "3\tSpectrogram 1\t1\t5.000\t10.000\t500.000\t9000.000\tccc1"]
    assert ann.raven_text(saved).splitlines()[3].split("\t")[5:7] == ["0.000", "16000.000"]
    # A table without band columns (the agile export's) spans the default everywhere.
    bare = saved[ann.COLUMNS[:4]]
    assert set(ann.raven_table(bare, low_hz=300)["Low Freq (Hz)"]) == {300.0}
