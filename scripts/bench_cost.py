"""Table 5 in one command: HelpingHands (the baseline, measured first) and HENASY at their paper presets.

Prints each model's cost beside the paper's value and the ratio HENASY / HelpingHands beside the paper's
ratio (599/530 GFLOPs, 291/216 M parameters, 1.02/2.87 s), all measured in this process on one device.
Writes the per-model JSON (``bench compare --cost --format json``) to ``--out``.

    python scripts/bench_cost.py                          CPU, 3 timed runs (about 2 minutes on 2 cores)
    python scripts/bench_cost.py --device cuda --out cost-h100.json
    python scripts/bench_cost.py --device cuda --train-batch 64   training memory at the paper's per-GPU batch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from henasy.core.atomic import atomic_write_json  # noqa: E402
from reports.cost import measure_models  # noqa: E402
from reports.render_compare import cost_markdown  # noqa: E402

MODELS = ["henasy", "helpinghands"]  # ratios are henasy / helpinghands, as the paper compares them


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--runs", type=int, help="timed runs (default: 3 on CPU, 20 on GPU)")
    parser.add_argument("--warmup", type=int, help="warm-up runs (default: 1 on CPU, 5 on GPU)")
    parser.add_argument("--train-batch", type=int, default=1, help="batch of the training-step memory probe")
    parser.add_argument("--out", type=Path, help="write the per-model JSON here")
    args = parser.parse_args()
    # the baseline first: HelpingHands is measured before HENASY in the same process
    results = measure_models(
        list(reversed(MODELS)),
        device=args.device,
        dtype=args.dtype,
        runs=args.runs,
        warmup=args.warmup,
        train_batch=args.train_batch,
    )
    results.reverse()  # henasy first, so the printed ratios read henasy / helpinghands
    print(cost_markdown(results))
    if args.out:
        atomic_write_json(args.out, results)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
