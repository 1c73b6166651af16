"""birdcore — the BirdCLEF workbench engine.

Modules by job, imports flowing one way:
`audio` / `metadata` / `dataset` (data layer) → `features`, `augment`, `cache` (preprocessing) →
`models`, `losses`, `training` (training runs) → `inference`, `metrics`, `thresholds`,
`submission`, `export` (inference and scoring). The Streamlit app in `app/` imports this package;
this package never imports Streamlit.
"""

__version__ = "0.1.0"
