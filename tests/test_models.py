import math

import pytest
import torch

import helpers as h
from conftest import patch_everywhere
from ex3lib import runtime


@pytest.mark.parametrize("design", sorted(h.RECIPE.bottleneck_designs))
@pytest.mark.parametrize("d", [1, 2, 10, 64])
def test_encoder_decoder_shapes_and_range(d, design):
    model = h.Autoencoder(h.ae_config(d, design)).eval()
    x = torch.rand(5, 1, 32, 32)
    z = model.encoder(x)
    assert z.shape == (5, d)
    out = model.decoder(z)
    assert out.shape == (5, 1, 32, 32)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(torch.sigmoid(model.decoder(z, logits=True)), out)


def _linear_shapes(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_each_design_has_the_layers_its_name_says():
    flat = 64 * 16  # the trunk's 4x4x64 map
    heads = {name: h.Autoencoder(h.ae_config(10, name)) for name in h.RECIPE.bottleneck_designs}
    assert _linear_shapes(heads["linear"].encoder) == [(flat, 10)]
    assert _linear_shapes(heads["fc128"].encoder) == [(flat, 128), (128, 10)]
    assert _linear_shapes(heads["fc512"].encoder) == [(flat, 512), (512, 10)]
    assert _linear_shapes(heads["fc2x512"].encoder) == [(flat, 512), (512, 512), (512, 10)]
    assert _linear_shapes(heads["fc2x512"].decoder) == [(10, 512), (512, 512), (512, flat)]
    for name in ("conv", "conv_wide"):
        assert _linear_shapes(heads[name]) == []
        last = [m for m in heads[name].encoder.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        assert last.kernel_size == (2, 2)  # covers the whole 2x2 map: a dense layer over conv_width * 4 inputs
    # The designs differ only between the trunk and the code: no bottleneck has a BatchNorm of its own.
    for name, model in heads.items():
        for part in (model.encoder.head, model.decoder.head):
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in part.modules()), name


def test_parameter_counts_follow_from_the_layers():
    def dense(widths):  # weights and biases of a chain of linear layers
        return sum(a * b + b for a, b in zip(widths, widths[1:]))

    trunk = h.count_parameters(h.Autoencoder(h.ae_config(10, "linear"))) - dense([1024, 10]) - dense([10, 1024])
    for name, widths in (("linear", [1024, 10]), ("fc128", [1024, 128, 10]), ("fc512", [1024, 512, 10]),
                         ("fc2x512", [1024, 512, 512, 10])):
        model = h.Autoencoder(h.ae_config(10, name))
        assert h.count_parameters(model) == trunk + dense(widths) + dense(widths[::-1]), name
    # The matched comparison: the wide convolutional bottleneck has about as many parameters as fc128.
    wide, fc128 = (h.count_parameters(h.Autoencoder(h.ae_config(10, n))) for n in ("conv_wide", "fc128"))
    assert abs(wide - fc128) / fc128 < 0.02


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="d must"):
        h.AEConfig(d=0)
    with pytest.raises(ValueError, match="bottleneck"):
        h.AEConfig(bottleneck="attention")
    with pytest.raises(ValueError, match="hidden"):
        h.AEConfig(hidden=())
    model = h.Autoencoder(h.AEConfig(d=4))
    with pytest.raises(ValueError, match=r"x must .*\[N, 1, 32, 32\].*\(3, 1, 28, 28\)"):
        model.encoder(torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="z must"):
        model.decoder(torch.rand(3, 5))
    with pytest.raises(ValueError, match="d must"):
        h.ae_config(0)


def _tiny(**overrides):
    settings = dict(d=4, channels=(4, 8, 8), hidden=(32,), epochs=3, batch_size=64, train_size=512, val_size=64,
                    seed=0)
    return h.AEConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def images():
    return h.load_mnist(train=False)[0][:576]


def test_a_few_training_steps_lower_the_loss(images):
    h.set_seed(0)
    model = h.Autoencoder(_tiny(epochs=8)).to(h.DEVICE)
    x = images[:512].to(h.DEVICE)

    def loss():
        model.eval()
        with torch.no_grad():
            return h.reconstruction_loss(model(x, logits=True), x).item()

    before = loss()
    info = h.train_autoencoder(model, images, progress=False)
    assert loss() < 0.8 * before  # 0.60 to 0.66 of it, seen over seeds
    assert info["loss_history"][-1] < info["loss_history"][0]


