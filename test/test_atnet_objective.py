# SPDX-License-Identifier: Apache-2.0
"""The AT-net objective: each term trains what it claims, against a frozen VQ-VAE."""
import pytest
import torch

from audio_vision.core.model.vqvae import codeword_sq_distances
from audio_vision.core.model.checkpoint import ModalityModel
from audio_vision.training.objectives import ATNetObjective, ATNetObjectiveConfig, ATNetObjectives, soft_dice_loss
from helpers import tiny_spec


def frozen_model(modality: str) -> ModalityModel:
    torch.manual_seed(0)
    model = ModalityModel(tiny_spec(modality)).eval()
    for p in model.vqvae.parameters():
        p.requires_grad_(False)
    return model


def random_latent(model: ModalityModel, batch: int = 3) -> torch.Tensor:
    cfg = model.spec.vqvae
    return torch.randn(batch, cfg.code_dim, cfg.latent_size, cfg.latent_size) * 0.1


def test_weights_must_be_non_negative_with_one_positive():
    for bad in ({'latent_weight': 0.0}, {'code_weight': -1.0}):
        with pytest.raises(ValueError, match='weights'):
            ATNetObjectiveConfig(**bad)


def test_latent_term_alone_is_the_patents_mse():
    model = frozen_model('depth')
    objective = ATNetObjective(ATNetObjectiveConfig(), model.vqvae, model.encoding)
    z, target = random_latent(model), random_latent(model)
    assert torch.allclose(objective(z, target), torch.nn.functional.mse_loss(z, target))
    assert float(objective(target, target)) == 0.0
    assert not objective.needs_images


def test_code_term_ranks_the_codeword_that_inference_picks():
    """The code logits' argmax is the nearest codeword (what inference decodes), and a gradient step
    on the term moves the latent's nearest codeword toward the target's."""
    model = frozen_model('segmentation')
    quantizer = model.vqvae.quantizer
    objective = ATNetObjective(ATNetObjectiveConfig(latent_weight=0.0, code_weight=1.0), model.vqvae, model.encoding)
    z = random_latent(model)
    logits = -codeword_sq_distances(z, quantizer.codebook)
    assert torch.equal(logits.argmax(-1), quantizer.nearest(z))

    target = quantizer.lookup(torch.randint(0, quantizer.codebook_size, z.shape[:1] + z.shape[2:]))
    z = z.clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=0.5)
    before = float((quantizer.nearest(z) == quantizer.nearest(target)).float().mean())
    for _ in range(200):
        opt.zero_grad()
        objective(z, target).backward()
        opt.step()
    after = float((quantizer.nearest(z) == quantizer.nearest(target)).float().mean())
    assert after > max(before, 0.9)


@pytest.mark.parametrize('modality', ['depth', 'segmentation'])
@pytest.mark.parametrize('term', ['image_weight', 'soft_image_weight', 'dice_weight'])
def test_image_term_reaches_the_latent_and_never_the_frozen_decoder(modality, term):
    if term == 'dice_weight' and modality == 'depth':
        pytest.skip('a segmentation term (test_dice_is_refused_for_depth)')
    model = frozen_model(modality)
    objective = ATNetObjective(ATNetObjectiveConfig(latent_weight=0.0, **{term: 1.0}), model.vqvae, model.encoding)
    assert objective.needs_images
    z = random_latent(model).requires_grad_(True)
    size = model.spec.vqvae.image_size
    if modality == 'depth':
        image = model.encoding.encode(torch.rand(z.shape[0], size, size) * 4 + 0.5)
    else:
        image = model.encoding.encode(torch.randint(0, 6, (z.shape[0], size, size)))
    with pytest.raises(ValueError, match='target image'):
        objective(z, z.detach())
    before = {k: v.clone() for k, v in model.vqvae.state_dict().items()}
    objective(z, z.detach(), image).backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.vqvae.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.vqvae.state_dict().items())


def test_soft_image_term_decodes_the_codebook_mixture_of_the_code_logits():
    """Sharp logits (a tiny temperature): the mixture is the nearest codeword, the term the image loss of what
    inference decodes; flat logits: the codebook's mean in every cell."""
    model = frozen_model('segmentation')
    vq, quantizer = model.vqvae, model.vqvae.quantizer
    objective = ATNetObjective(ATNetObjectiveConfig(latent_weight=0.0, soft_image_weight=1.0), vq, model.encoding)
    z = random_latent(model)
    size = model.spec.vqvae.image_size
    image = model.encoding.encode(torch.randint(0, 6, (z.shape[0], size, size)))
    with torch.no_grad():
        snapped = model.encoding.loss(vq.decoder(quantizer.lookup(quantizer.nearest(z))), image)
        mean = quantizer.codebook.mean(dim=0)[None, :, None, None].expand_as(z)
        flat = model.encoding.loss(vq.decoder(mean), image)
        objective.temperature = 1e-9
        assert torch.allclose(objective(z, z, image), snapped, atol=1e-5)
        objective.temperature = 1e9
        assert torch.allclose(objective(z, z, image), flat, atol=1e-5)
        assert abs(float(snapped - flat)) > 1e-5     # the two limits tell apart at this tolerance


def test_dice_is_refused_for_depth():
    with pytest.raises(ValueError, match='segmentation term'):
        ATNetObjectives.from_dict({'depth': {'dice_weight': 1.0}})
    assert ATNetObjectives.from_dict({'segmentation': {'dice_weight': 1.0}}).of('segmentation').dice_weight == 1.0


def test_soft_dice_weighs_a_small_class_near_a_large_one():
    """A certain, correct prediction scores 0; missing a body of 4 of 64 pixels costs the cross-entropy a fifteenth
    of missing the 60 pixels of room around it, and the Dice loss more than half as much; unknown pixels count for
    nothing."""
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :2, :2] = 3                                   # a small body: 4 of 64 pixels, the rest room (class 0)

    def certain(classes):
        return torch.nn.functional.one_hot(classes, 6).permute(0, 3, 1, 2).float() * 40.0
    onehot = certain(labels) / 40.0
    assert float(soft_dice_loss(certain(labels), onehot)) < 1e-6
    miss_body, miss_room = certain(torch.zeros_like(labels)), certain(torch.full_like(labels, 3))
    ce = torch.nn.functional.cross_entropy
    assert float(ce(miss_body, labels)) == pytest.approx(float(ce(miss_room, labels)) / 15)
    assert float(soft_dice_loss(miss_body, onehot)) > 0.5 * float(soft_dice_loss(miss_room, onehot))
    unknown = onehot.clone()
    unknown[0, :, 4:, :] = 0                                # half the pixels of unknown class
    assert float(soft_dice_loss(certain(labels), unknown)) < 1e-6
    assert float(soft_dice_loss(miss_body, unknown)) > 0.4
