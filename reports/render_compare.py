"""Render ``bench compare`` results: the cost comparison (beside the paper's Table 5) and metric differences.

Markdown for the terminal, JSON for machines. The cost JSON is a list with one object per model (keys
``params_total_m``, ``params_trainable_m``, ``gflops``, ``gflops_text``, ``latency_s`` and its spread,
``infer_mem_gb``, ``train_mem_gb``, ``memory_kind``, ``autoregressive`` (the model's attribute),
``autoregressive_paper``, ``device``, ``device_name``, ``dtype``, ``torch`` … and ``paper``: the Table 5
values or null, with ``paper_device``). The Markdown names the device of every measured column and keeps the
paper's A6000 figures in columns of their own.
"""

from __future__ import annotations

import json
from typing import Any

from reports.compare_models import MetricComparison
from reports.cost import PAPER_DEVICE

# (key, label, decimals); the paper's Table 5 has a value for the keys it lists.
COST_ROWS = (
    ("params_total_m", "Parameters, total (M)", 1),
    ("params_trainable_m", "Parameters, trainable (M)", 1),
    ("gflops", "GFLOPs per clip (encode_video)", 1),
    ("gflops_text", "GFLOPs per caption (encode_text)", 2),
    ("latency_s", "Inference time per clip (s), median", 3),
    ("infer_mem_gb", "Peak inference memory (GB)", 2),
    ("train_mem_gb", "Peak training-step memory (GB)", 2),
    ("autoregressive", "Autoregressive inference", 0),
)
YES_NO = {True: "yes", False: "no"}


def device_label(result: dict[str, Any]) -> str:
    """Where a result was measured: ``cpu (Intel Xeon …)`` or ``cuda:0 (NVIDIA H200)``."""
    name = result.get("device_name")
    return f"{result.get('device', '?')} ({name})" if name else str(result.get("device", "?"))


def _cost_cell(result: dict[str, Any], key: str, decimals: int) -> str:
    value = result.get(key)
    if key == "autoregressive":
        if value is None:
            return "not declared by the model class"
        return f"{YES_NO[bool(value)]} (declared by the model class)"
    if value is None:
        return "—"
    text = f"{value:.{decimals}f}" if abs(value) >= 1 or decimals >= 3 else f"{value:.3g}"
    if key == "latency_s":
        text += f" on {result.get('device', '?')}"
        if result.get("latency_runs", 0) > 1:
            q1, q3 = result["latency_q1_s"], result["latency_q3_s"]
            text += f" (IQR {q1:.{decimals}f}–{q3:.{decimals}f}, n={result['latency_runs']})"
    return text


def _paper_cell(result: dict[str, Any], key: str) -> str:
    paper = result.get("paper")
    if paper is None:
        return "(not in Table 5)"
    if key not in paper:
        return ""
    value = paper[key]
    if isinstance(value, bool):
        return f"{YES_NO[value]} (the paper's claim)"
    if value is None:
        return "-"
    return f"{value:g} on {PAPER_DEVICE}" if key == "latency_s" else f"{value:g}"


