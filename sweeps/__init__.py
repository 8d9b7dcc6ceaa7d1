"""Sweeps: ablation and table specs (YAML, next to this file) and the machinery that runs them.

``bench sweep SPEC`` loads a spec (``sweeps.spec``), expands it into runs with deterministic ids
(``sweeps.expand``), submits one checkpointable job per run through submitit (``sweeps.executors``,
``sweeps.job``), records them in a manifest (``sweeps.manifest``), tracks them in MLflow
(``sweeps.tracking``) and follows them (``sweeps.monitor``); ``sweeps.optuna_search`` runs a spec's Optuna
search. The spec files are the registry: ``bench list sweeps`` and name resolution read them
(``sweeps.spec.shipped_specs``); adding a sweep is adding one YAML file.
"""

from __future__ import annotations

from pathlib import Path

SPEC_ROOT = Path(__file__).resolve().parent
