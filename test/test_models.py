# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch

from audio_vision.core.model.atnet import ATNet, ATNetConfig
from audio_vision.core.model.baselines import EndToEnd, EndToEndConfig, MeanImage
from audio_vision.core.model.encoding import DepthEncoding, SegmentationEncoding
from audio_vision.core.model.vqvae import VQVAE, VQVAEConfig, VectorQuantizer


@pytest.mark.parametrize('latent', [8, 16, 32])
def test_vqvae_and_atnet_shapes_for_every_manifold_size(latent):
    vq = VQVAE(VQVAEConfig(in_channels=2, out_channels=2, image_size=64, latent_size=latent))
    out = vq(torch.randn(2, 2, 64, 64))
    assert out.latent.shape == (2, 64, latent, latent)
    assert out.indices.shape == (2, latent, latent)
    assert out.reconstruction.shape == (2, 2, 64, 64)
    at = ATNet(ATNetConfig(in_channels=22, latent_size=latent, encoder_width=8))
    assert at(torch.randn(2, 22, 64, 126)).shape == out.latent.shape


def test_joined_convs_mix_neighbouring_cells_before_the_projection():
    """With ``joined_convs`` a latent cell reads its neighbours after the join (3x3 layers); without, the projection
    follows the join at once and the checkpoint's parameters are those of before the option (nothing added)."""
    torch.manual_seed(0)
    plain = ATNet(ATNetConfig(in_channels=22, encoder_width=8))
    deep = ATNet(ATNetConfig(in_channels=22, encoder_width=8, joined_convs=2)).eval()
    assert set(plain.state_dict()) == {k for k in deep.state_dict() if not k.startswith('joined.')}
    assert sum(isinstance(m, torch.nn.Conv2d) for m in deep.joined) == 2
    with pytest.raises(ValueError, match='joined_convs must be >= 0'):
        ATNetConfig(in_channels=22, joined_convs=-1)
    h = torch.zeros(1, 32, 16, 16)
    h[:, :, 8, 8] = 1.0                                  # one cell lit after the join
    with torch.no_grad():
        for conv in (m for m in deep.joined if isinstance(m, torch.nn.Conv2d)):
            conv.weight.fill_(0.1)
            conv.bias.zero_()
        out = deep.joined(h)
    lit = (out.abs().sum(dim=1)[0] > 0).int()
    reach = torch.zeros(16, 16, dtype=torch.int)
    reach[6:11, 6:11] = 1                                # two 3x3 layers: a 5x5 neighbourhood, nothing beyond
    assert torch.equal(lit, reach)


def test_encoder_follows_the_design_widths():
    vq = VQVAE(VQVAEConfig(latent_size=16))
    convs = [m for m in vq.encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert [c.out_channels for c in convs] == [64, 128]
    assert vq.quantizer.codebook.shape == (64, 64)


def test_quantizer_returns_existing_l2_nearest_codewords():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4).eval()
    z = torch.randn(3, 4, 5, 5)
    out = q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, q.codebook).argmin(dim=1)
    assert torch.equal(out.indices.reshape(-1), brute)
    chosen = out.quantized.permute(0, 2, 3, 1).reshape(-1, 4)
    torch.testing.assert_close(chosen, q.codebook[brute])


def test_straight_through_gradients_reach_the_encoder():
    vq = VQVAE(VQVAEConfig(latent_size=16, hidden=32, res_hidden=16, res_blocks=1))
    out = vq(torch.randn(2, 2, 64, 64))
    (out.reconstruction.square().mean() + out.vq_loss).backward()
    first_conv = vq.encoder.net[0]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_dead_codewords_are_restarted():
    torch.manual_seed(0)
    q = VectorQuantizer(32, 4, ema_decay=0.5).train()
    z = torch.randn(8, 4, 4, 4) * 0.01 + 5.0         # far from every initial codeword -> collapse risk
    assert q.nearest(z).unique().numel() == 1         # collapsed: one codeword takes every vector
    for _ in range(20):
        q(z)
    # restarted at encoder outputs: the codewords now sit in the data and many of them are chosen
    # (fraction_used() alone cannot tell: a restart sets a codeword's usage to 1/K itself)
    assert q.nearest(z).unique().numel() > 0.5 * q.codebook_size
    assert (q.codebook - 5.0).abs().max() < 0.2


