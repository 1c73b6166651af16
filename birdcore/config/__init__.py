"""Typed dataclass configs, one source of truth for every default, and the presets.

Public API: `run` (`RunConfig`, `load_run_config`, `PRESETS`), `base` (`from_dict`, `to_dict`,
`apply_overrides`), and the sections `data`, `features` (`MelConfig`, `mel_preset`,
`DenoiseConfig`), `augment`, `model`, `train`. Every field is validated when it is read.
"""
