"""The project's registries: models and benchmarks.

Each entry is a lazy ``"module:attr"`` import string with a one-line description, so ``bench list`` and
``bench --help`` answer without importing torch. A capability adds its entries here when it lands.
Models and benchmarks may also come from other packages (entry-point groups ``MODEL_ENTRY_POINTS`` and
``BENCHMARK_ENTRY_POINTS``) or from ``bench --include`` files: see ``henasy.core.registry`` for that API.
"""

from __future__ import annotations

from henasy.core.registry import Registry

MODEL_ENTRY_POINTS = "henasy_bench.models"
BENCHMARK_ENTRY_POINTS = "henasy_bench.benchmarks"

MODELS: Registry = Registry("model", entry_point_group=MODEL_ENTRY_POINTS)
BENCHMARKS: Registry = Registry("benchmark", entry_point_group=BENCHMARK_ENTRY_POINTS)

# Sweeps and tables have no registry here: their spec files are the list (``sweeps.spec.shipped_specs``,
# ``reports.spec.list_table_ids``), so adding one is adding one YAML file.
REGISTRIES: dict[str, Registry] = {"models": MODELS, "benchmarks": BENCHMARKS}

# Models: "module:factory" where factory(**arch) -> nn.Module following henasy.core.interface.VideoTextModel,
# built by henasy.core.factory.create_model (which also loads weights: checkpoint / backbone_checkpoint).
MODELS.add(
    "lavila",
    "baselines.lavila:lavila_tsf_base",
    "LaViLa dual encoder, TSF-B + CLIP text, 4 frames, 224 px (paper preset, 177.7 M)",
)
MODELS.add(
    "lavila_tiny",
    "baselines.lavila:lavila_tiny",
    "LaViLa dual encoder, tiny preset that trains on the CPU in seconds",
)
MODELS.add(
    "helpinghands",
    "baselines.helpinghands:helpinghands_tsf_base",
    "HelpingHands object-aware decoder on a frozen LaViLa TSF-B, as in HENASY's comparison (216.5 M)",
)
MODELS.add(
    "helpinghands_tsfl",
    "baselines.helpinghands:helpinghands_tsfl",
    "HelpingHands as released: object-aware decoder on a frozen LaViLa TSF-L",
)
MODELS.add(
    "helpinghands_tiny",
    "baselines.helpinghands:helpinghands_tiny",
    "HelpingHands on lavila_tiny, trains on the CPU in seconds",
)
MODELS.add(
    "henasy",
    "henasy.model.network:henasy_paper",
    "HENASY: frozen LaViLa TSF-B + local entity encoder (G=64, E=8, S1/S2/S3 6/3/3) + entity-aware decoder (paper preset, 291.4 M)",
)
MODELS.add(
    "henasy_tiny", "henasy.model.network:henasy_tiny", "HENASY on lavila_tiny: trains on the CPU in seconds"
)

# Benchmarks: "benchmarks.<name>:BENCHMARK" (a benchmarks.context.Benchmark); run by benchmarks.runner.evaluate.
BENCHMARKS.add(
    "egomcq", "benchmarks.egomcq:BENCHMARK", "EgoMCQ zero-shot: 5-way clip choice, accuracy inter/intra (%)"
)
BENCHMARKS.add(
    "ek100_mir",
    "benchmarks.ek100_mir:BENCHMARK",
    "EK100-MIR zero-shot: V→T / T→V mAP and nDCG (JPoSE metrics, %)",
)
BENCHMARKS.add(
    "ek100_cls",
    "benchmarks.ek100_cls:BENCHMARK",
    "EK100-CLS zero-shot (LaViLa): verb:noun action classes from narrations, top-1/top-5 (%)",
)
BENCHMARKS.add(
    "egtea",
    "benchmarks.egtea:BENCHMARK",
    "EGTEA zero-shot: LaViLa split-1 (10x3 views) or HelpingHands 3-split protocol, top-1 / mean class acc (%)",
)
BENCHMARKS.add(
    "egonlq",
    "benchmarks.egonlq:BENCHMARK",
    "EgoNLQ: VSLNet-style head on cached window features, official R@{1,5} IoU>{0.3,0.5} (%)",
)
BENCHMARKS.add(
    "egomq",
    "benchmarks.egomq:BENCHMARK",
    "EgoMQ: multi-scale detection head on cached window features, official mAP and R@{1,5}@0.5 (%)",
)
BENCHMARKS.add(
    "grounding",
    "benchmarks.grounding:BENCHMARK",
    "Visual grounding (HENASY App. D): mIoU of model.ground masks vs GT masks (%)",
)
