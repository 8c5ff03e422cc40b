"""Experiments as code: sweeps (:mod:`crossmodal.experiments.sweep`, ``crossmodal sweep``) and the
regeneration of the committed result folders (:mod:`crossmodal.experiments.reproduce`,
``crossmodal reproduce``). The sweep files, configs and results live in the repository's
``experiments/`` folder; the configs also ship as package data (``crossmodal/_configs``)."""
