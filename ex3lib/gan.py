"""Latent GANs: a generator of latent codes (Gaussian noise or a mixture prior, optionally conditioned on the digit),
its discriminator and training, the report's configs, and the density baselines."""

from __future__ import annotations

import hashlib
import time
import torch
import torch.nn as nn
import torch.nn.functional as F
from dataclasses import dataclass
from dataclasses import replace

from . import runtime, settings
from .settings import FULL, RECIPE, Recipe
from .runtime import DEVICE, PRECISIONS, autocast, set_seed, tqdm
from .cache import cache_key, cached_model, train_side_by_side
from .autoencoder import AEConfig, ae_config, autoencoder, decode
from .classifier import fit_classifier


# Sections 4-5: GANs in the autoencoder's latent space


@dataclass(frozen=True)
class GANConfig:
    """A generator of (standardised) latent codes and its discriminator; n_classes=10 conditions on the digit.

    prior="normal": the noise is N(0, I_k). prior="gmm": the noise is a mixture component and a
    d-dimensional normal, and the generator starts as a Gaussian mixture fitted to the codes (see Generator).
    """

    noise_dim: int = FULL.report_noise_dim
    latent_dim: int = FULL.report_d
    ae_key: str = ""  # cache_key of the autoencoder whose codes are modelled (config, precision, training code)
    n_classes: int = 0
    hidden: int = FULL.gan_recipe["hidden"]
    steps: int = FULL.gan_steps  # generator steps, after d_warmup discriminator-only steps
    batch_size: int = 256
    lr: float = FULL.gan_recipe["lr"]  # generator; with lr_decay it decays linearly to 0 over the run
    lr_decay: bool = True
    d_lr_scale: float = 2.0  # the discriminator learns this much faster (two time-scale update rule)
    r1: float = FULL.gan_recipe["r1"]  # weight of the R1 gradient penalty on real codes
    r1_every: int = 4  # the penalty every r1_every discriminator steps, scaled by r1_every (lazy regularisation)
    d_warmup: int = 0  # discriminator-only steps before the generator starts to learn
    ema: float = 0.0  # > 0: the trained generator is the moving average of its weights with this decay
    prior: str = "normal"
    components: int = 10  # prior="gmm" only: mixture components
    aux_weight: float = 0.0  # conditional only: weight of the auxiliary digit classifier's loss on G
    aux_steps: int = FULL.cgan_aux_steps  # training steps of that classifier of real codes, before the GAN
    seed: int = 0
    # The codes it trains on: those of the first train_codes training images (the autoencoder's own 55,000, in the
    # report as in the validation search), so a model trained on other codes never loads in its place.
    train_codes: int = FULL.ae_train_size
    # Its training precision: "float32", or "bfloat16" (autocast of the forward passes, where the device is fast at
    # it); the report and the validation search train every model in the run's precision, float32 by default.
    precision: str = "float32"

    def __post_init__(self):
        if self.noise_dim < 1:
            raise ValueError(f"noise_dim must be >= 1, got {self.noise_dim}")
        if self.n_classes not in (0, 10):
            raise ValueError(f"n_classes must be 0 (unconditional) or 10, got {self.n_classes}")
        if self.aux_weight < 0 or (self.aux_weight and not self.n_classes):
            raise ValueError(f"aux_weight must be >= 0, and 0 without n_classes, got {self.aux_weight}")
        if self.prior not in ("normal", "gmm"):
            raise ValueError(f"prior must be 'normal' or 'gmm', got {self.prior!r}")
        if self.prior == "gmm" and (self.n_classes or self.noise_dim != self.latent_dim or self.components < 1):
            raise ValueError("prior='gmm' needs n_classes=0, noise_dim == latent_dim and components >= 1, "
                             f"got {self.n_classes}, {self.noise_dim} vs {self.latent_dim}, {self.components}")
        if not isinstance(self.r1_every, int) or self.r1_every < 1:
            raise ValueError(f"r1_every must be a positive integer, got {self.r1_every!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.d_warmup < 0 or not 0 <= self.ema < 1:
            raise ValueError(f"need d_warmup >= 0 and 0 <= ema < 1, got {self.d_warmup}, {self.ema}")


def _mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, n_out))


