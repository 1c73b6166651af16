"""Augmentations: per-clip waveform chain (NumPy/audiomentations), batched spectrogram transforms
and batch mixing (torch), all built from one `AugmentConfig`. Entry points live in
`birdcore.augment.pipeline` (`load_training_clip`, `apply_spec_augment`, `mix_batch`) and
`birdcore.augment.preview` (`preview`); importing this package imports neither audiomentations
nor librosa (they load on the first waveform transform built).
"""
