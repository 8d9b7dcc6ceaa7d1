"""Sweeps: ablation and table specs (YAML, next to this file) and the machinery that runs them.

``bench sweep SPEC`` loads a spec (``sweeps.spec``), expands it into runs with deterministic ids
(``sweeps.expand``), submits one checkpointable job per run through submitit (``sweeps.executors``,
``sweeps.job``), records them in a manifest (``sweeps.manifest``), tracks them in MLflow
(``sweeps.tracking``) and follows them (``sweeps.monitor``); ``sweeps.optuna_search`` runs a spec's Optuna
search. The shipped specs are registered in ``henasy.catalog.SWEEPS`` with target ``sweeps:spec_path``.
"""

from __future__ import annotations

from pathlib import Path

SPEC_ROOT = Path(__file__).resolve().parent


def spec_path(relative: str) -> Path:
    """The file of a shipped spec, e.g. ``spec_path("ablations/losses.yaml")`` (the SWEEPS registry target)."""
    return SPEC_ROOT / relative