def test_same_seed_same_weights_other_seed_other_weights(images, checkpoint_dir):
    def trained(seed):
        h.set_seed(seed)
        model = h.Autoencoder(_tiny(seed=seed)).to(h.DEVICE)
        h.train_autoencoder(model, images, progress=False)
        return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])

    a, b, c = trained(0), trained(0), trained(1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_cache_miss_trains_hit_loads_and_changed_config_retrains(images, checkpoint_dir):
    first, info1 = h.autoencoder(_tiny(), images)
    assert info1["cached"] is False and h.checkpoint_path(_tiny()).exists()
    second, info2 = h.autoencoder(_tiny(), images)
    assert info2["cached"] is True
    assert info2["train_seconds"] == pytest.approx(info1["train_seconds"])  # the original run's time
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    changed, info3 = h.autoencoder(_tiny(lr=1e-3), images)
    assert info3["cached"] is False
    assert h.checkpoint_path(_tiny(lr=1e-3)) != h.checkpoint_path(_tiny())
    assert len(list(checkpoint_dir.glob("*.pt"))) == 2
    assert not list(checkpoint_dir.glob("*.tmp"))  # atomic writes leave no temporary files


def test_missing_autoencoders_train_side_by_side_in_worker_processes(monkeypatch, checkpoint_dir):
    """With two cores, train_missing trains the missing models in two one-thread worker processes (the report's
    section 1); each then loads from the cache. Images other than MNIST's training images are refused."""
    import concurrent.futures as cf

    pools = []

    class Recorded(cf.ProcessPoolExecutor):
        def __init__(self, workers, **kwargs):
            pools.append(workers)
            super().__init__(workers, **kwargs)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Recorded)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    configs = [_tiny(epochs=1), _tiny(epochs=1, seed=1)]
    with pytest.raises(ValueError, match="MNIST's training images"):
        h.train_missing(configs, torch.rand(600, 1, 32, 32))
    h.train_missing(configs, h.load_mnist(train=True)[0])
    assert pools == [2] and all(h.checkpoint_path(c).exists() for c in configs)
    models = [h.autoencoder(c, required=True)[0] for c in configs]
    assert not torch.equal(models[0].encoder.state_dict()["trunk.0.weight"], models[1].encoder.state_dict()["trunk.0.weight"])
    h.train_missing(configs, h.load_mnist(train=True)[0])  # nothing missing: no pool
    assert pools == [2]


def test_a_required_autoencoder_names_the_command_when_untrained(checkpoint_dir):
    with pytest.raises(FileNotFoundError, match="make report"):
        h.autoencoder(h.ae_config(), required=True)
    with pytest.raises(ValueError, match="was not trained"):  # a size the report never trains
        h.autoencoder(h.ae_config(3), required=True)


def test_a_loaded_autoencoder_is_in_eval_mode(images, checkpoint_dir):
    config = h.ae_config()
    h.autoencoder(config, h.load_mnist(train=True)[0][:config.train_size + config.val_size])
    model, _ = h.autoencoder(config, required=True)
    encoder, decoder = model.encoder, model.decoder
    assert not encoder.training and not decoder.training
    out = decoder(encoder(images[:3].to(h.DEVICE)))
    assert out.shape == (3, 1, 32, 32)


def test_reconstruction_metrics():
    x = torch.zeros(2, 1, 32, 32)
    y = x.clone()
    y[:, :, 0, 0] = 1.0  # in the padding: not scored
    assert h.mse_per_pixel(y, x) == 0
    y[:, :, 10, 10] = 1.0
    assert h.mse_per_pixel(y, x) == pytest.approx(1 / 784)
    assert h.psnr(y, x) == pytest.approx(10 * torch.log10(torch.tensor(784.0)).item(), rel=1e-5)


def test_bad_pixels_are_refused_with_the_argument_named():
    model = h.Autoencoder(h.AEConfig(d=4)).eval()
    x = torch.rand(3, 1, 32, 32)
    x[0, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="x must hold finite pixels"):
        model.encoder(x)
    with pytest.raises(ValueError, match=r"x must hold pixels in \[0, 1\]"):
        model.encoder(torch.rand(3, 1, 32, 32) * 2)
    with pytest.raises(ValueError, match="images must hold pixels"):
        h.mse_per_pixel(torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32) - 0.5)
    with pytest.raises(ValueError, match="recon must hold finite"):
        h.psnr(torch.full((3, 1, 32, 32), float("nan")), torch.rand(3, 1, 32, 32))
    with pytest.raises(ValueError, match="design must"):
        h.ae_config(10, "attention")
    with pytest.raises(ValueError, match="d must"):
        h.ae_config(True)


