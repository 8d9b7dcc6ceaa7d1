"""henasy-bench: benchmark harness and ablation framework for egocentric video-language models.

The package ``henasy`` holds the framework core (``henasy.core``), the data loaders (``henasy.data``), the
synthetic dataset generator (``henasy.synth``), the trainer (``henasy.training``), the ``bench`` entry point
(``henasy.cli``, ``henasy.commands``) and, as a package of its own, the HENASY model (``henasy.model``; Vo et
al., NeurIPS 2024). Baseline models live in ``baselines``, benchmark protocols in ``benchmarks``, sweeps in
``sweeps`` and paper tables in ``reports``; each of the last three owns its own subcommands.
"""

__version__ = "0.1.0"
