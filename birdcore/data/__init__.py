"""The BirdCLEF dataset layout: metadata, the typed dataset, and files users hand to the app.

Public API: `dataset` (`load_dataset`, `BirdDataset`), `metadata` (`read_train_metadata`,
`read_taxonomy`, `read_test_table`, `NEGATIVE_LABEL`, `SPAN_COLUMNS`), `uploads`
(`store_upload`) and `scratch` (temporary copies of uploads).
"""