class Generator(nn.Module):
    """noise [N, k] (and a digit [N]) => latent code [N, d] in the autoencoder's own scale.

    With prior="gmm" the noise is [N, K + d]: a one-hot mixture component c and z ~ N(0, I_d). The
    generator computes base = mu_c + L_c z, a draw from a Gaussian mixture, and returns base + MLP(base, c).
    The mixture is set to one fitted to the codes (init_mixture) and the MLP's last layer starts at zero,
    so before training the generator is that mixture; adversarial training then moves the means, the
    scale matrices and the MLP (the mixture weights stay fixed).
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.mixture = config.prior == "gmm"
        n_in = config.latent_dim + config.components if self.mixture else config.noise_dim + config.n_classes
        self.net = _mlp(n_in, config.hidden, config.latent_dim)
        # Statistics of the real codes: the networks work on standardised codes.
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_std", torch.ones(config.latent_dim))
        if self.mixture:
            k, d = config.components, config.latent_dim
            self.means = nn.Parameter(torch.zeros(k, d))
            self.scales = nn.Parameter(torch.eye(d).repeat(k, 1, 1))
            self.register_buffer("weights", torch.full((k,), 1 / k))
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    @torch.no_grad()
    def fit_to_codes(self, codes: torch.Tensor, seed: int) -> torch.Tensor:
        """Take the real codes' mean and std (and with prior="gmm" fit the mixture to them);
        returns the codes standardised, as the networks see them."""
        self.code_mean.copy_(codes.mean(0))
        self.code_std.copy_(codes.std(0))
        standardised = (codes.to(self.code_mean.device) - self.code_mean) / self.code_std
        if self.mixture:
            self.init_mixture(standardised, seed)
        return standardised

    @torch.no_grad()
    def init_mixture(self, standardised_codes: torch.Tensor, seed: int) -> None:
        """Set the mixture to a full-covariance Gaussian mixture fitted to the (standardised) codes."""
        gmm = gaussian_mixture(standardised_codes.cpu(), self.config.components, seed)
        self.means.copy_(torch.as_tensor(gmm.means_, dtype=torch.float32))
        self.scales.copy_(torch.linalg.cholesky(torch.as_tensor(gmm.covariances_)).float())
        self.weights.copy_(torch.as_tensor(gmm.weights_, dtype=torch.float32))

    def sample_noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n noise vectors on the CPU, drawn from gen."""
        z = torch.randn(n, self.config.noise_dim, generator=gen)
        if not self.mixture:
            return z
        component = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=gen)
        return torch.cat([F.one_hot(component, self.config.components).float(), z], 1)

    def forward(self, noise, digits=None, standardised: bool = False):
        if self.mixture:
            onehot, z = noise.split([self.config.components, self.config.latent_dim], 1)
            base = onehot @ self.means + torch.einsum("nk,kij,nj->ni", onehot, self.scales, z)
            z = base + self.net(torch.cat([base, onehot], 1))
        else:
            x = noise
            if self.config.n_classes:
                if digits is None:
                    raise ValueError("digits is required for a conditional generator")
                x = torch.cat([noise, F.one_hot(digits, self.config.n_classes).float()], 1)
            z = self.net(x)
        return z if standardised else z * self.code_std + self.code_mean


