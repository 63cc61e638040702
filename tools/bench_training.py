"""Training speed of the report's models: milliseconds per step in float32 and in the chosen precision.

Usage: python tools/bench_training.py [--steps N] [--blocks K]

Prints, for the d=10 autoencoder and the Gaussian-noise latent GAN, the time of one training step in
each precision (the fastest of --blocks timed blocks of --steps steps), their ratio measured in this run,
and seconds per epoch; then two of the report's latent GANs (--gan-steps steps each) trained one after the
other in this process against side by side in one-thread workers (train_missing_gans), and that ratio; then the
time of each section of the last full run, from figures/metrics.json, in
seconds and in that run's cost unit: one training step of its d=10 autoencoder, averaged over the model's
whole training in section 1. Per-step times, ratios and costs in the unit compare across machines; a
total in seconds does not.
"""

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the timed runs' progress bars would bury the table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers as h  # noqa: E402
from ex3lib import settings  # noqa: E402

EPOCH_STEPS = {"ae": h.AEConfig.train_size // h.AEConfig.batch_size,  # 55,000 images, batch 128
               "gan": h.FULL.ae_train_size // h.GANConfig.batch_size}  # one pass over the 55,000 training codes


def side_by_side(steps: int) -> None:
    """Two of the report's Gaussian-noise GANs (seeds 0 and 1, `steps` steps, random codes) trained one after the
    other here, with every thread, against side by side in one-thread workers: seconds of each, and the ratio."""
    import tempfile
    import time

    codes = h.torch.randn(h.FULL.ae_train_size, h.FULL.report_d)
    configs = [replace(h.gan_config(h.FULL.report_noise_dim, h.ae_config(recipe=h.FULL), seed=s, recipe=h.FULL),
                         steps=steps) for s in (0, 1)]
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        settings.CHECKPOINT_DIR = Path(folder)  # the workers are told this folder
        start = time.perf_counter()
        for config in configs:
            h.train_latent_gan(h.LatentGAN(config).to(h.DEVICE), codes)
        seconds["one by one"] = time.perf_counter() - start
        start = time.perf_counter()
        h.train_missing_gans(configs, codes)
        seconds["side by side"] = time.perf_counter() - start
    print(f"\ntwo latent GANs of width {configs[0].hidden}, {steps:,} steps each: " +
          ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) +
          f"; side by side {seconds['one by one'] / seconds['side by side']:.2f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks; the fastest counts")
    parser.add_argument("--gan-steps", type=int, default=6000, help="steps of each GAN of the side-by-side timing")
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
    side_by_side(args.gan_steps)
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
