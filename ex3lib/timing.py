"""Training speed and the run's clock: milliseconds per training step and each section's cost."""

from __future__ import annotations

import sys
import time
import torch
from pathlib import Path

from . import settings, runtime
from .settings import RECIPE
from .runtime import DEVICE, PRECISIONS, set_seed
from .autoencoder import AEConfig, Autoencoder, train_autoencoder
from .gan import GANConfig, LatentGAN, train_latent_gan
from .tables import record_metrics


# Training speed: milliseconds per step in each precision


def training_step_ms(family: str, precision: str, steps: int = 40, blocks: int = 1) -> float:
    """Milliseconds per training step of the report's d=10 autoencoder ("ae", batch AEConfig.batch_size)
    or of the Gaussian-noise latent GAN ("gan"), on random data, in `precision`: the fastest of `blocks`
    timed runs of `steps` steps after a first run that warms up (the minimum, as Python's timeit module
    advises: a slower block measures other work on the machine, not the code)."""
    if family not in ("ae", "gan"):
        raise ValueError(f"family must be 'ae' or 'gan', got {family!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if blocks < 1 or steps < 1:
        raise ValueError(f"steps and blocks must be positive, got {steps} and {blocks}")
    times = []
    for _ in range(1 + blocks):
        set_seed(0)
        if family == "ae":
            cfg = AEConfig(d=RECIPE.report_d, epochs=1, train_size=steps * AEConfig.batch_size, val_size=1,
                           **RECIPE.bottleneck_designs[RECIPE.report_design])
            images = torch.rand(cfg.train_size + 1, 1, 32, 32)
            model = Autoencoder(cfg).to(DEVICE)
            times.append(train_autoencoder(model, images, progress=False, precision=precision)["train_seconds"])
        else:
            gan = LatentGAN(GANConfig(noise_dim=RECIPE.report_noise_dim, latent_dim=RECIPE.report_d, steps=steps,
                                      precision=precision)).to(DEVICE)
            times.append(train_latent_gan(gan, torch.randn(10000, RECIPE.report_d))["train_seconds"])
    return 1000 * min(times[1:]) / steps




def ae_step_seconds(config: AEConfig, info: dict) -> float:
    """Seconds per training step of one autoencoder over its whole training, from its recorded training time."""
    return info["train_seconds"] / (config.epochs * max(1, config.train_size // config.batch_size))


_HOOKED: list = []  # audit hooks cannot be removed: installed once per process
_CHECKPOINTS_READ: set = set()  # checkpoint files this process opened for reading (_note_checkpoint_read)


def _note_checkpoint_read(event: str, args: tuple) -> None:
    """An audit hook (PEP 578): notes every checkpoint file of the run's folder opened for reading, whichever code
    opens it, so that the run can say how many of its models it loaded rather than trained."""
    if event == "open" and isinstance(args[0], (str, Path)) and str(args[0]).endswith(".pt") \
            and "r" in str(args[1] or "r") and Path(args[0]).parent == settings.CHECKPOINT_DIR:
        _CHECKPOINTS_READ.add(Path(args[0]).name)


def checkpoint_files() -> set:
    """The names of the checkpoint files in the run's folder."""
    return {p.name for p in settings.CHECKPOINT_DIR.glob("*.pt")}


class RunClock:
    """Times the run and each section, in seconds and in a unit of the run's own work that holds still: one
    training step of the report's d=10 autoencoder, averaged over its whole training in section 1 (thousands
    of steps, where a few timed blocks swing with other work on the machine). Costs in that unit compare across
    machines of different speed; seconds do not."""

    def __init__(self):
        self.seconds, self.unit_seconds = {}, None
        self.start = self.lap_start = time.perf_counter()
        # the models this run finds trained already (the search's, or an earlier run's) against those it trains
        self.found = checkpoint_files()
        if _note_checkpoint_read not in _HOOKED:
            sys.addaudithook(_note_checkpoint_read)
            _HOOKED.append(_note_checkpoint_read)
        _CHECKPOINTS_READ.clear()
        record_metrics({"runtime.device": str(DEVICE), "runtime.precision": runtime.PRECISION,
                        "runtime.mode": "smoke" if settings.SMOKE else "full", "runtime.threads": torch.get_num_threads()})

    def use_unit(self, model: Autoencoder, info: dict) -> None:
        """Take the unit from the report's autoencoder and its training info (whether trained in this run or
        loaded: the info is that of its own training)."""
        self.unit_seconds = ae_step_seconds(model.config, info)
        record_metrics({"runtime.unit_step_ms": 1000 * self.unit_seconds,
                        "runtime.unit_train_seconds": info["train_seconds"]})

    def section(self, i: int) -> None:
        """Close section i (it began where the previous one ended)."""
        now = time.perf_counter()
        self.seconds[f"section{i}"] = now - self.lap_start
        record_metrics({f"runtime.section{i}_seconds": self.seconds[f"section{i}"]})
        self.lap_start = now

    def finish(self) -> None:
        """Record the whole run's time, and every cost in the unit."""
        if self.unit_seconds is None:
            raise RuntimeError("RunClock.use_unit was never called: the run has no cost unit")
        seconds = time.perf_counter() - self.start
        trained, loaded = checkpoint_files() - self.found, _CHECKPOINTS_READ & self.found
        record_metrics({"runtime.models_trained": len(trained), "runtime.models_loaded": len(loaded)})
        record_metrics({"runtime.total_seconds": seconds, "runtime.cost_ae_steps": seconds / self.unit_seconds,
                        **{f"runtime.{part}_cost_ae_steps": s / self.unit_seconds for part, s in self.seconds.items()}})
