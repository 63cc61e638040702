"""Section 3: few-label classifiers on the pretrained encoder (frozen, self-trained, fine-tuned, whole, scratch)
and cluster-then-label on its codes."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from dataclasses import dataclass
from dataclasses import replace

from .settings import RECIPE, Recipe
from .runtime import DEVICE, adam, autocast, set_seed, tqdm
from .data import random_shift
from .autoencoder import AEConfig, Encoder, encode
from .classifier import accuracy, fit_classifier


# Section 3: transfer learning from a few labels

# The arms that train_few_label trains. "whole": the pretrained network trained end to end at one
# learning rate for head and encoder, BatchNorm learning too: the exercise's plain reading.
ALL_ARMS = ("frozen", "selftrain", "finetune", "whole", "scratch")
FROZEN_ARMS = ("frozen", "selftrain")
# The report's arms, in its table's order: "cluster" is cluster-then-label on the frozen codes (CodeClusters).
ARMS = ("frozen", "selftrain", "cluster", "finetune", "whole", "scratch")
BATCHNORM_MODES = ("frozen", "train")
STATS_SIZE = 5000  # images whose codes set the standardisation of a randomly initialised encoder


def balanced_subset(labels: torch.Tensor, n: int, seed: int, n_classes: int = 10) -> torch.Tensor:
    """Indices of n examples, n / n_classes of each class, drawn without replacement by seed."""
    if not isinstance(n, int) or n < n_classes or n % n_classes:
        raise ValueError(f"n must be a positive multiple of n_classes={n_classes}, got {n!r}")
    per_class = n // n_classes
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(n_classes):
        pool = (labels == c).nonzero().flatten()
        if len(pool) < per_class:
            raise ValueError(f"n={n} asks for {per_class} labels of class {c}, but only {len(pool)} exist")
        chosen.append(pool[torch.randperm(len(pool), generator=gen)[:per_class]])
    return torch.cat(chosen)


@dataclass(frozen=True)
class TransferConfig:
    """The recipe of a few-label classifier of section 3. The defaults are the report's base recipe, which each
    arm changes (Recipe.transfer_settings); the transfer study (ex3lib.search_fewlabel) scores other settings on validation images."""

    hidden: int = 128
    steps: int = 400  # every arm's but the whole network's (recipe.transfer_settings)
    batch_size: int = 128  # or all labels, when fewer
    lr: float = 1e-3  # head, and the whole network from scratch
    encoder_lr: float = 1e-4  # pretrained encoder when fine-tuned
    weight_decay: float = 1e-4
    max_shift: int = 0  # random translation in pixels (within the zero padding) of the images whose encoder trains
    batchnorm: str = "frozen"  # fine-tuned encoder: BatchNorm keeps its pretraining statistics, or "train"s
    # Self-training of the frozen arm: each round keeps this share of the unlabelled pool,
    # the most confident pseudo-labels, the same number per predicted class. The defaults are the schedule the
    # few-label studies start from (in their trials' keys); the report's comes from the unlabelled study.
    pseudo_fractions: tuple = (0.1, 0.3, 0.5, 0.7, 0.9)
    pseudo_steps: int = 300
    pseudo_batch_size: int = 512
    labelled_share: float = 0.1  # the real labels are repeated to make about this share of a round's data

    def __post_init__(self):
        if not all(0 < f <= 1 for f in self.pseudo_fractions):
            raise ValueError(f"pseudo_fractions must lie in (0, 1], got {self.pseudo_fractions}")
        if not 0 < self.labelled_share < 1:
            raise ValueError(f"labelled_share must lie in (0, 1), got {self.labelled_share}")
        if self.batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {self.batchnorm!r}")


def transfer_config(recipe: Recipe | None = None) -> TransferConfig:
    """The base recipe that every arm's settings change (the transfer study searches from it)."""
    recipe = recipe or RECIPE
    return TransferConfig(pseudo_fractions=recipe.selftrain_fractions, pseudo_steps=recipe.selftrain_steps)


