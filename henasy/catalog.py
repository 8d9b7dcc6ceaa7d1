"""The project's registries: models, benchmarks, sweeps and tables.

Each entry is a lazy ``"module:attr"`` import string with a one-line description, so ``bench list`` and
``bench --help`` answer without importing torch. A capability adds its entries here when it lands.
"""

from __future__ import annotations

from henasy.registry import Registry

MODELS: Registry = Registry("model")
BENCHMARKS: Registry = Registry("benchmark")
SWEEPS: Registry = Registry("sweep")
TABLES: Registry = Registry("table")

REGISTRIES: dict[str, Registry] = {
    "models": MODELS,
    "benchmarks": BENCHMARKS,
    "sweeps": SWEEPS,
    "tables": TABLES,
}

# Models: "module:factory" where factory(**overrides) -> nn.Module following henasy.interface.VideoTextModel.
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
    "henasy.model:henasy_paper",
    "HENASY: frozen LaViLa TSF-B + local entity encoder (G=64, E=8, S1/S2/S3 6/3/3) + entity-aware decoder (paper preset, 279.5 M)",
)
MODELS.add("henasy_tiny", "henasy.model:henasy_tiny", "HENASY on lavila_tiny: trains on the CPU in seconds")

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

# Sweeps: every entry's target is ``sweeps:spec_path`` and its ``path`` tag the spec file under sweeps/;
# ``bench sweep NAME`` resolves NAME through ``sweeps.spec.resolve_spec_path`` (file, sweeps/ name, entry).
SWEEPS.add(
    "ablations/losses",
    "sweeps:spec_path",
    "HENASY Table 3: six loss settings (EgoNCE + NEC/VEC/proj)",
    path="ablations/losses.yaml",
    table="3",
)
SWEEPS.add(
    "ablations/architecture",
    "sweeps:spec_path",
    "HENASY Table 4: avg. pool / SA decoder / no bootstrap / complete",
    path="ablations/architecture.yaml",
    table="4",
)
SWEEPS.add(
    "tables/table1",
    "sweeps:spec_path",
    "HENASY Table 1: zero-shot EgoMCQ, EK100-MIR, EK100-CLS, EGTEA for LaViLa, HelpingHands, HENASY",
    path="tables/table1.yaml",
    table="1",
)
SWEEPS.add(
    "tables/table2",
    "sweeps:spec_path",
    "HENASY Table 2: EgoNLQ and EgoMQ for LaViLa, HelpingHands, HENASY",
    path="tables/table2.yaml",
    table="2",
)
SWEEPS.add(
    "tables/table6",
    "sweeps:spec_path",
    "HENASY Table 6: grounding mIoU for HelpingHands and HENASY",
    path="tables/table6.yaml",
    table="6",
)
SWEEPS.add(
    "search/loss_weights",
    "sweeps:spec_path",
    "Optuna search over the loss weights λ1, λ2, λ3 (EgoMCQ intra objective)",
    path="search/loss_weights.yaml",
)

# Tables: every entry's target is ``reports:table_spec_path`` and its ``path`` tag the spec under reports/;
# ``bench table --id N`` reads reports/tables/tableN.yaml (``reports.spec``); the paper's values come from
# reports/paper_numbers.yaml.
TABLES.add(
    "table1",
    "reports:table_spec_path",
    "HENASY Table 1: zero-shot EgoMCQ, EK100-MIR, EK100-CLS, EGTEA (filled by sweep tables/table1)",
    path="tables/table1.yaml",
)
TABLES.add(
    "table2",
    "reports:table_spec_path",
    "HENASY Table 2: EgoNLQ and EgoMQ on the model's features (filled by sweep tables/table2)",
    path="tables/table2.yaml",
)
TABLES.add(
    "table3",
    "reports:table_spec_path",
    "HENASY Table 3: ablation of the multi-grained losses (filled by sweep ablations/losses)",
    path="tables/table3.yaml",
)
TABLES.add(
    "table4",
    "reports:table_spec_path",
    "HENASY Table 4: ablation of the model design (filled by sweep ablations/architecture)",
    path="tables/table4.yaml",
)
TABLES.add(
    "table5",
    "reports:table_spec_path",
    "HENASY Table 5: computational cost and memory (filled by `bench compare helpinghands henasy --cost`)",
    path="tables/table5.yaml",
)
TABLES.add(
    "table6",
    "reports:table_spec_path",
    "HENASY Table 6: visual grounding mIoU (filled by sweep tables/table6)",
    path="tables/table6.yaml",
)