def cost_markdown(results: list[dict[str, Any]]) -> str:
    """Rows = quantities; the measured columns (each naming its device), then the paper's Table 5 columns.

    The paper's figures come from the authors' GPUs (A6000s, §5.1) and are never mixed into a measured
    column; with two models the measured and the paper's A/B ratios sit each beside their own side.
    """
    two = len(results) == 2
    header = ["Quantity"] + [f"{r['model']}: measured on {device_label(r)}" for r in results]
    if two:
        header.append(f"measured ratio {results[0]['model']}/{results[1]['model']}")
    header += [
        f"paper Table 5 ({PAPER_DEVICE}): "
        + (r["paper"]["row"] if r.get("paper") else f"{r['model']} not listed")
        for r in results
    ]
    if two:
        header.append("paper ratio")
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for key, label, decimals in COST_ROWS:
        measured_ratio, paper_ratio = _ratios(results, key) if two else ("", "")
        cells = [label] + [_cost_cell(r, key, decimals) for r in results]
        cells += [measured_ratio] if two else []
        cells += [_paper_cell(r, key) for r in results]
        cells += [paper_ratio] if two else []
        lines.append("| " + " | ".join(cells) + " |")
    first = results[0]
    devices = sorted({device_label(r) for r in results})
    env = (
        f"measured on {' and '.join(devices)}, dtype {first['dtype']}, torch {first['torch']}"
        f"{', CUDA ' + first['cuda'] if first.get('cuda') and first['device'].startswith('cuda') else ''}, "
        f"{first.get('threads')} threads; input {'×'.join(map(str, first['input']))} (batch 1); latency: median of "
        f"{first['latency_runs']} runs after {first['warmup']} warm-up"
    )
    notes = [
        env,
        f"paper columns: the paper's Table 5, on the authors' GPUs (HENASY was trained on two {PAPER_DEVICE}s, §5.1; "
        "the paper states no device, batch or dtype for its timings): a latency measured on another device "
        "is not comparable with them; compare the ratios",
        f"FLOPs: {first['flop_counter']}",
        f"training step: one loss + backward + AdamW step, batch {first['train_batch']}, every loss term's inputs "
        "(the paper trained with batch 128 on two GPUs, 64 per GPU; --train-batch 64 for that setting)",
    ]
    if first["memory_kind"] == "process_rss_peak":
        base = first.get("baseline_rss_gb")
        notes.append(
            "memory on CPU is the process's peak resident set (VmHWM), not GPU memory; it includes the Python/torch "
            f"runtime (~{base:.2f} GB before the model was built)"
            if base is not None
            else "memory on CPU is the process's peak resident set (VmHWM), not GPU memory"
        )
        if not first.get("peak_reset", True):
            notes.append("could not reset VmHWM (/proc/self/clear_refs): peaks are since process start")
    else:
        notes.append("memory: CUDA caching allocator max_memory_allocated (weights included)")
    for r in results:
        if r.get("autoregressive_paper") is not None and r.get("autoregressive") is not None:
            if r["autoregressive_paper"] != r["autoregressive"]:
                notes.append(
                    f"{r['model']}: the paper calls it {'autoregressive' if r['autoregressive_paper'] else 'parallel'}; "
                    f"the model declares autoregressive = {r['autoregressive']} (see its class comment)"
                )
        elif r.get("autoregressive") is None:
            notes.append(f"{r['model']}: the model class declares no `autoregressive` attribute")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def _ratios(results: list[dict[str, Any]], key: str) -> tuple[str, str]:
    a, b = results[0].get(key), results[1].get(key)
    measured = f"{a / b:.2f}" if _positive(a) and _positive(b) else ""
    pa, pb = (results[0].get("paper") or {}).get(key), (results[1].get("paper") or {}).get(key)
    paper = f"{pa / pb:.2f}" if _positive(pa) and _positive(pb) else ""
    return measured, paper


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def cost_json(results: list[dict[str, Any]]) -> str:
    return json.dumps(results, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------- metric comparison
def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def comparison_markdown(
    rows: list[MetricComparison], name_a: str, name_b: str, sources: dict[str, Any]
) -> str:
    """One line per benchmark metric: A, B, Δ = A − B, the interval and whether it excludes 0."""
    conf = next((r.ci.confidence for r in rows if r.ci is not None), 0.95)
    n_boot = next((r.ci.n_boot for r in rows if r.ci is not None), None)
    head = f"| benchmark | metric | {name_a} | {name_b} | Δ ({name_a} − {name_b}) | {conf:.0%} CI | items | real? |"
    lines = [head, "|---|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        ci = f"[{r.ci.low:+.2f}, {r.ci.high:+.2f}]" if r.ci else "—"
        items = f"{r.ci.n:,}" if r.ci else "—"
        verdict = {"yes": "yes (CI excludes 0)", "no": "no (CI contains 0)", "n/a": "n/a"}[r.verdict]
        lines.append(
            f"| {r.benchmark} | {r.metric} | {_num(r.a)} | {_num(r.b)} | {_num(r.diff, True)} | {ci} | {items} | {verdict} |"
        )
    notes = [
        f"values as the paper prints them (percent; a record in fractions ×100); intervals: paired bootstrap over items, "
        f"{n_boot or 'no'} resamples" + (f", seed {rows[0].ci.seed}" if rows and rows[0].ci else ""),
        "an interval covers item sampling only; differences between training seeds need repeated runs",
    ]
    for name, src in sources.items():
        notes.append(f"{name}: {src}")
    notes += [f"{r.key}: {r.note}" for r in rows if r.note]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def comparison_json(rows: list[MetricComparison], name_a: str, name_b: str, sources: dict[str, Any]) -> str:
    obj = {
        "a": name_a,
        "b": name_b,
        "sources": sources,
        "metrics": [
            {
                "benchmark": r.benchmark,
                "metric": r.metric,
                "record_unit": r.unit,
                "a": r.a,
                "b": r.b,
                "diff": r.diff,
                "ci_low": r.ci.low if r.ci else None,
                "ci_high": r.ci.high if r.ci else None,
                "confidence": r.ci.confidence if r.ci else None,
                "n_items": r.ci.n if r.ci else None,
                "n_boot": r.ci.n_boot if r.ci else None,
                "excludes_zero": r.ci.excludes_zero if r.ci else None,
                "n_only_a": r.n_only_a,
                "n_only_b": r.n_only_b,
                "note": r.note,
            }
            for r in rows
        ],
    }
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
