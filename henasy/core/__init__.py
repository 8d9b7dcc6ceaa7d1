"""The framework core every other package builds on: one owner per concept.

``errors`` (user-input errors), ``registry`` / ``catalog`` (registered models and benchmarks, plugins through
entry points), ``plugins`` (``--include``), ``interface`` (what a model must provide), ``factory``
(``create_model``: the one way a model is built and its weights loaded), ``checkpoints`` (safe loading and
key checks), ``overrides`` (``--set`` / spec overrides: parse → nest → validate → apply), ``records`` (result
record schema and MLflow names), ``specfile`` (YAML spec files with line numbers), ``atomic`` / ``runlock``
(nothing half-written, one writer per run folder), and the losses several models share: ``egonce``
(EgoNCE, paper §3 Eq. 1) with ``distributed`` (gathering a batch across processes). ``SCALES`` (below) names
the run scales: the ``scales:`` sections of sweep specs (``sweeps.spec``) and every ``--scale`` option.

Nothing here imports the command line, ``sweeps``, ``reports`` or ``benchmarks`` code at module level.
"""

SCALES = ("smoke", "synth", "paper")  # synth: the longer synthetic study (tiny models, smoke preset)
