"""Labelled recordings from anywhere into a training dataset (`birdcore import`).

Public API: `import_recordings` (`birdcore.ingest.importer`), `LabelResolver`
(`birdcore.ingest.labels`), and the source readers of `birdcore.ingest.sources`.
"""
