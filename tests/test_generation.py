import numpy as np
from dataclasses import replace
import pytest
import torch

import helpers as h
from conftest import patch_everywhere
from ex3lib import generation
from ex3lib.figures import _image_grid


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    feats = np.random.default_rng(0).normal(size=(5000, 16))
    assert abs(h.frechet_distance(feats, feats)) < 1e-6
    small, large = h.frechet_distance(feats, feats + 0.5), h.frechet_distance(feats, feats + 1.0)
    assert small == pytest.approx(16 * 0.5**2, rel=1e-3)  # a pure mean shift adds |shift|^2
    assert large == pytest.approx(16 * 1.0**2, rel=1e-3)
    wider = h.frechet_distance(feats, 2 * feats)  # covariance 4I against I: 16 * (1 - 2)^2
    assert wider == pytest.approx(16.0, rel=0.05)
    with pytest.raises(ValueError, match="same F"):
        h.frechet_distance(feats, feats[:, :3])


def test_feature_spread_and_class_balance():
    feats = np.random.default_rng(1).normal(size=(20000, 4))
    assert h.feature_spread(feats) == pytest.approx(2.0, rel=0.02)
    assert h.feature_spread(3 * feats) == pytest.approx(3 * h.feature_spread(feats))
    probs = np.eye(10)[np.arange(1000) % 10]
    assert h.class_balance(probs) == pytest.approx({"max_share": 0.1, "min_share": 0.1, "entropy": 1.0})


@pytest.mark.parametrize("n_classes", [0, 10])
def test_generator_and_discriminator_shapes(n_classes):
    cfg = h.GANConfig(noise_dim=3, latent_dim=10, n_classes=n_classes)
    gan = h.LatentGAN(cfg)
    digits = torch.arange(6) % 10 if n_classes else None
    z = gan.generator(torch.randn(6, 3), digits)
    assert z.shape == (6, 10)
    assert gan.discriminator(z, digits).shape == (6,)
    with pytest.raises(ValueError, match="noise_dim"):
        h.GANConfig(noise_dim=0)
    with pytest.raises(ValueError, match="n_classes"):
        h.GANConfig(n_classes=5)


