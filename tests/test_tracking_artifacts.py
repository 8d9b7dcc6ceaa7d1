"""Experiment artifact locations follow the tracking URI (``sweeps/tracking.py``: ``experiment_id``).

On a real SQLite store: a new experiment keeps its artifacts next to the database and is tagged as created
there; reached through a server URI (the same file served by ``mlflow server``) such an experiment would
make clients write artifacts on their own disk, so runs go to ``"<name> (served)"``, created without a
location (the server's default root, ``mlflow-artifacts:/…`` when it serves artifacts); an experiment created
through a server (``mlflow-artifacts:`` location) used on the SQLite file sends runs to ``"<name> (local)"``.
The experiment objects are MLflow's own; only the URI names a server (starting one takes 30-50 s on a
2-core machine; a manual run against ``mlflow server`` is described in the packaging note).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from henasy.core.records import TAG_ARTIFACT_STORE
from sweeps.tracking import artifact_location, artifacts_misplaced, client, experiment_id

SERVED = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, Path]]:
    """One SQLite store for the module (schema creation is the slow part); each test its own experiments."""
    folder = tmp_path_factory.mktemp("artifacts")
    db = folder / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # MLflow's default artifact root (./mlruns) stays in the test folder
        yield client(uri), uri, db


def test_sqlite_experiment_keeps_artifacts_next_to_the_database(store: tuple[object, str, Path]) -> None:
    mlc, uri, db = store
    exp = mlc.get_experiment(experiment_id(mlc, "ablations/arch", uri))  # type: ignore[attr-defined]
    assert exp.artifact_location == (db.parent / "mlruns" / "ablations-arch").as_uri()
    assert exp.tags[TAG_ARTIFACT_STORE] == "sqlite"
    assert artifacts_misplaced(uri, exp) == ""
    assert artifact_location(SERVED, "ablations/arch") is None  # a server chooses its own root


def test_served_store_sends_runs_to_an_experiment_the_server_places(store: tuple[object, str, Path]) -> None:
    mlc, uri, _ = store
    local = experiment_id(mlc, "ablations/losses", uri)
    why = artifacts_misplaced(SERVED, mlc.get_experiment(local))  # type: ignore[attr-defined]
    assert "not through the server" in why and "mlruns/ablations-losses" in why
    served = experiment_id(mlc, "ablations/losses", SERVED)
    exp = mlc.get_experiment(served)  # type: ignore[attr-defined]
    assert served != local and exp.name == "ablations/losses (served)"
    assert exp.tags[TAG_ARTIFACT_STORE] == "server"
    assert experiment_id(mlc, "ablations/losses", SERVED) == served  # stable, no "(served) (served)"
    assert experiment_id(mlc, "ablations/losses", uri) == local  # the SQLite file keeps using its own


def test_experiment_created_through_a_server_is_not_used_on_the_sqlite_file(
    store: tuple[object, str, Path],
) -> None:
    mlc, uri, db = store
    served = mlc.create_experiment(  # type: ignore[attr-defined]
        "search", artifact_location="mlflow-artifacts:/7", tags={TAG_ARTIFACT_STORE: "server"}
    )
    assert experiment_id(mlc, "search", SERVED) == served  # fits a server
    local = mlc.get_experiment(experiment_id(mlc, "search", uri))  # type: ignore[attr-defined]
    assert local.name == "search (local)"
    assert local.artifact_location == (db.parent / "mlruns" / "search-local").as_uri()
    # a server whose default root is a shared folder (file:) created this one: it fits that server
    shared = mlc.create_experiment(  # type: ignore[attr-defined]
        "shared", artifact_location="file:///nfs/mlflow/3", tags={TAG_ARTIFACT_STORE: "server"}
    )
    assert experiment_id(mlc, "shared", SERVED) == shared