def arm_config(arm: str, recipe: Recipe | None = None) -> TransferConfig:
    """The recipe's config of one arm of train_few_label: the base recipe with recipe.transfer_settings[arm]."""
    recipe = recipe or RECIPE
    if arm not in recipe.transfer_settings:
        raise ValueError(f"arm must be one of {tuple(recipe.transfer_settings)}, got {arm!r}")
    config = replace(transfer_config(recipe), **recipe.transfer_settings[arm])
    return replace(config, steps=min(config.steps, recipe.transfer_max_steps)) if recipe.transfer_max_steps else config


def transfer_draws() -> dict:
    """{labels: draws} of section 3."""
    return {n: RECIPE.label_draws for n in RECIPE.label_counts}


class FewLabelClassifier(nn.Module):
    """Encoder, a fixed standardisation of its codes, and an MLP head to 10 classes."""

    def __init__(self, encoder: Encoder, d: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def standardise(self, codes):
        return (codes - self.mean) / self.std

    def from_codes(self, codes):
        """Class logits of the encoder's codes: the classifier without its encoder."""
        return self.head(self.standardise(codes))

    def forward(self, x):
        return self.from_codes(self.encoder(x))


@torch.no_grad()
def confident_pseudo_labels(head: nn.Module, pool: torch.Tensor, fraction: float):
    """(indices, predicted labels) of the most confident share `fraction` of the pool, the same
    number per predicted class so that no class crowds out the others."""
    probs = F.softmax(head(pool), 1)
    confidence, predicted = probs.max(1)
    per_class = int(fraction * len(pool) / probs.shape[1])
    keep = []
    for c in range(probs.shape[1]):
        members = (predicted == c).nonzero().flatten()
        keep.append(members[confidence[members].argsort(descending=True)[:per_class]])
    keep = torch.cat(keep)
    return keep, predicted[keep]


def self_train_head(model: FewLabelClassifier, codes, labels, pool_codes, config: TransferConfig,
                    gen: torch.Generator) -> None:
    """Pseudo-labelling with a growing share of the unlabelled pool (Lee 2013; rounds that restart
    the head as in Cascante-Bonilla et al. 2021). Only the head learns; the labels stay the few given."""
    pool = model.standardise(pool_codes)
    for fraction in config.pseudo_fractions:
        keep, pseudo = confident_pseudo_labels(model.head, pool, fraction)
        repeat = max(1, round(config.labelled_share * len(keep) / len(codes)))
        inputs = torch.cat([codes.repeat(repeat, 1), pool[keep]])
        targets = torch.cat([labels.repeat(repeat), pseudo])
        for layer in model.head:  # a fresh head each round, so early mistakes are not built in
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        fit_classifier(model.head, inputs, targets, config.pseudo_steps, config.pseudo_batch_size, gen,
                       config.lr, config.weight_decay)


def train_few_label(arm: str, encoder_state: dict, ae_config: AEConfig, images, labels, unlabeled,
                    config: TransferConfig = TransferConfig(), seed: int = 0,
                    unlabeled_codes: torch.Tensor | None = None, monitor=None,
                    precision: str | None = None) -> FewLabelClassifier:
    """Train one arm of section 3 on the labelled `images`; returns the classifier in eval mode.

    'frozen': the pretrained encoder stays fixed and only the head learns, on the codes of the
    labelled images. 'selftrain': the same, then rounds of pseudo-labels on the codes of
    the `unlabeled` images. 'finetune': everything learns, the encoder from its pretrained weights.
    'whole': the same at the head's learning rate with BatchNorm learning (the plain reading).
    'scratch': everything learns from random weights. Codes are standardised with the starting
    encoder's statistics on the `unlabeled` images (the first STATS_SIZE of them for 'scratch');
    `unlabeled_codes`, the pretrained encoder's codes of `unlabeled`, saves encoding them on
    every call. `monitor=(every, fn)` calls fn(step, model) every `every` steps of the first
    training stage (for learning curves). `precision` overrides the report's (runtime.PRECISION).
    """
    if arm not in ALL_ARMS:
        raise ValueError(f"arm must be one of {ALL_ARMS}, got {arm!r}")
    gen = set_seed(seed)
    encoder = Encoder(ae_config)
    if arm != "scratch":
        encoder.load_state_dict(encoder_state)
    model = FewLabelClassifier(encoder, ae_config.d, config.hidden).to(DEVICE)
    if arm == "scratch":  # a random encoder: its own statistics, on part of the pool
        unlabeled_codes = encode(encoder, unlabeled[:STATS_SIZE])
    elif unlabeled_codes is None:
        unlabeled_codes = encode(encoder, unlabeled)
    unlabeled_codes = unlabeled_codes.to(DEVICE)
    model.mean.copy_(unlabeled_codes.mean(0))
    model.std.copy_(unlabeled_codes.std(0).clamp_min(1e-6))
    labels = labels.to(DEVICE)
    if arm in FROZEN_ARMS:
        encoder.requires_grad_(False)
        codes = model.standardise(encode(encoder, images).to(DEVICE))
        head_monitor = None if monitor is None else (monitor[0], lambda step, _: monitor[1](step, model))
        fit_classifier(model.head, codes, labels, config.steps, config.batch_size, gen, config.lr, config.weight_decay,
                       monitor=head_monitor, precision=precision)
        if arm == "selftrain":
            self_train_head(model, codes, labels, unlabeled_codes, config, gen)
        return model.eval()
    encoder_lr = config.encoder_lr if arm == "finetune" else config.lr
    opt = adam([{"params": model.head.parameters(), "lr": config.lr},
                {"params": encoder.parameters(), "lr": encoder_lr}], config.lr, weight_decay=config.weight_decay)
    batch = min(config.batch_size, len(images))
    for step in range(config.steps):
        model.train()
        if arm == "finetune" and config.batchnorm == "frozen":
            encoder.eval()  # pretrained BatchNorm statistics stay
        idx = torch.randperm(len(images), generator=gen)[:batch]
        x = random_shift(images[idx], config.max_shift, gen).to(DEVICE)
        with autocast(precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels[idx.to(DEVICE)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if monitor is not None and (step + 1) % monitor[0] == 0:
            monitor[1](step + 1, model)
    return model.eval()


def transfer_experiment(ae_config: AEConfig, encoder_state: dict, train_images, train_labels,
                        test_images, test_labels, draws: dict, configs: dict | None = None,
                        cluster_setting: dict | None = None) -> list[dict]:
    """Training and test accuracy of every arm of ARMS, for draws[n] draws of a labelled subset of n images.

    The labelled subsets come from the training images; the first RECIPE.transfer_pool_size training images
    (the 55,000 fit images in the report), without their labels, are the unlabelled pool. Every arm of one draw
    sees the same labelled images. `configs` maps each arm of train_few_label to its recipe (arm_config
    by default). The frozen heads of all draws of a
    label count train as one batched model; the frozen arms and cluster-then-label are scored on
    codes encoded once; the clusters are fitted on the pool's codes at RECIPE.cluster_fits seeds.
    """
    configs = configs or {arm: arm_config(arm) for arm in ALL_ARMS}
    train_images, train_labels = train_images[:RECIPE.transfer_pool_size], train_labels[:RECIPE.transfer_pool_size]
    encoder = Encoder(ae_config)
    encoder.load_state_dict(encoder_state)
    encoder.to(DEVICE).eval()
    pool_codes, test_codes = encode(encoder, train_images), encode(encoder, test_images).to(DEVICE)
    # Cluster-then-label's fits (projection and mixture) at RECIPE.cluster_fits seeds; draw s uses fit s mod fits,
    # so its spread over draws holds the fit's variance as well as the labelled draw's.
    fits = [CodeClusters(pool_codes, **{**(cluster_setting or RECIPE.cluster_setting), "seed": f})
            for f in tqdm(range(RECIPE.cluster_fits), desc="cluster fits", leave=False)]
    test_resp, y = [c.responsibilities(test_codes) for c in fits], train_labels
    rows, bar = [], tqdm(total=sum(draws.values()) * len(ARMS), desc="transfer runs", leave=False)
    for n, k in draws.items():
        idx = [balanced_subset(y, n, seed=1000 * n + s) for s in range(k)]
        heads = frozen_heads(encoder_state, ae_config, pool_codes, idx, [y[i] for i in idx], list(range(k)), configs["frozen"])
        for s, i in enumerate(idx):
            row = lambda arm, train, test: rows.append({"labels": n, "draw": s, "arm": arm, "train accuracy": train,
                                                        "accuracy": test})
            fit = s % len(fits)
            clusters = fits[fit]
            names = clusters.name_clusters(i.numpy(), y[i].numpy())
            row("cluster", float((clusters.predict(names, clusters.fitted_resp[i.numpy()]) == y[i].numpy()).mean()),
                float((clusters.predict(names, test_resp[fit]) == test_labels.numpy()).mean()))
            row("frozen", accuracy(heads[s].from_codes, pool_codes[i], y[i]), accuracy(heads[s].from_codes, test_codes, test_labels))
            for arm in ("selftrain", "finetune", "whole", "scratch"):
                model = train_few_label(arm, encoder_state, ae_config, train_images[i], y[i], train_images, configs[arm],
                                        seed=s, unlabeled_codes=pool_codes)
                if arm in FROZEN_ARMS:
                    row(arm, accuracy(model.from_codes, pool_codes[i], y[i]), accuracy(model.from_codes, test_codes, test_labels))
                else:
                    row(arm, accuracy(model, train_images[i], y[i]), accuracy(model, test_images, test_labels))
            bar.update(len(ARMS))
    bar.close()
    return sorted(rows, key=lambda r: (r["labels"], r["draw"], ARMS.index(r["arm"])))


def encoder_lr0_control(ae_config: AEConfig, encoder_state: dict, train_images, train_labels, test_images,
                        test_labels, n: int = 10, config: TransferConfig | None = None,
                        labelled: torch.Tensor | None = None, unlabeled_codes: torch.Tensor | None = None) -> dict:
    """Fine-tuning at encoder learning rate 0 (BatchNorm frozen, no shifts) against the frozen arm on the same
    draw and seed, both in float32 (under bfloat16 autocast the fine-tuned head would see codes computed in
    bfloat16): the fine-tuning code path with a still encoder must be the frozen arm. `config` is the frozen
    arm's (arm_config by default); `labelled`, the indices of the n labelled images (the report's first draw by
    default); `test_images` are whatever images score the two."""
    config = replace(config or arm_config("frozen"), encoder_lr=0.0, batchnorm="frozen", max_shift=0)
    i = balanced_subset(train_labels, n, seed=1000 * n) if labelled is None else labelled
    models = {arm: train_few_label(arm, encoder_state, ae_config, train_images[i], train_labels[i], train_images,
                                   config, seed=0, unlabeled_codes=unlabeled_codes, precision="float32")
              for arm in ("frozen", "finetune")}
    acc = {arm: accuracy(m, test_images, test_labels) for arm, m in models.items()}
    with torch.no_grad():
        logits = [torch.cat([m(test_images[j:j + 2000].to(DEVICE)).cpu() for j in range(0, len(test_images), 2000)])
                  for m in models.values()]
    return {"labels": n, "frozen": acc["frozen"], "finetune_lr0": acc["finetune"],
            "max_abs_diff": abs(acc["frozen"] - acc["finetune"]),
            "max_logit_diff": float((logits[0] - logits[1]).abs().max())}


class BatchedHeads(nn.Module):
    """K independent heads d -> hidden -> 10 (Linear, ReLU, Linear) as one model: the weights of head k
    are slice k of stacked tensors, applied with batched matrix products. On a CPU a 10-128-10 head
    is overhead-bound, so K heads in one model cost little more than one."""

    def __init__(self, heads: list):
        super().__init__()
        first = [h[0] for h in heads]
        second = [h[2] for h in heads]
        self.w1 = nn.Parameter(torch.stack([l.weight.detach().T for l in first]).clone())  # [K, d, hidden]
        self.b1 = nn.Parameter(torch.stack([l.bias.detach()[None] for l in first]).clone())  # [K, 1, hidden]
        self.w2 = nn.Parameter(torch.stack([l.weight.detach().T for l in second]).clone())  # [K, hidden, 10]
        self.b2 = nn.Parameter(torch.stack([l.bias.detach()[None] for l in second]).clone())  # [K, 1, 10]

    def forward(self, x):  # x: [K, B, d] => logits [K, B, 10]
        return torch.baddbmm(self.b2, torch.baddbmm(self.b1, x, self.w1).relu(), self.w2)

    def copy_into(self, heads: list) -> None:
        """Write head k's trained weights back into heads[k]."""
        with torch.no_grad():
            for k, h in enumerate(heads):
                h[0].weight.copy_(self.w1[k].T)
                h[0].bias.copy_(self.b1[k, 0])
                h[2].weight.copy_(self.w2[k].T)
                h[2].bias.copy_(self.b2[k, 0])


def fit_heads(heads: list, inputs: list, labels: list, steps: int, batch_size: int, gens: list,
              lr: float = 1e-3, weight_decay: float = 0.0, monitor=None) -> list:
    """fit_classifier for K heads at once: head k trains on (inputs[k], labels[k]) with batches drawn by
    gens[k], exactly as K separate fit_classifier calls would (same initial weights, batches and Adam
    updates; Adam and weight decay act element by element). All inputs must hold the same number of
    examples. `monitor=(every, fn)` calls fn(step, heads) with the heads updated. Returns the heads."""
    if not (len(heads) == len(inputs) == len(labels) == len(gens)) or not heads:
        raise ValueError("heads, inputs, labels and gens must be non-empty lists of one length")
    if len({len(x) for x in inputs}) != 1:
        raise ValueError(f"every head needs the same number of examples, got {[len(x) for x in inputs]}")
    model = BatchedHeads(heads).to(DEVICE)
    x_all, y_all = torch.stack(inputs).to(DEVICE), torch.stack(labels).to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n, batch, k = x_all.shape[1], min(batch_size, x_all.shape[1]), len(heads)
    rows = torch.arange(k, device=DEVICE)[:, None]
    for step in range(steps):
        idx = torch.stack([torch.randperm(n, generator=g)[:batch] for g in gens]).to(DEVICE)
        with autocast():
            logits = model(x_all[rows, idx])
        # The sum of the heads' mean losses: head k's gradient is that of its own loss alone.
        loss = F.cross_entropy(logits.float().flatten(0, 1), y_all[rows, idx].flatten(), reduction="none")
        loss = loss.view(k, batch).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if monitor is not None and (step + 1) % monitor[0] == 0:
            model.copy_into(heads)
            monitor[1](step + 1, heads)
    model.copy_into(heads)
    return [h.eval() for h in heads]


def frozen_heads(encoder_state: dict, ae_config: AEConfig, pool_codes: torch.Tensor, labelled: list, labels: list,
                 seeds: list, config: TransferConfig = TransferConfig(), monitor=None) -> list:
    """The frozen arm for several draws at once: the FewLabelClassifier that train_few_label('frozen', ...,
    seed=seeds[k]) returns for the draw whose pool indices are labelled[k], its head trained in one
    batched model. `pool_codes` are the pretrained encoder's codes of the whole pool."""
    models, gens = [], []
    for seed in seeds:
        gens.append(set_seed(seed))  # the same random streams as train_few_label
        encoder = Encoder(ae_config)
        encoder.load_state_dict(encoder_state)
        model = FewLabelClassifier(encoder.requires_grad_(False), ae_config.d, config.hidden).to(DEVICE)
        model.mean.copy_(pool_codes.mean(0))
        model.std.copy_(pool_codes.std(0).clamp_min(1e-6))
        models.append(model)
    inputs = [m.standardise(pool_codes[idx].to(DEVICE)) for m, idx in zip(models, labelled)]
    head_monitor = None if monitor is None else (monitor[0], lambda step, _: monitor[1](step, models))
    fit_heads([m.head for m in models], inputs, [y.to(DEVICE) for y in labels], config.steps, config.batch_size,
              gens, config.lr, config.weight_decay, monitor=head_monitor)
    return [m.eval() for m in models]


def cached_umap():
    """The umap module, its numba-compiled functions kept on disk between processes.

    umap-learn compiles most of its functions without numba's disk cache: 20-30 s in every process
    that fits a projection here. enable_caching() (numba's own switch behind cache=True) stores the same
    machine code in NUMBA_CACHE_DIR, or beside umap's source, for later processes; where neither is
    writable, umap compiles in every process as before.
    """
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name in ("umap.umap_", "umap.layouts", "umap.distances", "umap.utils", "umap.sparse", "umap.spectral"):
        for function in vars(importlib.import_module(name)).values():
            if isinstance(function, Dispatcher) and isinstance(function._cache, NullCache):
                try:
                    function.enable_caching()
                except RuntimeError:  # numba found no writable cache folder
                    break
    return importlib.import_module("umap")


EXACT_NEIGHBOURS_BELOW = 4096  # umap-learn's size below which it finds exact neighbours (umap_.UMAP.fit)


class CodeClusters:
    """Cluster-then-label on frozen codes (the N2D recipe, McConville et al. 2020): a UMAP projection
    of the standardised codes, then a Gaussian mixture in the projection, both fitted on unlabelled
    codes only; each cluster is named after the labelled codes it holds, and a code is classified
    by the name of its cluster. Codes the projection did not see are only transformed."""

    def __init__(self, codes: torch.Tensor, dims: int = 10, neighbors: int = 15, components: int = 10, seed: int = 0,
                 like: "CodeClusters | None" = None):
        """`like`: clusters fitted to the same codes with the same dims, neighbors and seed, whose projection
        is reused (only the mixture is fitted again)."""
        from sklearn.mixture import GaussianMixture

        umap = cached_umap()
        if components < 10:
            raise ValueError(f"components must be at least the 10 digits, got {components}")
        if like is not None:
            if (like.dims, like.neighbors, like.seed, len(like.embedded)) != (dims, neighbors, seed, len(codes)):
                raise ValueError("like must be fitted to the same codes with the same dims, neighbors and seed")
            self.mean, self.std, self.projection, self.embedded = like.mean, like.std, like.projection, like.embedded
            self.fitted = like.fitted
        else:
            self.mean, self.std = codes.mean(0), codes.std(0).clamp_min(1e-6)
            x = self._standardise(codes)
            # Below UMAP's own size for exact neighbours it would compute every distance through one Python call
            # per pair (84 s of the 115 s of section 3 in the smoke run); the same Euclidean distances come from
            # one torch.cdist here. The report's 55,000 codes take UMAP's approximate search as before.
            self.fitted = x if len(x) < EXACT_NEIGHBOURS_BELOW else None
            self.projection = umap.UMAP(n_components=dims, n_neighbors=neighbors, min_dist=0.0, random_state=seed,
                                        n_jobs=1, metric="euclidean" if self.fitted is None else "precomputed")
            with warnings.catch_warnings():  # a precomputed metric's note that inverse_transform is unavailable
                warnings.simplefilter("ignore", UserWarning)
                self.embedded = self.projection.fit_transform(self._projection_input(x))
        self.dims, self.neighbors, self.seed = dims, neighbors, seed
        self.mixture = GaussianMixture(components, covariance_type="full", random_state=seed).fit(self.embedded)
        self.fitted_resp = self.mixture.predict_proba(self.embedded)  # [N, components] of the fitted codes

    def _standardise(self, codes: torch.Tensor) -> np.ndarray:
        return ((codes - self.mean) / self.std).cpu().numpy()

    def _projection_input(self, x: np.ndarray) -> np.ndarray:
        """What the projection reads for standardised codes x: x itself, or (precomputed metric) the Euclidean
        distances from its rows to the fitted codes, by direct differences rather than the matrix-product
        expansion, so that a code's distance to itself is exactly 0, as UMAP's nearest-neighbour distance needs."""
        if self.fitted is None:
            return x
        return torch.cdist(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(self.fitted, dtype=torch.float64),
                           compute_mode="donot_use_mm_for_euclid_dist").numpy()

    def responsibilities(self, codes: torch.Tensor) -> np.ndarray:
        with warnings.catch_warnings():  # umap's note that a precomputed metric's input must be distances: it is
            warnings.simplefilter("ignore", UserWarning)
            projected = self.projection.transform(self._projection_input(self._standardise(codes)))
        return self.mixture.predict_proba(projected)

    def name_clusters(self, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Digit of each cluster: the class whose labelled fitted codes (indices `labelled`) put the
        most responsibility on it, so that a cluster without labelled members still gets a name."""
        votes = self.fitted_resp[labelled].T @ np.eye(10)[np.asarray(labels)]  # [components, 10]
        return votes.argmax(1)

    def predict(self, names: np.ndarray, resp: np.ndarray) -> np.ndarray:
        """Digits of codes with responsibilities `resp`, given the clusters' names."""
        return names[resp.argmax(1)]