def test_mixture_prior_generator_starts_as_the_fitted_mixture():
    """prior="gmm": noise is (one-hot component, z); before training the generator is the fitted mixture."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 1.0]])
    side = torch.randint(0, 2, (4000,), generator=gen)
    codes = centres[side] + torch.randn(4000, 2, generator=gen) * torch.tensor([0.5, 1.5])
    G = h.Generator(h.GANConfig(noise_dim=2, latent_dim=2, prior="gmm", components=2))
    G.init_mixture(codes, seed=0)
    noise = G.sample_noise(20000, torch.Generator().manual_seed(1))
    assert noise.shape == (20000, 4) and torch.equal(noise[:, :2].sum(1), torch.ones(20000))
    with torch.no_grad():
        samples = G(noise)
    assert torch.allclose(samples.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(samples.T), torch.cov(codes.T), rtol=0.1, atol=0.1)
    right = samples[:, 0] > 0  # each mode keeps its own spread
    assert torch.allclose(samples[right].std(0), torch.tensor([0.5, 1.5]), rtol=0.1)
    for bad in (dict(noise_dim=3, latent_dim=2), dict(noise_dim=2, latent_dim=2, n_classes=10), dict(components=0)):
        with pytest.raises(ValueError, match="prior='gmm'"):
            h.GANConfig(**{"noise_dim": 10, "latent_dim": 10, "prior": "gmm", **bad})
    with pytest.raises(ValueError, match="prior must"):
        h.GANConfig(prior="uniform")


def test_adversarial_refinement_moves_a_misspecified_mixture_towards_the_data(checkpoint_dir):
    """Codes on a ring, one mixture component: the fitted Gaussian fills the hole in the middle;
    the refined generator (moving average of its weights) puts far fewer samples there."""
    gen = torch.Generator().manual_seed(2)
    angle = 2 * torch.pi * torch.rand(4000, generator=gen)
    codes = torch.stack([angle.cos(), angle.sin()], 1) * 3 + 0.2 * torch.randn(4000, 2, generator=gen)
    cfg = h.GANConfig(noise_dim=2, latent_dim=2, prior="gmm", components=1, hidden=64, steps=1500, lr=1e-3,
                      lr_decay=False, ema=0.99, d_warmup=100, train_codes=len(codes))
    start = h.Generator(cfg)
    start.fit_to_codes(codes, seed=0)
    gan, _ = h.latent_gan(cfg, codes)
    in_hole = lambda g: (h.sample_codes(g, 5000, seed=3).norm(dim=1) < 2).float().mean()
    assert in_hole(start) > 0.25  # a Gaussian with the ring's covariance: about 0.36
    assert in_hole(gan.generator) < in_hole(start) / 2


def test_interpolate_endpoints_and_shape():
    a, b = torch.zeros(3, 4), torch.ones(3, 4)
    path = h.interpolate(a, b, 10)
    assert path.shape == (3, 10, 4)
    assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)
    assert torch.allclose(path[:, 5], torch.full((3, 4), 5 / 9))
    with pytest.raises(ValueError, match="steps"):
        h.interpolate(a, b, 1)


def test_slerp_keeps_unit_norms_and_hits_both_ends():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.nn.functional.normalize(torch.randn(2, 50, 8, generator=gen), dim=2)
    path = h.slerp(a, b, 9)
    assert path.shape == (50, 9, 8)
    assert torch.allclose(path.norm(dim=2), torch.ones(50, 9), atol=1e-5)
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    line = h.interpolate(a, b, 9)
    assert line[:, 4].norm(dim=1).mean() < path[:, 4].norm(dim=1).mean()  # the line cuts the corner
    scaled = h.slerp(2 * a, 4 * b, 5)
    assert torch.allclose(scaled.norm(dim=2), torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0]).expand(50, 5), atol=1e-4)


def test_generator_inversion_recovers_a_code_the_generator_produced():
    h.set_seed(0)
    G = h.Generator(h.GANConfig(noise_dim=4, latent_dim=6, hidden=64)).to(h.DEVICE)
    noise = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        codes = G(noise.to(h.DEVICE)).cpu()
    found, error = h.invert_generator(G, codes, starts=4, steps=300)
    assert found.shape == (20, 4) and error.shape == (20,)
    assert error.max() < 1e-3
    with torch.no_grad():
        assert torch.allclose(G(found.to(h.DEVICE)).cpu(), codes, atol=0.05)
    with pytest.raises(ValueError, match="unconditional"):
        h.invert_generator(h.Generator(h.GANConfig(noise_dim=4, latent_dim=6, n_classes=10)), codes)


def test_label_changes_and_path_smoothness():
    assert h.label_changes(np.array([[3, 3, 3, 3], [1, 1, 2, 2], [1, 2, 1, 2]])).tolist() == [0, 1, 3]


def test_mixture_baseline_samples_through_cholesky_factors_without_warnings():
    import warnings

    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(3000, 3, generator=gen) @ torch.tensor([[1.0, 0.9, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 1e-3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's sampler warned about non-PSD covariances here
        sample = h.fit_gmm(codes, components=3, seed=0)
        x = sample(20000)
    assert torch.allclose(x.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(x.T), torch.cov(codes.T), atol=0.05)
    assert torch.equal(x, sample(20000)) and not torch.equal(x, sample(20000, seed=1))


def test_generate_names_the_command_when_untrained(checkpoint_dir):
    with pytest.raises(FileNotFoundError, match="make report"):
        h.generate(2)


@pytest.fixture(scope="module")
def trained_report_models(tmp_path_factory):
    """The report's (smoke-mode) autoencoder and latent GANs, trained into a private cache."""
    folder = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        patch_everywhere(mp, "CHECKPOINT_DIR", folder)
        images, labels = h.load_mnist(train=True)
        images, labels = images[:h.RECIPE.ae_train_size + h.RECIPE.ae_val_size], labels[:h.RECIPE.ae_train_size + h.RECIPE.ae_val_size]
        ae, _ = h.autoencoder(h.ae_config(), images)
        # the report's GANs train on the codes of the autoencoder's own training images
        codes, labels = h.encode(ae.encoder, images[:h.RECIPE.ae_train_size]), labels[:h.RECIPE.ae_train_size]
        h.latent_gan(h.gan_config(h.RECIPE.report_noise_dim, ae.config), codes)
        h.latent_gan(h.gan_config(h.RECIPE.report_noise_dim, ae.config, conditional=True), codes, labels)
        yield folder