class Discriminator(nn.Module):
    """standardised code [N, d] (and a digit [N]) => real/fake logit [N].

    Conditional: a projection discriminator (Miyato & Koyama 2018), logit = w.phi(z) + e_y.phi(z),
    which makes the digit act on every feature instead of being one more input among d + 10.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.features = _mlp(config.latent_dim, config.hidden, config.hidden)
        self.out = nn.Linear(config.hidden, 1)
        self.embed = nn.Embedding(config.n_classes, config.hidden) if config.n_classes else None

    def forward(self, z, digits=None):
        phi = F.leaky_relu(self.features(z), 0.2)
        logit = self.out(phi).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(digits) * phi).sum(1)
        return logit


class LatentGAN(nn.Module):
    """Generator and discriminator; with aux_weight > 0 also a digit classifier of standardised codes."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.classifier = _mlp(config.latent_dim, config.hidden, config.n_classes) if config.aux_weight else None


def train_latent_gan(gan: LatentGAN, codes: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Non-saturating GAN loss with an R1 penalty on real codes (Mescheder et al. 2018), Adam(0.5, 0.9),
    a discriminator learning rate d_lr_scale times the generator's (Heusel et al. 2017).

    Options of the config: a linear learning-rate decay; d_warmup discriminator-only steps first; an
    exponential moving average of the generator's weights as the trained generator (Yazici et al. 2019).
    With aux_weight > 0, a digit classifier is first trained on the real codes and then frozen; the
    generator also minimises aux_weight times its cross-entropy on the generated codes, so that a
    code made for digit y looks like a y to it (the auxiliary classifier of Odena et al. 2017).
    """
    cfg = gan.config
    gen = set_seed(cfg.seed)
    G, D = gan.generator, gan.discriminator
    real_all = G.fit_to_codes(codes, cfg.seed)
    labels = labels.to(DEVICE) if labels is not None else None
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * cfg.d_lr_scale, betas=(0.5, 0.9))
    decay = (lambda step: 1 - step / cfg.steps) if cfg.lr_decay else (lambda step: 1.0)
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_g, opt_d)]
    average = [p.detach().clone() for p in G.parameters()] if cfg.ema else None
    history, start = [], time.perf_counter()
    if cfg.aux_weight:  # the digit classifier of real codes, trained first and then frozen; its own random
        # stream, so that the GAN sees the same batches and noise with and without the auxiliary term
        fit_classifier(gan.classifier, real_all, labels, cfg.aux_steps, cfg.batch_size,
                       torch.Generator().manual_seed(cfg.seed + 10_000), replacement=True).requires_grad_(False)
    name = "latent GAN, mixture prior" if G.mixture else f"latent GAN k={cfg.noise_dim}"
    for step in tqdm(range(-cfg.d_warmup, cfg.steps), desc=name, leave=False):
        idx = torch.randint(0, len(real_all), (cfg.batch_size,), generator=gen).to(DEVICE)
        penalise = (step + cfg.d_warmup) % cfg.r1_every == 0
        real = real_all[idx].requires_grad_(penalise)
        y = labels[idx] if cfg.n_classes else None
        with autocast(cfg.precision):
            fake = G(G.sample_noise(cfg.batch_size, gen).to(DEVICE), y, standardised=True)
            # Discriminator: softplus(-D(real)) + softplus(D(fake)), and on every r1_every-th step
            # r1_every * r1/2 |grad D(real)|^2: the same penalty on average, at a fraction of the cost
            # (lazy regularisation, Karras et al. 2020, sec. 3.1).
            d_real = D(real, y).float()  # logits and losses in float32 whatever the precision
            d_loss = F.softplus(-d_real).mean() + F.softplus(D(fake.detach(), y).float()).mean()
            if penalise:
                grad, = torch.autograd.grad(d_real.sum(), real, create_graph=True)
                d_loss = d_loss + cfg.r1_every * cfg.r1 / 2 * grad.float().pow(2).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if step < 0:  # warm-up: the discriminator only
            continue
        # Generator: the non-saturating loss softplus(-D(fake)) (Goodfellow et al. 2014, sec. 3).
        with autocast(cfg.precision):
            g_loss = F.softplus(-D(fake, y).float()).mean()
            if cfg.aux_weight:
                g_loss = g_loss + cfg.aux_weight * F.cross_entropy(gan.classifier(fake).float(), y)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        if average is not None:
            with torch.no_grad():
                for avg, p in zip(average, G.parameters()):
                    avg.lerp_(p, 1 - cfg.ema)
        if step % 100 == 0:
            history.append((d_loss.item(), g_loss.item()))
    if average is not None:
        with torch.no_grad():
            for avg, p in zip(average, G.parameters()):
                p.copy_(avg)
    return {"train_seconds": time.perf_counter() - start, "loss_history": history}


def gan_config(noise_dim: int, ae_config: AEConfig, conditional: bool = False, aux_weight: float | None = None,
               seed: int = 0, recipe: Recipe | None = None) -> GANConfig:
    """The recipe's latent GAN with Gaussian noise of noise_dim numbers; the conditional one has the auxiliary
    classifier loss (the recipe's weight unless aux_weight says otherwise)."""
    recipe = recipe or RECIPE
    if aux_weight is None:
        aux_weight = recipe.cgan_aux_weight if conditional else 0.0
    return GANConfig(noise_dim=noise_dim, latent_dim=ae_config.d, ae_key=cache_key(ae_config),
                     n_classes=10 if conditional else 0, steps=recipe.cgan_steps if conditional else recipe.gan_steps,
                     aux_weight=aux_weight, aux_steps=recipe.cgan_aux_steps, seed=seed, train_codes=recipe.ae_train_size,
                     precision=runtime.PRECISION, **{**recipe.gan_recipe, **({"lr": recipe.cgan_lr} if conditional else {})})


def mixture_gan_config(ae_config: AEConfig, seed: int = 0, recipe: Recipe | None = None) -> GANConfig:
    """The recipe's mixture-prior latent GAN: a Gaussian mixture of the codes, refined adversarially.
    The seed sets both the mixture's EM start and the adversarial training."""
    recipe = recipe or RECIPE
    return GANConfig(noise_dim=ae_config.d, latent_dim=ae_config.d, ae_key=cache_key(ae_config), prior="gmm",
                     steps=recipe.mixture_steps, **{**recipe.gan_recipe, "lr": recipe.mixture_lr}, lr_decay=False,
                     ema=recipe.mixture_ema, d_warmup=recipe.mixture_warmup, seed=seed, train_codes=recipe.ae_train_size,
                     precision=runtime.PRECISION)


def mixture_recipe_gan_config(ae_config: AEConfig, seed: int = 0, recipe: Recipe | None = None) -> GANConfig:
    """The Gaussian-noise GAN (k = recipe.report_noise_dim) under the mixture-prior GAN's recipe (steps, constant
    learning rate, weight average, warm-up): the two then differ in the prior and the generator's form."""
    recipe = recipe or RECIPE
    mix = mixture_gan_config(ae_config, seed, recipe)
    return replace(gan_config(recipe.report_noise_dim, ae_config, seed=seed, recipe=recipe), steps=mix.steps,
                   lr=mix.lr, lr_decay=mix.lr_decay, ema=mix.ema, d_warmup=mix.d_warmup)


def latent_gan(config: GANConfig, codes=None, labels=None, required: bool = False, folder=None):
    """The trained LatentGAN for `config`, from the cache (`folder`, the run's by default) or trained now; returns
    (gan, info)."""
    if codes is not None and len(codes) != config.train_codes:
        raise ValueError(f"codes holds {len(codes)} codes; the config trains on train_codes={config.train_codes}")

    def train(gan):
        if codes is None:
            raise FileNotFoundError(f"no cached latent GAN for {config}; run `{settings.TRAIN_COMMAND}`")
        return train_latent_gan(gan, codes, labels if config.n_classes else None)

    return cached_model(config, LatentGAN, train, required=required, folder=folder)


def _train_gan_in_worker(config: GANConfig, threads: int, folder, codes: torch.Tensor, labels) -> None:
    import os

    os.environ["TQDM_DISABLE"] = "1"  # the parent shows one bar for the workers' models
    torch.set_num_threads(1)  # always one, as the search's processes train: the same weights
    latent_gan(config, codes, labels if config.n_classes else None, folder=folder)


def train_missing_gans(configs: list, codes: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Train the configs that have no checkpoint yet side by side (cache.train_side_by_side), so that
    `latent_gan(config, codes, labels)` loads each. Each worker trains with one thread, as the search's one-thread
    processes do (the same weights): a step of these small MLPs is bound by Python overhead, so two one-thread
    processes do nearly twice the work of one two-threaded one."""
    from functools import partial

    train_side_by_side(configs, lambda c: c.steps, partial(_train_gan_in_worker, codes=codes, labels=labels),
                       "latent GANs")


@torch.no_grad()
def sample_codes(generator: Generator, n: int, digits: torch.Tensor | None = None, seed: int = 0):
    """n latent codes from the generator, reproducible by seed."""
    noise = generator.sample_noise(n, torch.Generator().manual_seed(seed))
    generator.eval()
    d = digits.to(DEVICE) if digits is not None else None
    return generator(noise.to(DEVICE), d).cpu()


def fit_gaussian(codes: torch.Tensor, seed: int = 0):
    """Baseline: one full-covariance Gaussian fitted to the codes; returns a sampler n -> codes."""
    mean, cov = codes.double().mean(0), torch.cov(codes.double().T)
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)

    def sample(n, seed=seed):
        torch.manual_seed(seed)
        return dist.sample((n,)).float()

    return sample


_MIXTURES = {}  # EM fits of this process, by the codes' bytes, components and seed


def gaussian_mixture(codes: torch.Tensor, components: int = 10, seed: int = 0):
    """A full-covariance Gaussian mixture fitted to the codes by EM (scikit-learn). Fitted once per
    process for the same codes: the mixture baseline and the mixture-prior GAN's start are one fit."""
    from sklearn.mixture import GaussianMixture

    array = codes.detach().cpu().numpy()
    key = (hashlib.sha256(array.tobytes()).hexdigest(), array.shape, components, seed)
    if key not in _MIXTURES:
        _MIXTURES[key] = GaussianMixture(components, covariance_type="full", random_state=seed).fit(array)
    return _MIXTURES[key]


def fit_gmm(codes: torch.Tensor, components: int = 10, seed: int = 0):
    """Baseline: the ex-post Gaussian mixture of Ghosh et al. 2020; returns a sampler n -> codes.

    It is the mixture-prior generator before any training: EM on the codes standardised as the
    GANs see them (its k-means start is not scale-invariant), sampled as mean + Cholesky factor
    times a normal vector.
    """
    d = codes.shape[1]
    mixture = Generator(GANConfig(noise_dim=d, latent_dim=d, prior="gmm", components=components))
    mixture.fit_to_codes(codes, seed)
    mixture.to(DEVICE)
    return lambda n, seed=seed: sample_codes(mixture, n, seed=seed)


# Public sampling API

def generate(n: int, digit: int | None = None, seed: int = 0) -> torch.Tensor:
    """n new digits [n, 1, 32, 32] in [0, 1]: samples of the latent GAN with Gaussian noise (the report's noise size,
    seed 0), or samples of `digit` from the conditional generator if given."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if digit is not None and (not isinstance(digit, int) or isinstance(digit, bool) or not 0 <= digit <= 9):
        raise ValueError(f"digit must be None or an integer 0..9, got {digit!r}")
    ae_cfg = ae_config()
    ae, _ = autoencoder(ae_cfg, required=True)
    config = gan_config(RECIPE.report_noise_dim, ae_cfg, conditional=digit is not None)
    gan, _ = latent_gan(config, required=True)
    digits = torch.full((n,), digit, dtype=torch.long) if digit is not None else None
    return decode(ae.decoder, sample_codes(gan.generator, n, digits, seed=seed))
