"""``bench sync [SWEEP...]``: replay result records that never reached MLflow.

Every job writes ``result.json`` to its run folder before logging to MLflow, so nothing is lost when the
tracking store is down, locked or elsewhere; this command logs what is missing (params, tags, training
steps from ``metrics.jsonl``, benchmark metrics, artifacts, FINISHED) and sets runs of dead jobs FAILED.
A store that cannot be used (a corrupt SQLite file, a server that does not answer) stops it before anything
is logged, with a message naming the store (``sweeps.tracking.TrackingStoreError``).
"""

from __future__ import annotations

import argparse

from henasy.commands.options import add_scale_option, add_tracking_uri_option

NAME = "sync"
HELP = "log finished runs that never reached MLflow; mark dead jobs' runs FAILED"
DESCRIPTION = "Replay result records of sweep runs into MLflow."
EPILOG = """examples:
  bench sync                                  every sweep under ./runs
  bench sync ablations/losses                 one spec (every scale with a manifest)
  bench sync runs/ablations/losses/smoke --tracking-uri sqlite:///other.db   replay into another store
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """SWEEP... (optional), scale, store."""
    p.add_argument(
        "sweeps", nargs="*", help="spec names/paths or sweep folders (default: every sweep under ./runs)"
    )
    add_scale_option(p, "only this scale")
    add_tracking_uri_option(p, "store to replay into (default: the one in the manifest)")


def run(args: argparse.Namespace) -> int:
    """Sync every finished, unsynced run; print what happened."""
    from sweeps import launch, manifest, monitor, records
    from sweeps.tracking import ensure_store, resolve_tracking_uri, sync_run

    dirs = []
    for name in args.sweeps or [None]:
        dirs += launch.find_sweep_dirs(name, scale=args.scale)
    totals = {"synced": 0, "already": 0, "offline": 0, "failed_marked": 0}
    for folder in dirs:
        data = manifest.read_manifest(folder)
        uri = resolve_tracking_uri(args.tracking_uri or data.get("tracking_uri"))
        ensure_store(uri)
        data["tracking_uri"] = uri
        rows = monitor.statuses(data)
        for row in rows:
            entry = data["runs"][row.run_id]
            if row.state != monitor.FINISHED:
                continue
            record = records.read_result(entry["run_dir"]) or {}
            outcome = sync_run(
                uri,
                entry["run_dir"],
                record,
                experiment=data.get("experiment") or data.get("sweep", folder.name),
            )
            totals[outcome] += 1
            if outcome != "already":
                print(f"{data.get('sweep')} {row.label} [{row.run_id}]: {outcome}")
        totals["failed_marked"] += monitor.reconcile(data, rows, force=True)
    print(
        f"{totals['synced']} run(s) synced, {totals['already']} already in MLflow, {totals['offline']} could not reach "
        f"MLflow, {totals['failed_marked']} dead run(s) marked FAILED"
    )
    return 1 if totals["offline"] else 0
