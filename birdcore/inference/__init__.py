"""Inference: window recordings, score them with one or more models (PyTorch or ONNX Runtime),
smooth, and write probability tables; export models to ONNX.

Public API: `base` (`ScorerInfo`, the exported folder's file names), `scorers` (`load_scorer`,
`TorchScorer`, `OnnxScorer`, `BirdnetHeadScorer`), `predict` (`predict_files`, `PredictOptions`,
`write_predictions`), `birdnet_baseline` (`predict_birdnet`: BirdNET's own scores, the one path),
`catalog` (`find_models`, `load_model`, `predict_table`: models a user can pick), `run_model`
(`load_run_model`) and `export` (`export_onnx_model`, `export_onnx`).
"""
