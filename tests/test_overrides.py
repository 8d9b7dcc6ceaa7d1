"""The one override path (``henasy.core.overrides``): parse, nest, validate, apply — the same from every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from henasy.cli import main
from henasy.core import overrides
from henasy.core.errors import BenchError
from henasy.training.config import RunConfig, build_run_config

TYPO = "model.loss_weight.nec=0.3"  # HENASY's option is loss_weights


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("3", 3),
        ("-0.5", -0.5),
        ("1e-3", 1e-3),  # YAML 1.1 reads this as a string; the override rule makes it a float
        ("2E+5", 2e5),
        ("1.0e-4", 1e-4),
        ("true", True),
        ("off", False),
        ("[visual, 1e-3]", ["visual", 1e-3]),
        ("{nec: 0.3, vec: 5e-1}", {"nec": 0.3, "vec": 0.5}),
        ("entity_aware", "entity_aware"),
        ("1e-3x", "1e-3x"),
        ("null", None),
        ("", None),
    ],
)
def test_values_parse_as_yaml_plus_the_exponent_rule(raw: str, value: object) -> None:
    parsed = overrides.parse([f"trainer.x={raw}"])["trainer.x"]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("item", "kwargs", "needle"),
    [
        ("trainer.lr", {}, "--set 'trainer.lr': expected KEY=VALUE"),
        ("=3", {}, "expected KEY=VALUE"),
        ("trainer.lr=[1", {}, "not valid YAML"),
        ("lr=1", {"dotted": True}, "expected KEY=VALUE"),
        ("trainer.lr=1", {"prefix": "model."}, "expected KEY=VALUE"),
    ],
)
def test_bad_items_name_the_flag_and_item(item: str, kwargs: dict, needle: str) -> None:
    with pytest.raises(BenchError, match=needle):
        overrides.parse([item], **kwargs)


def test_dotted_model_keys_nest_and_merge_in_order() -> None:
    assert overrides.nest({"model.loss_weights.nec": 0.3}) == {"model.loss_weights": {"nec": 0.3}}
    merged = overrides.nest(
        {
            "model.loss_weights": {"nec": 0.5, "vec": 0.5},
            "model.loss_weights.vec": 0.1,
            "model.a.b.c": 1,
            "trainer.lr": 1,
        }
    )
    assert merged == {
        "model.loss_weights": {"nec": 0.5, "vec": 0.1},
        "model.a": {"b": {"c": 1}},
        "trainer.lr": 1,
    }
    assert overrides.model_args({"model.depth": 2, "model.loss_weights.nec": 0.3, "trainer.lr": 1}) == {
        "depth": 2,
        "loss_weights": {"nec": 0.3},
    }


def test_the_run_config_gets_the_nested_dict_and_the_factory_accepts_it() -> None:
    from henasy.model.network import henasy_tiny

    config = build_run_config(
        "henasy_tiny", "/d", overrides=["model.loss_weights.nec=0.3", "trainer.lr=1e-4"]
    )
    assert config.model_args == {"loss_weights": {"nec": 0.3}} and config.trainer.lr == 1e-4
    overrides.apply(config, {"model.loss_weights.vec": 0.2})  # a later override merges, it does not replace
    assert config.model_args == {"loss_weights": {"nec": 0.3, "vec": 0.2}}
    assert henasy_tiny(**config.model_args).config.loss_weights == {"nec": 0.3, "vec": 0.2, "proj": 1.0}


def test_unknown_keys_and_wrong_types_are_clear() -> None:
    with pytest.raises(BenchError) as info:
        overrides.validate({"trainer.lrr": 1}, RunConfig(model="x"))
    text = str(info.value)
    assert text.startswith("unknown config key 'trainer.lrr'. Allowed keys: data.root,")
    assert text.endswith("Did you mean 'trainer.lr'?")
    with pytest.raises(BenchError, match=r"trainer\.epochs expects int, got 'two'"):
        overrides.validate({"epochs": "two"}, RunConfig(model="x"))
    with pytest.raises(BenchError, match=r"unknown LaViLa option 'num_frame'\..*Did you mean 'num_frames'\?"):
        overrides.check_options(
            "LaViLa", {"num_frame": 2, "depth": 1}, {"valid options": ["depth", "num_frames"]}
        )


def _error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The message ``bench`` printed for a ``BenchError`` (exit 2)."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    return err.partition(": error: ")[2]


def test_an_unknown_key_gives_the_same_message_in_train_eval_and_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    data = str(tmp_path)
    train = _error_of(["train", "henasy_tiny", "--data", data, "--dry-run", "--set", TYPO], capsys)
    evaluate = _error_of(["eval", "henasy_tiny", "egomcq", "--data", data, "--set", TYPO], capsys)
    sweep = _error_of(["sweep", "ablations/losses", "--dry-run", "--data", data, "--set", TYPO], capsys)
    assert train.startswith("unknown HENASY option 'loss_weight'.") and train.endswith(
        "Did you mean 'loss_weights'?"
    )
    assert evaluate == train
    assert sweep.endswith(f"(set on the command line: --set model.loss_weight.nec): {train}")
    # a data/trainer key: the same text from --set and from a spec file (which adds the file and line)
    spec = tmp_path / "spec.yaml"
    spec.write_text("base:\n  model: henasy\n  overrides:\n    trainer.lrr: 1\n")
    from_set = _error_of(
        ["train", "henasy_tiny", "--data", data, "--dry-run", "--set", "trainer.lrr=1"], capsys
    )
    from_spec = _error_of(["sweep", str(spec), "--dry-run", "--data", data], capsys)
    assert from_set.startswith("unknown config key 'trainer.lrr'")
    assert "line 4" in from_spec and from_spec.endswith(f"base.overrides: {from_set}")
    assert list(tmp_path.iterdir()) == [spec]  # nothing written by any of them


def test_train_dry_run_prints_the_resolved_config_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "henasy_tiny", "--data", "D", "--dry-run", "--set", "model.loss_weights.nec=0.3"]
    assert main([*argv, "--format", "json", "--set", "trainer.lr=1e-4"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["model"] == "henasy_tiny" and resolved["preset"] == "smoke"
    assert resolved["model_args"]["loss_weights"]["nec"] == 0.3
    assert resolved["model_config"]["loss_weights"] == {"nec": 0.3, "vec": 0.5, "proj": 1.0}
    assert resolved["trainer"]["lr"] == 1e-4 and resolved["data"]["root"] == "D"
    assert RunConfig.from_dict({k: v for k, v in resolved.items() if k != "model_config"}).model_args == {
        "loss_weights": {"nec": 0.3}
    }
    assert main(argv) == 0
    text = capsys.readouterr().out.splitlines()
    assert "model_args.loss_weights.nec = 0.3" in text and "trainer.batch_size = 16" in text
    assert list(tmp_path.iterdir()) == []  # no run folder, no lock, no config.json


def test_the_same_set_works_in_eval_and_sweep(
    synth_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    data = str(synth_tiny)
    out = tmp_path / "records.json"
    argv = ["eval", "henasy_tiny", "egomcq", "--data", data, "--limit", "4", "--out", str(out)]
    assert main([*argv, "--num-workers", "0", "--no-progress", "--set", "model.loss_weights.nec=0.3"]) == 0
    assert json.loads(out.read_text())[0]["benchmark"] == "egomcq"
    capsys.readouterr()
    assert main(["sweep", "ablations/losses.yaml", "--dry-run", "--set", "model.loss_weights.nec=0.3"]) == 0
    assert "7 job(s)" in capsys.readouterr().out  # the pretrain stage and the 6 rows