def test_generate_shape_range_and_determinism(trained_report_models, monkeypatch):
    patch_everywhere(monkeypatch, "CHECKPOINT_DIR", trained_report_models)
    for digit in (None, 3):
        x = h.generate(6, digit=digit, seed=5)
        assert x.shape == (6, 1, 32, 32) and x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1
        assert torch.equal(x, h.generate(6, digit=digit, seed=5))
        assert not torch.equal(x, h.generate(6, digit=digit, seed=6))


def test_generate_bad_arguments(trained_report_models, monkeypatch):
    patch_everywhere(monkeypatch, "CHECKPOINT_DIR", trained_report_models)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must"):
            h.generate(n)
    for digit in (-1, 10, 3.0, True):
        with pytest.raises(ValueError, match="digit must"):
            h.generate(2, digit=digit)


def test_conditional_generator_obeys_the_digit(checkpoint_dir):
    """On codes whose class is readable (a stub decoder + classifier: argmax of the first 10
    coordinates), changing only the digit input changes what is generated."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (4000,), generator=gen)
    codes = 0.3 * torch.randn(4000, 10, generator=gen) + 3 * torch.nn.functional.one_hot(labels, 10)
    cfg = h.GANConfig(noise_dim=4, latent_dim=10, n_classes=10, steps=600, hidden=64, train_codes=len(codes))
    gan, _ = h.latent_gan(cfg, codes, labels)
    noise_seed = 11
    predicted = torch.stack([h.sample_codes(gan.generator, 200, torch.full((200,), d), seed=noise_seed).argmax(1)
                             for d in range(10)])  # same noise, only the digit differs
    accuracy = (predicted == torch.arange(10).unsqueeze(1)).float().mean()
    assert accuracy > 0.9


def test_auxiliary_classifier_is_trained_first_and_stays_frozen(checkpoint_dir):
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (3000,), generator=gen)
    codes = 0.3 * torch.randn(3000, 10, generator=gen) + 3 * torch.nn.functional.one_hot(labels, 10)
    cfg = h.GANConfig(noise_dim=4, latent_dim=10, n_classes=10, steps=300, hidden=64, aux_weight=0.1, aux_steps=300,
                      train_codes=len(codes))
    gan, _ = h.latent_gan(cfg, codes, labels)
    assert not any(p.requires_grad for p in gan.classifier.parameters())
    standard = (codes - gan.generator.code_mean) / gan.generator.code_std
    with torch.no_grad():
        assert (gan.classifier(standard).argmax(1) == labels).float().mean() > 0.95
    # The checkpoint holds the classifier: loading it back gives the same weights.
    again, info = h.latent_gan(cfg, required=True)
    assert info["cached"]
    assert all(torch.equal(a, b) for a, b in zip(gan.classifier.state_dict().values(),
                                                 again.classifier.state_dict().values()))
    with pytest.raises(ValueError, match="aux_weight"):
        h.GANConfig(aux_weight=0.1)  # unconditional: nothing to classify


def test_the_digit_picker_shows_the_chosen_digit_and_noise():
    """The control behind section 5: its callback draws the conditional generator's samples of the
    digit and noise seed chosen on its sliders."""
    import matplotlib

    matplotlib.use("Agg")
    torch.manual_seed(0)
    decoder = h.Decoder(h.AEConfig(d=10)).to(h.DEVICE)
    generator = h.Generator(h.GANConfig(noise_dim=4, latent_dim=10, n_classes=10)).to(h.DEVICE)
    picker, show_digit = h.digit_picker(decoder, generator, n=4)
    digit_slider, seed_slider = picker.children[:2]
    assert (digit_slider.min, digit_slider.max, digit_slider.description) == (0, 9, "digit")
    assert seed_slider.description == "noise seed"

    def drawn(digit, seed):
        fig = show_digit(digit, seed)
        assert f"digit {digit}" in fig.axes[0].get_title() and f"seed {seed}" in fig.axes[0].get_title()
        return np.asarray(fig.axes[0].images[0].get_array())

    expected = h.decode(decoder, h.sample_codes(generator, 4, torch.full((4,), 3), seed=5))
    assert np.allclose(drawn(3, 5), _image_grid(expected, nrow=4))
    assert np.array_equal(drawn(3, 5), drawn(3, 5))
    assert not np.array_equal(drawn(3, 5), drawn(4, 5))  # the digit input changes the samples
    assert not np.array_equal(drawn(3, 5), drawn(3, 6))  # so does the noise seed


def test_the_auxiliary_term_leaves_the_gans_batches_and_noise_unchanged():
    """The two arms of section 5's ablation see the same batches and noise: with a vanishing auxiliary
    weight the generator trains as without the term, although the auxiliary classifier trains first."""
    gen = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 10, (2000,), generator=gen)
    codes = 0.3 * torch.randn(2000, 10, generator=gen) + 3 * torch.nn.functional.one_hot(labels, 10)
    trained = {}
    for w in (0.0, 1e-12):
        cfg = h.GANConfig(noise_dim=4, latent_dim=10, n_classes=10, steps=30, hidden=32, aux_weight=w, aux_steps=20)
        h.set_seed(cfg.seed)
        gan = h.LatentGAN(cfg).to(h.DEVICE)
        h.train_latent_gan(gan, codes, labels)
        trained[w] = torch.cat([p.detach().flatten() for p in gan.generator.parameters()])
    assert torch.allclose(trained[0.0], trained[1e-12], atol=1e-5)


def test_the_spread_ratio_counts_only_recognised_samples_against_recognised_reconstructions(monkeypatch):
    """Samples read as another digit sit far from the class and would inflate the spread: they must not count."""
    rng = np.random.default_rng(0)
    n = 400

    def fake_classify(_classifier, images):  # the "images" are stand-ins carrying the requested digit
        digit = int(images[0])
        feats = rng.normal(0, 1, (n, 8))
        probs = np.full((n, 10), 0.01)
        probs[:, digit] = 0.9
        wrong = np.arange(n) < n // 4  # a quarter read as another digit, far away
        feats[wrong] += 50
        probs[wrong, digit], probs[wrong, (digit + 1) % 10] = 0.01, 0.9
        return feats, probs

    patch_everywhere(monkeypatch, "sample_codes", lambda generator, m, digits, seed: digits.float())
    patch_everywhere(monkeypatch, "decode", lambda decoder, codes: codes)
    patch_everywhere(monkeypatch, "classify", fake_classify)
    real_labels = torch.arange(10).repeat_interleave(100)
    real_feats = rng.normal(0, 1, (1000, 8))
    recon_probs = np.eye(10)[real_labels.numpy()]
    rows = h.conditional_scores(None, None, None, real_feats, real_labels, real_feats, recon_probs, n=n)
    assert all(r["accuracy"] == pytest.approx(0.75) for r in rows)
    assert all(0.8 < r["spread ratio"] < 1.25 for r in rows), [r["spread ratio"] for r in rows]  # same spread as real


def test_train_on_generated_accuracy_is_high_for_real_labels_and_chance_for_shuffled(monkeypatch):
    patch_everywhere(monkeypatch, "RECIPE", replace(h.RECIPE, classifier_epochs=4))
    images, labels = h.load_mnist(train=True)
    test_x, test_y = h.load_mnist(train=False)
    real = h.train_on_generated_accuracy(images[:3000], labels[:3000], test_x[:1000], test_y[:1000])
    shuffled = labels[:3000][torch.randperm(3000, generator=torch.Generator().manual_seed(0))]
    noise = h.train_on_generated_accuracy(images[:3000], shuffled, test_x[:1000], test_y[:1000])
    assert real > 0.7 and noise < 0.3, (real, noise)


def test_interpolation_strips_put_the_real_images_at_both_ends():
    paths = {"AE line": torch.rand(3, 10, 1, 32, 32)}
    a, b = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32)
    strips = h.interpolation_strips(paths, a, b, pairs=2)
    assert list(strips) == ["pair 1, AE line", "pair 2, AE line"]
    row = strips["pair 2, AE line"]
    assert row.shape == (12, 1, 32, 32) and torch.equal(row[0], a[1]) and torch.equal(row[-1], b[1])
    assert torch.equal(row[1:-1], paths["AE line"][1])


def test_ablation_rows_say_whether_every_seed_agrees():
    ours = {f"{k}_seeds": [0.9, 0.8, 0.7] for k in ("accuracy", "worst", "spread", "fid", "precision", "recall")}
    base = {f"{k}_seeds": [0.8, 0.7, 0.6] for k in ("accuracy", "worst", "spread", "fid", "precision", "recall")}
    base["spread_seeds"] = [0.8, 0.9, 0.6]
    rows = {r["key"]: r for r in h.ablation_rows([ours, base])}
    assert rows["accuracy"]["agree"] == "all seeds higher" and rows["accuracy"]["mean"] == pytest.approx(0.1)
    assert rows["spread"]["agree"] == "mixed"
    assert h.ablation_rows([base, ours])[0]["agree"] == "all seeds lower"


def test_interpolation_pairs_are_judged_per_image_pair_by_the_one_rule():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, 50)

    def row(key, shift):
        per_path = {"confidence": base + shift + rng.normal(0, 0.01, 50), "max jump": base.copy(),
                    "one change": np.ones(50), "third digit": np.zeros(50)}
        return {"key": key, "path": key.replace("_", " "), "per_path": per_path}
    rows = {r["key"]: r for r in h.interp_pair_rows([{"key": "floor", "path": "floor"}, row("ae_line", 0.0),
                                                      row("gan_line", 0.1), row("gan_slerp", 0.0)])}
    assert rows["ae_line_minus_gan_line.confidence"]["winner"] == "gan line"  # higher confidence wins
    assert rows["ae_line_minus_gan_line.confidence"]["mean"] == pytest.approx(-0.1, abs=0.01)
    assert rows["ae_line_minus_gan_slerp.confidence"]["winner"] == "level"
    assert rows["ae_line_minus_gan_slerp.max_jump"]["winner"] == "level"  # identical paths
    assert len(rows) == len(h.INTERP_PAIRS) * len(h.INTERP_STATS)


def test_path_scores_per_path_statistics_average_to_the_reported_ones(monkeypatch):
    paths, steps = 6, 5
    probs = np.full((paths * steps, 10), 0.01)
    labels = np.array([[0, 0, 1, 1, 1], [0, 2, 2, 1, 1], [3, 3, 3, 3, 4], [0, 1, 0, 1, 0], [5, 5, 5, 5, 6], [7, 7, 7, 7, 7]])
    probs[np.arange(paths * steps), labels.flatten()] = 0.91
    feats = np.random.default_rng(1).normal(size=(paths * steps, 4))
    monkeypatch.setattr(generation, "classify", lambda clf, images: (feats, probs))
    out = h.path_scores(None, torch.zeros(paths, steps, 1, 32, 32), np.random.default_rng(2).normal(size=(100, 4)))
    per = out["per_path"]
    assert per["third digit"].tolist() == [0, 1, 0, 1, 0, 0]  # paths 2 and 4 show a digit neither end shows
    assert per["one change"].tolist() == [1, 0, 1, 0, 1, 0]
    assert out["third digit"] == pytest.approx(per["third digit"].mean()) and out["one change"] == pytest.approx(0.5)
    assert per["confidence"] == pytest.approx(np.full(paths, 0.91)) and out["max jump"] == pytest.approx(per["max jump"].mean())


def test_a_gan_trains_its_forward_passes_in_its_configs_precision(monkeypatch):
    """float32 (the report's GANs) never autocasts; bfloat16 (the search's, where the run trains in it) autocasts
    every forward pass and still learns; any other precision is refused."""
    from ex3lib import gan as gan_module

    with pytest.raises(ValueError, match="precision"):
        h.GANConfig(noise_dim=4, latent_dim=10, precision="float16")
    real_autocast, seen = gan_module.autocast, []
    monkeypatch.setattr(gan_module, "autocast", lambda precision: seen.append(precision) or real_autocast(precision))
    gen = torch.Generator().manual_seed(3)
    codes = 0.3 * torch.randn(2000, 10, generator=gen) + 2
    weights = {}
    for precision in ("float32", "bfloat16"):
        seen.clear()
        cfg = h.GANConfig(noise_dim=4, latent_dim=10, steps=40, hidden=32, train_codes=2000, precision=precision)
        h.set_seed(cfg.seed)
        gan = h.LatentGAN(cfg).to(h.DEVICE)
        casting = []  # whether autocast is on where the discriminator runs
        gan.discriminator.register_forward_pre_hook(lambda m, args: casting.append(torch.is_autocast_enabled(h.DEVICE.type)))
        info = h.train_latent_gan(gan, codes)
        assert set(seen) == {precision} and len(seen) == 2 * cfg.steps  # D's and G's passes of every step
        assert len(casting) == 3 * cfg.steps and set(casting) == {precision == "bfloat16"}
        assert all(np.isfinite(loss).all() for loss in info["loss_history"])
        weights[precision] = torch.cat([p.detach().flatten() for p in gan.generator.parameters()])
    assert not torch.equal(weights["float32"], weights["bfloat16"])  # bfloat16 did change the arithmetic
