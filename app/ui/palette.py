"""The app's colours, one place for the charts (`charts`, `geo_map`, `figures`) and the picture charts
(`pictures`)."""

BASE = "#3a7ca5"     # every ordinary bar / point
HIGHLIGHT = "#e4572e"  # scored species, the thing to notice
MUTED = "#a0aab4"
HEAT = "Blues"
