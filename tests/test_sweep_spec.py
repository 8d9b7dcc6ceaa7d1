"""Sweep specs: strict loading (file, line, allowed keys), name resolution, pure deterministic expansion."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.core.errors import BenchError, DataFormatError
from henasy.core.overrides import nest
from sweeps import SPEC_ROOT
from sweeps.expand import expand, rows_of, run_id_of, trial_run, variants
from sweeps.spec import list_specs, load_spec, resolve_spec_path

SHIPPED = [
    "ablations/losses",
    "ablations/architecture",
    "tables/table1",
    "tables/table2",
    "tables/table6",
    "search/loss_weights",
]
TABLE3_LABELS = [
    "L_ego",
    "L_ego + L_NEC",
    "L_ego + L_VEC",
    "L_ego + L_proj",
    "L_ego + L_NEC + L_VEC",
    "L_ego + L_NEC + L_VEC + L_proj",
]


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


MINI = """
name: test/mini
table: 9
base:
  model: lavila_tiny
  overrides: {trainer.lr: 1.0e-3}
  benchmarks: [egomcq]
scales:
  smoke:
    models: {lavila: lavila_tiny}
    overrides: {trainer.max_steps: 4, trainer.batch_size: 8}
rows:
  - label: a
    overrides: {trainer.seed: 1}
  - label: b
    overrides: {trainer.seed: 2}
