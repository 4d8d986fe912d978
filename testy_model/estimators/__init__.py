"""Per-action energy (``energy_table``) and area (``area``) estimators."""
