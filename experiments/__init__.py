"""Experiment files: configs/ (method presets), sweeps/ (grids), results/ (committed tables and figures),
and thin scripts (python -m experiments.run / experiments.reproduce). The code is crossmodal.experiments."""
