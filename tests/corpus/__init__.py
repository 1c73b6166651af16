"""The bad-input corpus and fault scenarios (`tests/corpus/make_corpus.py`).

`make_corpus(root)` writes every bad input under `root` (at test time; no committed binaries)
and returns `Case` objects that say which loader reads the file, which typed error (or which
correct handling) is expected, and how to recognise a clear message; `verify(case)` runs one.
The fault scenarios (killed and concurrent writers, disk full, read-only, killed training runs)
live in the same module. `tests/test_corpus_*.py`, `tests/test_crash_safety.py` and
`benchmarks/reliability_summary.py` all use it, so the summary table and the tests agree.
"""
