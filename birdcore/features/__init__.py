"""Feature extraction: the log-mel front end (`mel_frontend`) and optional denoising (`denoise`)."""
