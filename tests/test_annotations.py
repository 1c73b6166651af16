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
    assert text.startswith("file_id,start,end,species,annotator,updated_at\n") and text.endswith("\n")
    assert "sc_2,0.3,5.3,aaa1," in text  # millisecond keys, no float noise in the file
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
    header = "" if body.startswith("file_id") else ",".join(ann.COLUMNS) + "\n"
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
    ann_df = pd.DataFrame([(*r, "", "") for r in rows], columns=ann.COLUMNS)
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