def test_tiny_vqvae_overfits_a_handful_of_depth_images():
    torch.manual_seed(0)
    encoding = DepthEncoding()
    yy = torch.linspace(1, 6, 32)[None, :, None].expand(4, 32, 32)
    depth = yy * torch.linspace(0.5, 1.5, 4)[:, None, None]
    x = encoding.encode(depth)
    vq = VQVAE(VQVAEConfig(in_channels=2, out_channels=2, image_size=32, latent_size=8, hidden=32,
                           res_hidden=16, res_blocks=1, codebook_size=16, code_dim=8))
    opt = torch.optim.Adam(vq.parameters(), 3e-3)
    losses = []
    for _ in range(150):
        out = vq(x)
        loss = encoding.loss(out.reconstruction, x) + out.vq_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) / 5   # falls by at least 5x


def test_tiny_atnet_overfits_latents():
    torch.manual_seed(0)
    net = ATNet(ATNetConfig(in_channels=6, encoder_width=8, mlp_hidden=64, start_channels=32, latent_size=8,
                            code_dim=8, dropout=0.0))
    feats, target = torch.randn(6, 6, 32, 40), torch.randn(6, 8, 8, 8)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(feats), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) / 5


def test_encodings_round_trip():
    d = torch.tensor([[[0.5, 2.0], [float('nan'), 9.0]]])
    out = DepthEncoding().encode(d)
    out[:, 1] = out[:, 1] * 20 - 10             # mask -> confident logits
    back = DepthEncoding().decode(out)
    assert torch.isnan(back[0, 1, 0])
    torch.testing.assert_close(back[0, 0], d[0, 0])
    seg = torch.tensor([[[0, 5], [3, 1]]])
    encoding = SegmentationEncoding(6)
    assert torch.equal(encoding.decode(encoding.encode(seg) * 10), seg.to(torch.uint8))


def test_end_to_end_and_mean_baselines():
    e2e = EndToEnd(EndToEndConfig(in_channels=22, out_channels=6, encoder_width=8))
    assert e2e(torch.randn(2, 22, 64, 126)).shape == (2, 6, 64, 64)
    depths = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 4.0)]).astype(np.float32)
    labels = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.ones((4, 4))]).astype(np.uint8)
    mean = MeanImage.fit(depths, labels, 6)
    np.testing.assert_allclose(mean.depth, 2.0, rtol=1e-6)   # geometric mean of 1 and 4
    assert (mean.segmentation == 1).all()
    assert mean.predict(3)['depth'].shape == (3, 4, 4)


def test_networks_refuse_an_unset_number_of_input_channels():
    """in_channels has no made-up default: it is the feature config's channel count (training/specs.py)."""
    with pytest.raises(ValueError, match='num_feature_channels'):
        ATNet(ATNetConfig(latent_size=8, encoder_width=8))
    with pytest.raises(ValueError, match='num_feature_channels'):
        EndToEnd(EndToEndConfig(encoder_width=8))
    assert ATNetConfig().in_channels == EndToEndConfig().in_channels == 0


def test_unknown_segmentation_labels_are_ignored_not_a_class():
    """A label outside the class table (255: no segmentation topic in a bag) is unknown: it encodes as no
    class, the loss ignores it, and the loss of the known pixels is unchanged."""
    encoding = SegmentationEncoding(6)
    labels = torch.tensor([[[0, 5], [255, 3]]])
    onehot = encoding.encode(labels)
    assert onehot[0, :, 1, 0].sum() == 0 and onehot[0, 5, 0, 1] == 1 and onehot[0, 5].sum() == 1
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 2, 2)
    known = labels[0] != 255
    expected = torch.nn.functional.cross_entropy(logits[0].permute(1, 2, 0)[known], labels[0][known])
    torch.testing.assert_close(encoding.loss(logits, onehot), expected)
    changed = logits.clone()
    changed[0, :, 1, 0] = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 50.0])      # only the unknown pixel
    torch.testing.assert_close(encoding.loss(changed, onehot), expected)
    assert encoding.loss(logits, encoding.encode(torch.full((1, 2, 2), 255))).item() == 0.0