"""


def test_every_shipped_spec_is_listed_loads_and_expands() -> None:
    assert sorted(SHIPPED) == list_specs()  # read from the files under sweeps/, no hand-kept list
    for name in SHIPPED:
        path, resolved_name = resolve_spec_path(name)
        assert path.is_file() and path.is_relative_to(SPEC_ROOT)
        spec = load_spec(f"{name}.yaml")
        assert spec.name == resolved_name == name
        runs = expand(spec, scale="smoke", data_root="/data/synth")
        assert runs and all(r.model.endswith("_tiny") for r in runs)
        assert len({r.run_id for r in runs}) == len(runs)


def test_table3_rows_are_the_paper_loss_settings() -> None:
    spec = load_spec("ablations/losses.yaml")
    assert spec.table == "3"
    stage, *runs = expand(spec, scale="smoke", data_root="/data/synth")
    assert [r.label for r in runs] == TABLE3_LABELS
    # every row builds on the one pretrained LaViLa (paper §5.1), by reference to the stage
    assert stage.stage == "pretrain" and stage.model == "lavila_tiny" and stage.table is None
    assert all(r.stage_ids == [stage.run_id] for r in runs)
    assert all("lavila_checkpoint" not in r.config["model_args"] for r in runs)
    flags = [tuple(r.config["model_args"][f"use_{t}"] for t in ("nec", "vec", "proj")) for r in runs]
    assert flags == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 1, 1)]
    assert all(r.benchmarks == ("egomcq", "ek100_mir", "ek100_cls") for r in runs)
    assert {"egomcq.inter", "egomcq.intra", "ek100_cls.top1"} <= set(spec.metrics)
    paper = rows_of(expand(spec, scale="paper", data_root="/datasets/ego"))
    assert {r.model for r in paper} == {"henasy"} and paper[0].config["preset"] == "paper"
    assert spec.scale("paper").resources.gpus_per_node == 2


def test_table4_rows_switch_decoder_and_bootstrap() -> None:
    runs = rows_of(expand(load_spec("ablations/architecture"), scale="smoke", data_root="/d"))
    args = {r.label: r.config["model_args"] for r in runs}
    assert args["w/ avg. pool"]["decoder"] == "avg_pool"
    assert args["w/ SA dec."]["decoder"] == "self_attention"
    assert args["w/o bootstrap"]["bootstrap"] is False
    assert {k: args["complete settings"][k] for k in ("decoder", "bootstrap")} == {
        "decoder": "entity_aware",
        "bootstrap": True,
    }


def test_run_ids_are_deterministic_and_ignore_non_result_settings(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINI))
    first = expand(spec, scale="smoke", data_root="/d")
    again = expand(load_spec(write(tmp_path, MINI, "copy.yaml")), scale="smoke", data_root="/d")
    assert [r.run_id for r in first] == [r.run_id for r in again]
    quiet = expand(
        spec, scale="smoke", data_root="/d", overrides={"trainer.num_workers": 3, "trainer.log_every": 5}
    )
    assert [r.run_id for r in quiet] == [r.run_id for r in first]
    other = expand(spec, scale="smoke", data_root="/d", overrides={"trainer.lr": 2e-3})
    assert not {r.run_id for r in other} & {r.run_id for r in first}
    assert expand(spec, scale="smoke", data_root="/other")[0].run_id != first[0].run_id
    assert first[0].run_id == run_id_of(first[0].resolved())
    # Override order: base < scale < row < command line.
    run = expand(spec, scale="smoke", data_root="/d", overrides={"trainer.batch_size": 4})[1]
    assert (
        run.config["trainer"]["lr"],
        run.config["trainer"]["seed"],
        run.config["trainer"]["batch_size"],
    ) == (1e-3, 2, 4)
    assert run.config["trainer"]["progress"] is False and run.params == {"trainer.seed": 2}


def test_axes_expand_as_a_product_with_rows(tmp_path: Path) -> None:
    text = MINI + "axes:\n  lr:\n    small: {trainer.lr: 1.0e-4}\n    large: {trainer.lr: 1.0e-2}\n"
    runs = expand(load_spec(write(tmp_path, text)), scale="smoke", data_root="/d")
    assert [r.label for r in runs] == ["a / lr=small", "a / lr=large", "b / lr=small", "b / lr=large"]
    assert [r.config["trainer"]["lr"] for r in runs] == [1e-4, 1e-2, 1e-4, 1e-2]
    assert len(variants(load_spec(write(tmp_path, text)))) == 4


def test_nested_model_keys_merge_in_order() -> None:
    merged = nest(
        {"model.loss_weights": {"nec": 0.5, "vec": 0.5}, "model.loss_weights.vec": 0.1, "trainer.lr": 1}
    )
    assert merged == {"model.loss_weights": {"nec": 0.5, "vec": 0.1}, "trainer.lr": 1}
    spec = load_spec("search/loss_weights")
    run = trial_run(spec, 3, {"model.loss_weights.nec": 0.25}, scale="smoke", data_root="/d")
    assert run.config["model_args"]["loss_weights"] == {"nec": 0.25} and run.label == "trial 3"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("base:\n  model: x\n  overides: {}\n", 3, "unknown key 'overides' in base"),
        (
            "base:\n  model: x\nrows:\n  - label: a\n    overrides: {trainer.lr: 1}\n  - label: a\n",
            6,
            "used twice",
        ),
        (
            "base:\n  model: x\n  overrides:\n    trainer.lrate: 0.1\n",
            4,
            "unknown config key 'trainer.lrate'",
        ),
        ("base:\n  model: x\n  overrides:\n    lr: 0.1\n", 4, "not a dotted config key"),
        ("base:\n  model: x\n  overrides: {trainer.batch_size: big}\n", 3, "trainer.batch_size expects int"),
        ("base:\n  model: x\nscales:\n  huge: {}\n", 4, "unknown key 'huge' in scales"),
        ("base:\n  model: x\nscales:\n  smoke:\n    resources: {gpu: 1}\n", 5, "unknown key 'gpu'"),
        ("base: {model: x}\nbase: {model: y}\n", 2, "duplicate key 'base'"),
        ("base:\n  model: x\n  benchmarks: egomcq\n", 3, "list of benchmark names"),
        (
            "search:\n  objective: egomcq\n  space: {model.a: {type: float, low: 0, high: 1}}\n",
            2,
            "'<benchmark>.<metric>'",
        ),
        (
            "search:\n  objective: a.b\n  space:\n    model.a: {type: float, low: 2, high: 1}\n",
            4,
            "low (2) must be below high (1)",
        ),
        ("base: [1, 2\n", 2, "not valid YAML"),
    ],
)
def test_bad_specs_name_file_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError) as info:
        load_spec(path)
    assert info.value.path == str(path.resolve()) or info.value.path == str(path)
    assert info.value.line == line, str(info.value)
    assert needle in str(info.value)


def test_unknown_key_error_lists_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(
        DataFormatError, match=r"expected one of model, overrides, benchmarks, eval, train, checkpoint"
    ):
        load_spec(write(tmp_path, "base:\n  modle: x\n"))


def test_unknown_model_fails_only_when_the_spec_is_expanded(tmp_path: Path) -> None:
    spec = load_spec(
        write(tmp_path, "base:\n  model: henasy\nscales:\n  smoke:\n    models: {henasy: henasy_tinyy}\n")
    )
    with pytest.raises(BenchError, match=r"unknown model 'henasy_tinyy'.*Did you mean 'henasy_tiny'"):
        expand(spec, scale="smoke", data_root="/d")
    assert expand(spec, scale="paper", data_root="/d")[0].model == "henasy"


def test_resolution_accepts_names_files_and_suggests(tmp_path: Path) -> None:
    assert resolve_spec_path("ablations/losses")[1] == "ablations/losses"
    assert resolve_spec_path("sweeps/ablations/losses.yaml")[1] == "ablations/losses"
    own = write(tmp_path, MINI)
    assert resolve_spec_path(str(own)) == (own.resolve(), "spec")
    with pytest.raises(BenchError, match="Did you mean ablations/losses"):
        resolve_spec_path("ablations/loses")


def test_dry_run_prints_the_runs_and_submits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "ablations/losses.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    runs = expand(
        load_spec("ablations/losses"), scale="smoke", data_root=str(tmp_path / "data" / "synth-small-seed0")
    )
    for run in runs:
        assert run.run_id in out and run.label in out
    assert "would submit 7 job(s)" in out  # the pretrain stage and the six rows
    assert "stage pretrain" in out
    assert (
        not (tmp_path / "runs").exists()
        and not (tmp_path / "data").exists()
        and not (tmp_path / "mlflow.db").exists()
    )
    assert (
        main(["sweep", "ablations/losses.yaml", "--scale", "paper", "--dry-run"]) == 2
    )  # paper needs --data
    assert "--data DIR" in capsys.readouterr().err


def test_run_round_trips_through_json() -> None:
    from sweeps.expand import Run

    run = expand(load_spec("tables/table1"), scale="smoke", data_root="/d")[2]
    again = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again == run and again.run_id == run_id_of(again.resolved())
