"""The bad-input corpus and the crash/fault-injection harness.

`make_corpus.py`: `make_corpus(root)` writes every bad input under `root` (at test time; no
committed binaries) and returns `Case` objects that say which loader reads the file, which typed
error (or which correct handling) is expected, and how to recognise a clear message;
`verify(case)` runs one. Used by `tests/test_corpus_*.py`.

`crash_harness.py`: the fault scenarios (killed and concurrent writers, disk full, read-only,
killed training runs), each returning a `Fault`. Used by `tests/test_crash_safety.py`.

`benchmarks/reliability_summary.py` tabulates both, so the summary table and the tests agree.
"""
