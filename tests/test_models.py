import pytest
import torch

import helpers as h


@pytest.mark.parametrize("bottleneck", h.BOTTLENECKS)
@pytest.mark.parametrize("d", [1, 2, 10, 64])
def test_encoder_decoder_shapes_and_range(d, bottleneck):
    model = h.Autoencoder(h.AEConfig(d=d, bottleneck=bottleneck)).eval()
    x = torch.rand(5, 1, 32, 32)
    z = model.encoder(x)
    assert z.shape == (5, d)
    out = model.decoder(z)
    assert out.shape == (5, 1, 32, 32)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(torch.sigmoid(model.decoder(z, logits=True)), out)


def test_fc_bottleneck_has_dense_layers_and_conv_has_none():
    fc = h.Autoencoder(h.AEConfig(bottleneck="fc"))
    conv = h.Autoencoder(h.AEConfig(bottleneck="conv"))
    assert any(isinstance(m, torch.nn.Linear) for m in fc.modules())
    assert not any(isinstance(m, torch.nn.Linear) for m in conv.modules())


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="d must"):
        h.AEConfig(d=0)
    with pytest.raises(ValueError, match="bottleneck"):
        h.AEConfig(bottleneck="attention")
    model = h.Autoencoder(h.AEConfig(d=4))
    with pytest.raises(ValueError, match=r"x must .*\[N, 1, 32, 32\].*\(3, 1, 28, 28\)"):
        model.encoder(torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="z must"):
        model.decoder(torch.rand(3, 5))
    with pytest.raises(ValueError, match="d must"):
        h.load_autoencoder(0)
    with pytest.raises(ValueError, match="was not trained"):
        h.load_autoencoder(3)


def _tiny(**overrides):
    settings = dict(d=4, channels=(4, 8, 8), hidden=32, epochs=3, batch_size=64, train_size=512, seed=0)
    return h.AEConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def images():
    return h.load_mnist(train=False)[0][:512]


def test_a_few_training_steps_lower_the_loss(images):
    h.set_seed(0)
    model = h.Autoencoder(_tiny(epochs=8)).to(h.DEVICE)
    x = images.to(h.DEVICE)

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


def test_load_autoencoder_names_the_command_when_untrained(checkpoint_dir):
    with pytest.raises(FileNotFoundError, match="make report"):
        h.load_autoencoder()


def test_load_autoencoder_returns_eval_mode_models(images, checkpoint_dir):
    h.autoencoder(h.report_config(None), images)
    encoder, decoder = h.load_autoencoder()
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