def test_learning_curve_is_recorded_and_survives_the_cache(images, checkpoint_dir):
    _, trained = h.autoencoder(_tiny(), images)
    assert len(trained["val_mse_history"]) == len(trained["loss_history"]) == 3
    assert all(isinstance(v, float) for v in trained["val_mse_history"])
    _, loaded = h.autoencoder(_tiny(), required=True)
    assert loaded["cached"] and loaded["val_mse_history"] == trained["val_mse_history"]
    with pytest.raises(ValueError, match="train_size \\+ val_size"):
        h.autoencoder(_tiny(seed=5), images[:100])


def test_checkpoint_name_changes_with_precision_and_training_code(monkeypatch):
    config = _tiny()
    name = h.checkpoint_path(config)
    with monkeypatch.context() as m:
        patch_everywhere(m, "PRECISION", "float32" if h.PRECISION == "bfloat16" else "bfloat16")
        assert h.checkpoint_path(config) != name
    original = h.train_autoencoder

    def train_autoencoder(model, images, progress=True):  # same behaviour, other source
        return original(model, images, progress)

    with monkeypatch.context() as m:
        patch_everywhere(m, "train_autoencoder", train_autoencoder)
        assert h.checkpoint_path(config) != name
    assert h.checkpoint_path(config) == name


def _same_source_elsewhere(function):
    """A function that behaves like `function` but whose source differs."""
    def changed(*args, **kwargs):  # another source, the same behaviour
        return function(*args, **kwargs)
    return changed


def test_training_code_is_found_from_what_the_training_functions_call():
    ae = h.training_code("AEConfig")
    assert {"Encoder", "Decoder", "train_autoencoder", "adam", "autocast", "set_seed", "batches"} <= set(ae)
    assert {"Generator", "Discriminator", "train_latent_gan", "fit_classifier", "gaussian_mixture"} <= set(
        h.training_code("GANConfig"))
    assert {"EvalClassifier", "train_classifier", "random_shift", "adam"} <= set(h.training_code("ClassifierConfig"))
    assert "plot_curves" not in ae and "transfer_experiment" not in ae  # only what training reaches


def test_a_changed_autoencoder_training_function_renames_the_gans_built_on_it(monkeypatch):
    ae = h.ae_config()
    gan_name = h.checkpoint_path(h.gan_config(8, ae))
    mixture_name = h.checkpoint_path(h.mixture_gan_config(ae))
    patch_everywhere(monkeypatch, "train_autoencoder", _same_source_elsewhere(h.train_autoencoder))
    assert h.checkpoint_path(h.gan_config(8, ae)) != gan_name
    assert h.checkpoint_path(h.mixture_gan_config(ae)) != mixture_name


def test_a_changed_adam_renames_every_family(monkeypatch):
    def names():  # the configs as the notebook builds them, a GAN's naming its autoencoder's cache key
        ae = h.ae_config()
        return [h.checkpoint_path(c) for c in (ae, h.eval_classifier_config(), h.gan_config(8, ae),
                                                h.gan_config(8, ae, conditional=True), h.mixture_gan_config(ae))]

    before = names()
    patch_everywhere(monkeypatch, "adam", _same_source_elsewhere(h.adam))
    assert all(a != b for a, b in zip(before, names()))


def test_a_broken_checkpoint_is_moved_aside_and_retrained(images, checkpoint_dir, capsys):
    first, _ = h.autoencoder(_tiny(), images)
    path = h.checkpoint_path(_tiny())
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    again, info = h.autoencoder(_tiny(), images)
    assert info["cached"] is False
    said = capsys.readouterr().out
    assert path.name in said and said.count("\n") == 1
    assert path.with_suffix(".broken").exists()
    for p, q in zip(first.parameters(), again.parameters()):
        assert torch.equal(p, q)  # retrained from the same seed
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="make report"):
        h.autoencoder(_tiny(), required=True)


