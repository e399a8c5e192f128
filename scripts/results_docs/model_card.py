# SPDX-License-Identifier: Apache-2.0
"""models/README.md: the shipped files, the data they were trained on (config/simulation.yaml), the model's
configuration (the training run's), how they were made, their test-split metrics, intended use and limits."""
from __future__ import annotations

from audio_vision.training.evaluate import markdown_table

from .common import prior_on, reproduce_commands
from .inputs import Inputs


def span(bounds: list) -> str:
    """A [low, high] range of a config as 'low-high'."""
    low, high = bounds
    return f'{low:g}-{high:g}'


def number(v) -> str:
    """A config value as written ('None' where the training run's config is not known)."""
    return 'None' if v is None else f'{v:g}'


def files_section(sizes: dict) -> str:
    def card_row(n, s):
        method = n in ('depth.pt', 'segmentation.pt')
        what = 'method (AT-net + VQ-VAE codebook and decoder), ' + n[:-3] if method else 'baseline'
        return f'| `{n}` | {what} | {s:.1f} MB |'

    return """# Shipped default models

| file | what | size |
| --- | --- | --- |
""" + '\n'.join(card_row(n, s) for n, s in sizes.items()) + f"""

Total {sum(sizes.values()):.1f} MB (fp16 storage; loaded as float32). Each method checkpoint holds its
weights and full config: features, VQ-VAE, AT-net, camera, class table, array geometry, dataset id and
validation metrics (`torch.load(..., weights_only=True)`). The VQ-VAE's encoder is left out: inference
runs the AT-net, the codebook and the decoder; the encoder (training targets, the upper bound) stays in the
training run's own files (`runs/<run>-<modality>/models`).
"""


def training_data_section(inp: Inputs) -> str:
    """The dataset command and what config/simulation.yaml simulates."""
    res, counts, sim = inp.results, inp.counts, inp.simulation
    room, chirp, camera = sim['room'], sim['chirp'], sim['camera']
    return f"""## Training data
Simulated with `python -m audio_vision dataset --out data/default --n {sum(counts.values()) if counts else '?'} --seed {res['dataset'].get('seed')}`
(content hash `{inp.trained_on.get('content_hash', res['dataset']['content_hash'])}` as the checkpoints record it; splits by room: {counts}).
Shoebox rooms {span(room['length_range'])} x {span(room['width_range'])} x {span(room['height_range'])} m with pyroomacoustics material absorption, an {inp.mics}-microphone
two-ring array ({sim['array']['ring_radius']:g} m radius, 3-D aperture) emitting a {chirp['f_start'] / 1000:g}-{chirp['f_end'] / 1000:g} kHz chirp every {chirp['period_s']:g} s, {span(sim['sources']['count_range'])} bodies
(person, appliance, alarm; a share of persons and appliances silent) that reflect the chirp and the
other sources' sound, a level {camera['width']}x{camera['height']} pinhole camera with {camera['hfov_deg']:g} deg HFOV. See docs/SIMULATOR.md.
"""  # noqa: E501 (the template's lines are the document's lines)


def model_section(t: dict) -> str:
    """Features, VQ-VAE and AT-net as the training run configured them."""
    features, vqvae, atnet, latent = t.get('features', {}), t.get('vqvae', {}), t.get('atnet', {}), t.get('latent_size')
    beams = features.get('echo_azimuths_deg')          # one echo beam per look direction
    return f"""## Model
Features: {number(features.get('window_s'))} s window, log-mel ({features.get('n_mels')} bands) per mic + cos/sin inter-mic phase differences + {None if beams is None else len(beams)}
delay-and-sum echo beams + direction maps on a {features.get('map_size')}x{features.get('map_size')} grid registered to the
camera (plus {features.get('map_margin')} cells of margin): SRP-PHAT in {len(features.get('srp_band_edges_hz', [])) - 1} bands
and the chirp's echo energy in {features.get('echo_range_bins')} range bins.{prior_sentence(features)}
VQ-VAE: {vqvae.get('codebook_size')} codewords x {vqvae.get('code_dim')} dims, latent {latent}x{latent}.{depth_target_sentence(t)}
AT-net: ResNet-18 of base width {atnet.get('encoder_width')}, MLP {atnet.get('mlp_hidden')} hidden,
dropout {atnet.get('dropout')}, direction-map branch{' and layout-prior branch' if prior_on(features) else ''} joining the manifold decoder at {latent}x{latent}.
"""  # noqa: E501 (the template's lines are the document's lines)


def depth_target_sentence(t: dict) -> str:
    """What the depth networks' images are, when not absolute log-depth ('' otherwise)."""
    if t.get('depth_target', 'absolute') == 'absolute':
        return ''
    return (' Depth images relative to the measured room (`depth_target: layout_ratio`): the depth VQ-VAE\'s '
            'manifold is of the log ratio of the depth to the layout prior\'s, and the prior is added back, so '
            'every output is in metres.')


def prior_sentence(features: dict) -> str:
    """The layout prior among the features ('' without it)."""
    if not prior_on(features):
        return ''
    size = features.get('prior_size')
    return (f"\nLayout prior ({features['layout_prior']}): the room the sonar front-end measures (floor, ceiling, "
            f"walls; docs/SONAR.md) rendered into the camera at {size}x{size}: log depth, seen, one-hot class, "
            "confidence"
            + (", and the residual reflectors' log depth and strength" if 'reflectors' in features['layout_prior']
               else '') + '.'
            + (f" The room is the one measured over the drive so far (`layout_fusion`: each window's layout placed "
               f"with the array's odometry, a keyframe every {features.get('layout_fusion_keyframe_m')} m, at most "
               f"{features.get('layout_fusion_keyframes')}; the node reads `odom` or TF, docs/ROS.md); without "
               "odometry each window's room is its own, as a drive's first window is." if features.get('layout_fusion')
               else ''))


def limits_section(inp: Inputs) -> str:
    camera = inp.simulation['camera']
    return f"""## Intended use and limits
- Intended: demos, tests and a starting point for training on your own robot's recordings
  (docs/RECORDING.md), in simulation or replayed bags.
- Trained only on synthetic shoebox rooms: no furniture, bodies modelled as first-order specular
  scatterers (docs/SIMULATOR.md), an idealised omnidirectional speaker and microphones, simulated
  noise. It will not transfer to a real robot without recordings of its own.
- The camera model is fixed ({camera['width']}x{camera['height']}, {camera['hfov_deg']:g} deg HFOV, level); the array geometry is fixed ({inp.mics} mics as in
  config/simulation.yaml). The perception node refuses frames with another channel count.
"""  # noqa: E501 (the template's lines are the document's lines)


def render(inp: Inputs) -> str:
    """models/README.md."""
    classes = ', '.join(f"{c['id']} {c['name']} {tuple(c['color'])}" for c in inp.card.get('class_table', []))
    return f"""{files_section(inp.sizes)}
{training_data_section(inp)}
{model_section(inp.train)}
## How it was made
```bash
{reproduce_commands(inp.facts)}
```
Measured {inp.today} on {inp.machine}; stage times in [docs/RESULTS.md](../docs/RESULTS.md#reproduction-time).

## Metrics (test split, rooms never seen)
{markdown_table(inp.results)}
Class table (id, name, RGB): {classes}.

{limits_section(inp)}"""
