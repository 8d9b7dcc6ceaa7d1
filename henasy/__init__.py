"""henasy-bench: benchmark harness and ablation framework for egocentric video-language models.

The package ``henasy`` holds the shared machinery (registries, the ``bench`` command line, data loaders,
the synthetic dataset generator, the trainer) and the HENASY model itself (Vo et al., NeurIPS
2024). Baseline models live in ``baselines``, benchmark protocols in ``benchmarks``,
sweep specs in ``sweeps`` and paper tables in ``reports``.
"""

__version__ = "0.1.0"
