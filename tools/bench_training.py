"""Training speed of the report's models: milliseconds per step in float32 and in the chosen precision.

Usage: python tools/bench_training.py [--steps N] [--blocks K]

Prints, for the d=10 autoencoder and the Gaussian-noise latent GAN, the time of one training step in
each precision (the fastest of --blocks timed blocks of --steps steps), their ratio measured in this run,
and seconds per epoch; then the time of each section of the last full run, from figures/metrics.json, in
seconds and in that run's cost unit: one training step of its d=10 autoencoder, averaged over the model's
whole training in section 1. Per-step times, ratios and costs in the unit compare across machines; a
total in seconds does not.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the timed runs' progress bars would bury the table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers as h  # noqa: E402

EPOCH_STEPS = {"ae": h.AEConfig.train_size // h.AEConfig.batch_size,  # 55,000 images, batch 128
               "gan": 60000 // h.GANConfig.batch_size}  # one pass over the 60,000 training codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks; the fastest counts")
    args = parser.parse_args()
    precisions = list(dict.fromkeys(("float32", h.PRECISION)))
    print(f"device {h.DEVICE}, chosen precision {h.PRECISION}, {h.torch.get_num_threads()} threads, "
          f"torch {h.torch.__version__}")
    print(f"{'model':<6}{'precision':>11}{'ms/step':>10}{'s/epoch':>10}{'speed-up':>10}")
    for family in ("ae", "gan"):
        ms = {p: h.training_step_ms(family, p, args.steps, args.blocks) for p in precisions}
        for p in precisions:
            print(f"{family:<6}{p:>11}{ms[p]:>10.2f}{ms[p] * EPOCH_STEPS[family] / 1000:>10.1f}"
                  f"{ms['float32'] / ms[p]:>9.2f}x")
    metrics = h.metrics_path()  # where the run wrote it (figures/, or EX3_OUTPUT's)
    if not metrics.exists():
        print(f"{metrics} is missing: `make report` writes it")
        return
    m = json.loads(metrics.read_text())
    print(f"\nlast full run ({m.get('runtime.device')}, {m.get('runtime.precision')}): seconds, and cost in its unit, "
          f"{m.get('runtime.unit_step_ms', float('nan')):.1f} ms per autoencoder step")
    print(f"  {'part':<10}{'seconds':>8}{'steps':>12}")
    for row in h.runtime_rows():
        print(f"  {row['part']:<10}{row['seconds']:>8.0f}{row['steps']:>12,.0f}")


if __name__ == "__main__":
    main()
