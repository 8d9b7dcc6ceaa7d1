"""Bad-input corpus, sweep specs: validate every row before spending, keep sweep folders in runs/, safe YAML.

Each case writes a small spec into ``tmp_path`` and runs ``bench sweep`` (or ``bench status``) there, in
process (``tests/bad_input_support.py``). A refusal must exit 2 without a traceback and name the spec file,
the line and the key or row at fault, before any job is submitted and before anything is written:
no ``runs/``, no ``data/``, no ``mlflow.db`` (see ``sweeps/launch.py``, ``sweeps/expand.py``,
``sweeps/spec.py``).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from bad_input_support import expect, expect_clear_error, run_bench

from sweeps.expand import expand
from sweeps.spec import load_spec

pytestmark = pytest.mark.bad_input

# Row "a" sets its overrides on line 7, row "b" starts on line 8 and sets its overrides on line 9.
CLEAN = """
name: test/bad
base:
  model: lavila_tiny
  benchmarks: [egomcq]
rows:
  - label: a
    overrides: {trainer.seed: 1}
  - label: b
    overrides: {model.temperature: 0.05}
"""


def write(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def nothing_written(folder: Path) -> None:
    """No sweep folder, dataset or tracking store appeared in ``folder`` (the test's working directory)."""
    made = sorted(p.name for p in folder.iterdir() if p.name in ("runs", "data", "mlflow.db", "smoke"))
    expect(not made, f"a refused sweep wrote {made} into {folder}")


def sweep(folder: Path, data: Path, *extra: str, spec: str = "spec.yaml") -> object:
    """``bench sweep SPEC --dry-run`` (unless ``extra`` says otherwise) on ``data``, without MLflow."""
    return run_bench(["sweep", spec, "--data", str(data), "--no-tracking", *extra], cwd=folder)


# ----------------------------------------------------------------------------- validate before spending
def test_unknown_benchmark_is_refused_naming_file_line_row_and_close_match(
    tmp_path: Path, synth_tiny: Path
) -> None:
    write(tmp_path, CLEAN.replace("    overrides: {model.temperature: 0.05}", "    benchmarks: [egomcqq]"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    message = expect_clear_error(
        result, mentions=["spec.yaml", "line 9", "rows[1] ('b')", "'egomcqq'", "Did you mean 'egomcq'"]
    )
    expect("would submit" not in message, "the dry run planned jobs for an unknown benchmark")


def test_unknown_model_option_is_refused_in_the_dry_run(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("model.temperature: 0.05", "model.use_nce: true"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 9", "'model.use_nce'", "row 'b'", "use_nce"])


def test_model_option_set_on_the_command_line_is_refused_naming_set(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN)
    result = sweep(tmp_path, synth_tiny, "--dry-run", "--set", "model.depth=2")
    expect_clear_error(result, mentions=["spec.yaml", "--set model.depth", "depth"], absent=["line "])


def test_wrong_override_type_from_the_command_line_names_set(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN)
    result = sweep(tmp_path, synth_tiny, "--dry-run", "--set", "trainer.lr=fast")
    expect_clear_error(result, mentions=["spec.yaml", "--set trainer.lr", "expects float", "'fast'"])


def test_wrong_override_type_in_the_spec_names_its_line(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("trainer.seed: 1", "trainer.lr: fast"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 7", "trainer.lr expects float"])


def test_unknown_data_key_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("trainer.seed: 1", "data.hard_negatives: 10"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 7", "unknown config key 'data.hard_negatives'"])


def test_unparsable_trainer_device_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("trainer.seed: 1", "trainer.device: gpu"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 7", "row 'a'", "trainer.device 'gpu'"])


def test_unparsable_eval_device_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("  benchmarks: [egomcq]", "  benchmarks: [egomcq]\n  eval: {device: gpu}"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 5", "eval.device 'gpu'"])


def test_unknown_row_model_is_refused_naming_its_line(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("    overrides: {model.temperature: 0.05}", "    model: lavila_tinyy"))
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 9", "row 'b'", "Did you mean 'lavila_tiny'"])


def test_search_space_key_is_checked_before_the_study_starts(tmp_path: Path, synth_tiny: Path) -> None:
    text = CLEAN.split("rows:")[0] + textwrap.dedent("""
        search:
          objective: egomcq.intra
          space:
            model.temprature: {type: float, low: 0.01, high: 0.1}
        """)
    write(tmp_path, text)
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 9", "search.space.model.temprature"])


def test_missing_checkpoint_of_an_evaluation_row_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(
        tmp_path,
        CLEAN.replace("overrides: {model.temperature: 0.05}", "train: false\n    checkpoint: gone.pt"),
    )
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "row 'b'", "checkpoint gone.pt is not a file"])


def test_missing_data_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, CLEAN)
    result = sweep(tmp_path, tmp_path / "no_such_root", "--dry-run")
    expect_clear_error(result, mentions=["--data", "no_such_root", "no such folder"])


def test_data_that_is_a_file_is_refused_as_such(tmp_path: Path) -> None:
    write(tmp_path, CLEAN)
    result = sweep(tmp_path, tmp_path / "spec.yaml", "--dry-run")
    expect_clear_error(result, mentions=["--data", "is a file"], absent=["no such folder"])


def test_data_folder_without_training_clips_is_refused(tmp_path: Path) -> None:
    write(tmp_path, CLEAN)
    (tmp_path / "empty_root").mkdir()
    result = sweep(tmp_path, tmp_path / "empty_root", "--executor", "debug")
    expect_clear_error(result, mentions=["--data", "empty_root", "ego4d/egoclip.csv", "row 'a'"])
    nothing_written(tmp_path)


def test_out_that_is_a_file_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN)
    (tmp_path / "taken").write_text("not a folder\n")
    result = sweep(tmp_path, synth_tiny, "--dry-run", "--out", str(tmp_path / "taken"))
    expect_clear_error(result, mentions=["--out", "taken", "is a file"])


def test_real_sweep_with_a_bad_row_writes_nothing(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, CLEAN.replace("model.temperature: 0.05", "model.use_nce: true"))
    result = sweep(tmp_path, synth_tiny, "--executor", "debug")
    expect_clear_error(result, mentions=["spec.yaml", "line 9", "'model.use_nce'"], absent=["submitted"])
    nothing_written(tmp_path)


def test_fixed_typo_gets_the_run_ids_of_a_spec_that_never_had_it(tmp_path: Path, synth_tiny: Path) -> None:
    typo = write(tmp_path, CLEAN.replace("model.temperature", "model.temprature"), "typo.yaml")
    result = sweep(tmp_path, synth_tiny, "--executor", "debug", spec="typo.yaml")
    expect_clear_error(result, mentions=["typo.yaml", "line 9", "'model.temprature'"])
    nothing_written(tmp_path)
    typo.write_text(typo.read_text().replace("model.temprature", "model.temperature"))
    clean = write(tmp_path, CLEAN, "clean.yaml")
    fixed_ids = [r.run_id for r in expand(load_spec(typo), scale="smoke", data_root=str(synth_tiny))]
    clean_ids = [r.run_id for r in expand(load_spec(clean), scale="smoke", data_root=str(synth_tiny))]
    expect(fixed_ids == clean_ids, f"fixing the typo changed the run ids: {fixed_ids} vs {clean_ids}")
    dry = sweep(tmp_path, synth_tiny, "--dry-run", spec="typo.yaml")
    expect(
        dry.code == 0 and all(i in dry.out for i in clean_ids), f"the fixed spec plans other ids: {dry.out}"
    )


# -------------------------------------------------------------------------------------------- containment
@pytest.mark.parametrize(
    ("name", "line"),
    [("../../..", 1), ("/tmp/elsewhere", 1), ("ok/../../escape", 1), ("a//b", 1)],
    ids=["parent-dirs", "absolute", "climbs-back-out", "empty-part"],
)
def test_spec_name_cannot_leave_the_runs_folder(
    tmp_path: Path, synth_tiny: Path, name: str, line: int
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    write(work, CLEAN.replace("name: test/bad", f"name: {name!r}"))
    result = sweep(work, synth_tiny, "--executor", "debug")
    expect_clear_error(result, mentions=["spec.yaml", f"line {line}", "'name'", "runs/"])
    leaked = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.name != "spec.yaml")
    expect(leaked == ["a", "a/b"], f"a refused sweep wrote {leaked}")


def test_status_of_a_climbing_name_does_not_look_outside_runs(tmp_path: Path) -> None:
    result = run_bench(["status", "../../.."], cwd=tmp_path)
    expect_clear_error(result, mentions=["'../../..'", "outside"])


# ------------------------------------------------------------------------------------------------- YAML
def test_alias_bomb_is_refused_quickly_naming_the_line(tmp_path: Path, synth_tiny: Path) -> None:
    levels = ["    model.x0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"    model.x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    write(tmp_path, "name: test/bomb\nbase:\n  model: lavila_tiny\n  overrides:\n" + "\n".join(levels) + "\n")
    start = time.monotonic()
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    elapsed = time.monotonic() - start
    expect_clear_error(result, mentions=["spec.yaml", "line ", "alias"])
    expect(elapsed < 5, f"refusing the alias bomb took {elapsed:.1f} s")


def test_recursive_alias_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    write(tmp_path, "name: test/loop\nbase:\n  model: lavila_tiny\n  overrides:\n    model.x: &a [1, *a]\n")
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 5", "recursive"])


def test_non_utf8_spec_names_the_byte_offset(tmp_path: Path, synth_tiny: Path) -> None:
    (tmp_path / "spec.yaml").write_bytes(b"name: test/caf\xe9\nbase: {model: lavila_tiny}\n")
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "not UTF-8", "byte offset 14", "line 1"])


def test_control_character_in_spec_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    (tmp_path / "spec.yaml").write_bytes(b"name: test/x\nbase: {model: lavila_tiny}\x00\n")
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "line 2", "#x0000"])


def test_spec_that_is_a_folder_is_refused(tmp_path: Path, synth_tiny: Path) -> None:
    (tmp_path / "spec.yaml").mkdir()
    result = sweep(tmp_path, synth_tiny, "--dry-run")
    expect_clear_error(result, mentions=["spec.yaml", "is a folder"])


def test_synthetic_set_of_another_generator_version_is_refused_with_the_fix(tmp_path: Path) -> None:
    import json

    from henasy.core.errors import BenchError
    from henasy.synth.generate import GENERATOR, GENERATOR_VERSION, MANIFEST
    from sweeps.launch import ensure_synthetic
    from sweeps.spec import DataSource

    root = tmp_path / "data" / "synth-tiny-seed0"
    root.mkdir(parents=True)
    manifest = {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "size": "tiny", "seed": 0}
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert ensure_synthetic(root, DataSource("tiny", 0), progress=False) is False  # current: reused as is
    (root / MANIFEST).write_text(json.dumps({**manifest, "generator_version": GENERATOR_VERSION - 1}))
    with pytest.raises(BenchError) as err:
        ensure_synthetic(root, DataSource("tiny", 0), progress=False)
    text = str(err.value)
    assert str(root / MANIFEST) in text and f"generator_version {GENERATOR_VERSION - 1}" in text
    assert f"bench data synth --size tiny --seed 0 --out {root} --force" in text
    assert not (root / "ego4d").exists()  # nothing generated over it
