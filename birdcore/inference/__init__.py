"""Inference: window recordings, score them with one or more models (PyTorch or ONNX Runtime),
smooth, and write probability tables; export models to ONNX and to a Kaggle bundle."""
