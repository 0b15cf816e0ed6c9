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