def test_precision_choice_and_its_fallbacks(monkeypatch):
    cpu = torch.device("cpu")
    assert not h.fast_bfloat16(torch.device("mps"))
    patch_everywhere(monkeypatch, "fast_bfloat16", lambda device: True)
    monkeypatch.delenv("EX3_PRECISION", raising=False)
    assert h.pick_precision(cpu) == "float32"  # the studies' precision, even where bfloat16 is fast
    monkeypatch.setenv("EX3_PRECISION", "float32")
    assert h.pick_precision(cpu) == "float32"
    monkeypatch.setenv("EX3_PRECISION", "half")
    with pytest.raises(ValueError, match="EX3_PRECISION"):
        h.pick_precision(cpu)
    monkeypatch.setenv("EX3_PRECISION", "bfloat16")
    assert h.pick_precision(cpu) == "bfloat16"
    patch_everywhere(monkeypatch, "fast_bfloat16", lambda device: False)
    with pytest.warns(UserWarning, match="float32"):
        assert h.pick_precision(cpu) == "float32"


def test_bfloat16_training_lowers_the_loss_reports_float32_and_repeats_itself(images, monkeypatch):
    patch_everywhere(monkeypatch, "PRECISION", "bfloat16")

    def run():
        h.set_seed(0)
        model = h.Autoencoder(_tiny(epochs=4)).to(h.DEVICE)
        info = h.train_autoencoder(model, images, progress=False)
        return model, info

    model, info = run()
    assert info["loss_history"][-1] < 0.85 * info["loss_history"][0]
    assert info["val_mse_history"][-1] < info["val_mse_history"][0]
    assert h.reconstruct(model, images[:8]).dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    again, _ = run()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))


def test_the_step_benchmark_takes_the_fastest_block_after_the_warm_up(monkeypatch):
    seconds = iter([1.0, 5.0, 3.0, 4.0])  # the warm-up run (fastest, not counted), then three timed blocks
    patch_everywhere(monkeypatch, "train_autoencoder", lambda *a, **k: {"train_seconds": next(seconds)})
    assert h.training_step_ms("ae", "float32", steps=10, blocks=3) == pytest.approx(300.0)
    for bad in (dict(blocks=0), dict(steps=0)):
        with pytest.raises(ValueError, match="positive"):
            h.training_step_ms("ae", "float32", **bad)


def test_the_run_clock_counts_every_section_in_its_autoencoders_own_seconds_per_step(monkeypatch):
    recorded = {}
    patch_everywhere(monkeypatch, "record_metrics", recorded.update)
    now = iter([100.0, 110.0, 150.0])
    monkeypatch.setattr(h.time, "perf_counter", lambda: next(now))
    config = h.AEConfig(epochs=4, train_size=1280, batch_size=128)  # 40 steps
    clock = h.RunClock()
    clock.section(1)
    with pytest.raises(RuntimeError, match="use_unit"):
        clock.finish()
    clock.use_unit(h.Autoencoder(config), {"train_seconds": 0.8})  # 20 ms per step
    clock.finish()
    assert recorded["runtime.unit_step_ms"] == pytest.approx(20.0) and recorded["runtime.unit_train_seconds"] == 0.8
    assert recorded["runtime.section1_seconds"] == 10.0 and recorded["runtime.total_seconds"] == 50.0
    assert recorded["runtime.section1_cost_ae_steps"] == pytest.approx(10 / 0.020)
    assert recorded["runtime.cost_ae_steps"] == pytest.approx(50 / 0.020)


def test_the_run_clock_counts_the_models_it_loaded_and_those_it_trained(monkeypatch, checkpoint_dir):
    recorded = {}
    patch_everywhere(monkeypatch, "record_metrics", recorded.update)
    small = lambda seed: _tiny(seed=seed, epochs=1, train_size=64, val_size=32)
    images = torch.rand(96, 1, 32, 32)
    first, second = small(0), small(1)
    h.autoencoder(first, images, progress=False)  # trained before the run: found
    h.autoencoder(second, images, progress=False)  # found, and never read by the run
    clock = h.RunClock()
    clock.unit_seconds = 1.0
    h.autoencoder(first, required=True)  # loaded
    h.autoencoder(small(2), images, progress=False)  # trained by the run
    clock.finish()
    assert (recorded["runtime.models_loaded"], recorded["runtime.models_trained"]) == (1, 1)


def test_training_step_benchmark_restores_the_precision():
    chosen = runtime.PRECISION
    ms = h.training_step_ms("gan", "float32", steps=5)
    assert ms > 0 and math.isfinite(ms) and runtime.PRECISION == chosen
    with pytest.raises(ValueError, match="family"):
        h.training_step_ms("vae", "float32")
