import pytest
import torch

from ddlib.models import ConvNet, ConvNetConfig, build_convnet
from ddlib.core.seeding import torch_generator


@pytest.mark.parametrize("channels, size, features", [(1, 28, 128 * 16), (3, 28, 128 * 16), (3, 32, 128 * 16)])
def test_output_and_embedding_shapes(channels, size, features):
    net = build_convnet(channels, 10, size, ConvNetConfig(), torch_generator(0))
    x = torch.randn(2, channels, size, size)
    assert net(x).shape == (2, 10)
    assert net.embed(x).shape == (2, features) and net.feature_dim == features


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"])
@pytest.mark.parametrize("pooling", ["avgpooling", "maxpooling", "none"])
def test_variants_compute_their_feature_count(norm, pooling):
    cfg = ConvNetConfig(depth=2, width=8, norm=norm, pooling=pooling)
    net = ConvNet(3, 5, 32, cfg)
    assert net.embed(torch.randn(2, 3, 32, 32)).shape == (2, net.feature_dim)


def test_initialisation_is_driven_by_the_generator():
    a = build_convnet(3, 10, 28, ConvNetConfig(width=8), torch_generator(1))
    b = build_convnet(3, 10, 28, ConvNetConfig(width=8), torch_generator(1))
    c = build_convnet(3, 10, 28, ConvNetConfig(width=8), torch_generator(2))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_bad_configuration_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="instancenorm"):
        ConvNetConfig(norm="weird")


# -- the CPU path (chunks; channels-last first block without autograd) ------------------------------
from ddlib.models import convnet as convnet_module  # noqa: E402


def _net(norm="instancenorm", pooling="avgpooling", channels=3, size=28):
    return build_convnet(channels, 4, size, ConvNetConfig(depth=2, width=8, norm=norm, pooling=pooling),
                         torch_generator(0, "test", "net"))


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"])
@pytest.mark.parametrize("pooling", ["avgpooling", "maxpooling", "none"])
def test_cpu_inference_path_agrees_with_the_default_pass(norm, pooling):
    net = _net(norm, pooling).eval()
    x = torch.randn(150, 3, 28, 28, generator=torch_generator(1, "test", "x"))  # > one chunk, ragged tail
    with torch.no_grad():
        fast = net.embed(x)
        default = net._embed_default(x)
    assert fast.shape == default.shape
    torch.testing.assert_close(fast, default, rtol=1e-4, atol=1e-5)


def test_cpu_training_path_keeps_each_images_outputs_and_the_gradient():
    net = _net()
    x = torch.randn(150, 3, 28, 28, generator=torch_generator(2, "test", "x"))
    out = net.embed(x)
    # every image's forward is computed alone: the chunked outputs are bit-identical to the default pass
    assert torch.equal(out, net._embed_default(x))
    out.square().sum().backward()
    chunked = [p.grad.clone() for p in net.features.parameters()]
    net.zero_grad()
    net._embed_default(x).square().sum().backward()
    for got, want in zip(chunked, (p.grad for p in net.features.parameters())):  # only the summation order differs
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_channels_last_route_is_taken_only_without_autograd(monkeypatch):
    net = _net()
    calls = []
    original = convnet_module.ConvNet._embed_cpu_inference
    monkeypatch.setattr(convnet_module.ConvNet, "_embed_cpu_inference",
                        lambda self, x: calls.append(len(x)) or original(self, x))
    x = torch.randn(100, 3, 28, 28)
    net.embed(x)
    assert calls == []
    with torch.no_grad():
        net.embed(x)
    assert calls == [convnet_module.CPU_INFERENCE_CHUNK, 100 - convnet_module.CPU_INFERENCE_CHUNK]


def test_batch_norm_in_training_mode_sees_the_whole_batch():
    net = _net("batchnorm").train()
    x = torch.randn(150, 3, 28, 28)
    assert torch.equal(net.embed(x), net._embed_default(x))  # one pass: batch statistics over all 150


def test_cpu_path_leaves_parameters_in_their_layout():
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        net.embed(torch.randn(70, 3, 28, 28))
    for p, q in zip(net.parameters(), before):
        assert p.is_contiguous() and torch.equal(p, q)


def test_numerics_tag_is_in_the_keys_of_what_a_convnet_computes():
    from conftest import make_toy_dataset
    from ddlib.distill.dm import DMConfig, DMMethod
    from ddlib.training.evaluation import EvalSettings, evaluation_key
    from ddlib.training.objectives import TrainConfig
    ds = make_toy_dataset()
    assert DMMethod(ds, 2, DMConfig(), None, torch.device("cpu")).cache_key()["numerics"] == convnet_module.NUMERICS
    assert evaluation_key(EvalSettings(TrainConfig(), 1))["numerics"] == convnet_module.NUMERICS


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(5, 8, 32, 32), (3, 4, 16, 16), (2, 3, 8, 6)])
def test_channels_last_pool_is_bit_for_bit_pytorchs_own(shape, channels_last):
    """The CPU pool (ddlib.models.convnet.AvgPool2x2) changes speed, not numbers:
    forward, backward and the second derivative MTT takes equal F.avg_pool2d's bit for bit."""
    from torch.nn import functional as F
    from ddlib.models.convnet import AvgPool2x2
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen)
    if channels_last:  # as DSA's crop leaves its output: the layers after the pool see the same layout
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    ours, theirs = AvgPool2x2.apply(x), F.avg_pool2d(x, 2)
    assert torch.equal(ours, theirs) and ours.stride() == theirs.stride()
    g = torch.randn(theirs.shape, generator=gen).requires_grad_(True)
    grad_ours, = torch.autograd.grad(ours, x, g, create_graph=True)
    grad_theirs, = torch.autograd.grad(theirs, x, g, create_graph=True)
    assert torch.equal(grad_ours, grad_theirs) and grad_ours.stride() == grad_theirs.stride()
    h = torch.randn(x.shape, generator=gen)
    second_ours, = torch.autograd.grad((grad_ours * h).sum(), g)
    second_theirs, = torch.autograd.grad((grad_theirs * h).sum(), g)
    assert torch.equal(second_ours, second_theirs)


def test_convnet_on_a_cpu_equals_the_plain_layer_stack_and_runs_under_vmap():
    from torch.func import functional_call, stack_module_state, vmap
    net = build_convnet(3, 10, 28, ConvNetConfig(depth=3, width=8), torch.Generator().manual_seed(0))
    x = torch.randn(6, 3, 28, 28, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    plain = net.features(x).flatten(1)  # nn.Sequential: PyTorch's own pool
    ours = net.embed(x)
    assert torch.equal(ours, plain)
    g = torch.randn(plain.shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(plain, x, g)[0])
    params, buffers = stack_module_state([net, net])
    out = vmap(lambda p, b, xs: functional_call(net, (p, b), (xs,)))(params, buffers, torch.stack([x, x]))
    assert torch.allclose(out[0], net(x), atol=1e-5)
