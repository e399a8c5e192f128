# SPDX-License-Identifier: Apache-2.0
"""Training and evaluation end to end on a tiny generated dataset (each stage a few steps)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, timeout=600):
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'tiny'
    run_cli('dataset', '--out', out, '--n', 48, '--seed', 3, '--workers', 1)
    return out


def tiny_train_config(tmp_path: Path) -> Path:
    cfg = {
        'features': {'overlap': 0.5, 'direction_maps': True},   # the default model's input, maps included
        'vqvae': {'hidden': 32, 'res_hidden': 16, 'res_blocks': 1, 'codebook_size': 16, 'code_dim': 16},
        'atnet': {'encoder_width': 8, 'mlp_hidden': 64, 'start_channels': 32},
        'end_to_end': {'encoder_width': 8, 'mlp_hidden': 64, 'start_channels': 32, 'min_channels': 8},
        'vqvae_optim': {'epochs': 3, 'batch_size': 8, 'lr': 0.003},
        'atnet_optim': {'epochs': 3, 'batch_size': 8, 'lr': 0.003},
        'end_to_end_optim': {'epochs': 2, 'batch_size': 8, 'lr': 0.003},
        'threads': 1,
    }
    import yaml
    path = tmp_path / 'train.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_stage_training_losses_fall_and_evaluation_runs(tiny_dataset, tmp_path):
    run_dir = tmp_path / 'run'
    run_cli('train', '--data', tiny_dataset, '--run-dir', run_dir, '--config', tiny_train_config(tmp_path),
            '--no-progress', '--export', tmp_path / 'shipped')
    for stage in ('vqvae_depth', 'vqvae_segmentation', 'atnet_depth', 'atnet_segmentation'):
        rows = [json.loads(line) for line in (run_dir / stage / 'log.jsonl').read_text().splitlines()]
        assert rows[-1]['train_loss'] < rows[0]['train_loss'], (stage, rows)
    vq_rows = [json.loads(x) for x in (run_dir / 'vqvae_depth' / 'log.jsonl').read_text().splitlines()]
    # perplexity = exp(entropy of code usage): above 1 unless collapsed, at most the number of codewords
    assert 0 < vq_rows[-1]['codebook_used'] <= 1 and 1 < vq_rows[-1]['perplexity'] <= 16, vq_rows[-1]
    assert (run_dir / 'curves.png').stat().st_size > 1000
    for name in ('depth.pt', 'segmentation.pt', 'end_to_end_depth.pt', 'end_to_end_segmentation.pt', 'mean.pt'):
        assert (tmp_path / 'shipped' / name).is_file()
    # fp16 export is smaller than the full-precision model
    assert (tmp_path / 'shipped' / 'depth.pt').stat().st_size < (run_dir / 'models' / 'depth.pt').stat().st_size

    out = tmp_path / 'eval.json'
    run_cli('evaluate', '--data', tiny_dataset, '--json', out, '--models', tmp_path / 'shipped',
            '--mosaic', tmp_path / 'mosaic.png', '--no-progress')
    result = json.loads(out.read_text())
    # the shipped files hold no VQ-VAE encoder: no upper bound from them, and the file says why
    assert set(result['rows']) >= {'method', 'method_no_quant', 'end_to_end', 'mean'}
    assert 'vqvae_upper_bound' not in result['rows'] and 'encoder' in result['vqvae_upper_bound_skipped']
    run_cli('evaluate', '--data', tiny_dataset, '--json', out, '--models', run_dir / 'models', '--no-progress')
    own = json.loads(out.read_text())
    assert 'vqvae_upper_bound' in own['rows'] and 'vqvae_upper_bound_skipped' not in own
    assert own['rows']['method']['depth']['abs_rel'] == pytest.approx(result['rows']['method']['depth']['abs_rel'],
                                                                      rel=0.05)
    assert result['n_samples'] > 0
    for row in result['rows'].values():
        assert set(row['depth']) >= {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3'}
        assert set(row['segmentation']) >= {'miou', 'pixel_acc', 'per_class_iou'}
        assert 0 <= row['segmentation']['miou'] <= 1 and np.isfinite(row['depth']['abs_rel'])
    assert (tmp_path / 'mosaic.png').stat().st_size > 1000


def test_resume_continues_from_the_saved_epoch(tiny_dataset, tmp_path):
    cfg = tiny_train_config(tmp_path)
    args = ['train', '--data', tiny_dataset, '--run-dir', tmp_path / 'run', '--config', cfg, '--no-progress',
            '--modalities', 'depth', '--stages', 'vqvae']
    run_cli(*args, '--epochs-scale', 0.34)          # 1 of 3 epochs
    first = (tmp_path / 'run' / 'vqvae_depth' / 'log.jsonl').read_text().splitlines()
    assert len(first) == 1
    proc = run_cli(*args)                            # same run, full schedule: resumes at epoch 2
    assert 'resuming after epoch 1' in proc.stdout
    assert len((tmp_path / 'run' / 'vqvae_depth' / 'log.jsonl').read_text().splitlines()) == 3
    # Another process training another stage of the same run directory (as scripts/reproduce_default_model.sh
    # does) adds its timings to the directory's instead of replacing them.
    run_cli(*args[:-1], 'end_to_end', '--epochs-scale', 0.5)
    assert set(json.loads((tmp_path / 'run' / 'timings.json').read_text())) == {'vqvae_depth', 'end_to_end_depth'}


def test_torchrun_data_parallel_on_two_cpu_processes(tiny_dataset, tmp_path):
    run_dir = tmp_path / 'ddp'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           '-m', 'audio_vision', 'train', '--data', str(tiny_dataset), '--run-dir', str(run_dir),
           '--config', str(tiny_train_config(tmp_path)), '--no-progress', '--modalities', 'depth',
           '--stages', 'vqvae', 'atnet', '--max-steps', 2]
    proc = subprocess.run(list(map(str, cmd)), cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (run_dir / 'atnet_depth' / 'log.jsonl').read_text().splitlines()]
    assert len(rows) == 3 and all(np.isfinite(r['train_loss']) for r in rows)
    state = torch.load(run_dir / 'models' / 'depth.pt', weights_only=True)
    assert state['config']['vqvae']['codebook_size'] == 16


def test_bad_inputs_give_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'train', '--data', str(tmp_path),
                           '--run-dir', str(tmp_path / 'r')], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and 'not a dataset directory' in proc.stderr
    assert 'Traceback' not in proc.stderr
    (tmp_path / 'plain.yaml').write_text('features: {layout_prior: none}\n')
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'train', '--data', str(tmp_path), '--run-dir',
                           str(tmp_path / 'r'), '--config', str(tmp_path / 'plain.yaml'), '--depth-target',
                           'layout_ratio'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and 'relative to the layout prior' in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('objective', [{}, {'code_weight': 1.0, 'image_weight': 1.0}], ids=['patent', 'code+image'])
def test_atnet_learns_the_encoders_continuous_latents_and_leaves_the_vqvae_bit_identical(
        tiny_dataset, tmp_path, objective):
    """The method's second stage: AT-net is trained toward the VQ-VAE encoder's continuous latents z_e (not
    the codewords), and the VQ-VAE (encoder, codebook, EMA buffers, decoder) does not change while it is,
    also when the image loss backpropagates through the frozen decoder."""
    import torch.nn.functional as F
    import yaml

    from audio_vision.core.model.checkpoint import ModalityModel
    from audio_vision.core.model.encoding import image_to_tensor
    from audio_vision.training.config import TrainConfig
    from audio_vision.training.trainer import Trainer

    raw = yaml.safe_load(tiny_train_config(tmp_path).read_text())
    cfg = TrainConfig.from_dict({**raw, 'modalities': ['depth'], 'stages': ['vqvae', 'atnet'],
                                 'atnet_objective': {'depth': objective}})
    trainer = Trainer(tiny_dataset, tmp_path / 'run', cfg, progress=False)
    model = ModalityModel(trainer.spec('depth'))
    trainer.train_vqvae(model)
    before = {k: v.clone() for k, v in model.vqvae.state_dict().items()}
    trainer.train_atnet(model)
    after = model.vqvae.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f'the AT-net stage changed the VQ-VAE: {changed}'

    with torch.no_grad():
        x = model.encoding.encode(image_to_tensor(trainer.val.depth, 'depth'))
        z_e = model.vqvae.encode(x)
        z_q = model.vqvae.quantizer.lookup(model.vqvae.quantizer.nearest(z_e))
        z = model.atnet(trainer.val.features.float())
    to_continuous, to_codewords = F.mse_loss(z, z_e).item(), F.mse_loss(z, z_q).item()
    assert abs(to_continuous - to_codewords) > 1e-3 * to_continuous      # the two targets are distinguishable
    logged = [row['val_latent_mse'] for row in trainer.histories['atnet_depth']]
    assert any(v == pytest.approx(to_continuous, rel=1e-4) for v in logged), (logged, to_continuous, to_codewords)


def test_atnet_stage_alone_refuses_a_missing_vqvae(tiny_dataset, tmp_path):
    """Training an AT-net against a random VQ-VAE would silently ship a useless model."""
    proc = subprocess.run([sys.executable, '-m', 'audio_vision', 'train', '--data', str(tiny_dataset),
                           '--run-dir', str(tmp_path / 'fresh'), '--config', str(tiny_train_config(tmp_path)),
                           '--modalities', 'depth', '--stages', 'atnet', '--no-progress'],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'needs the trained depth VQ-VAE' in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'fresh' / 'atnet_depth').exists()


def test_early_stopping_keeps_the_best_epoch_and_resumes_as_stopped(tmp_path):
    from audio_vision.training.config import OptimConfig
    from audio_vision.training.loop import Monitor, fit

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    x = torch.randn(64, 2)
    scores = iter([0.5, 0.3, 0.4, 0.45, 0.35, 0.2, 0.1])    # lower is better; best at epoch 2
    weights = {}

    def validate(net):
        epoch = len(weights) + 1
        weights[epoch] = net.weight.detach().clone()
        return {'val_abs_rel': next(scores)}

    optim = OptimConfig(epochs=7, batch_size=16, lr=0.01, patience=3)
    step = lambda net, idx: net(x[idx]).square().mean()  # noqa: E731
    hist = fit(model, step, len(x), optim, tmp_path / 'stage', 0, validate, progress=False,
               monitor=Monitor('val_abs_rel', higher_is_better=False))
    assert [row['epoch'] for row in hist] == [1, 2, 3, 4, 5]          # 3 epochs without improvement
    assert all(row['best_epoch'] == 2 for row in hist)
    torch.testing.assert_close(model.weight, weights[2])               # best weights restored
    # A rerun of the same stage resumes from state.pt and does not train further.
    again = fit(torch.nn.Linear(2, 1), step, len(x), optim, tmp_path / 'stage', 0, validate, progress=False,
                monitor=Monitor('val_abs_rel', higher_is_better=False))
    assert len(again) == 5


def test_training_refuses_features_whose_chirp_the_dataset_did_not_emit(tiny_dataset):
    from audio_vision.core.features.chirp import ChirpMismatch
    from audio_vision.core.features.config import FeatureConfig
    from audio_vision.training.trainer import dataset_summary
    summary, *_ = dataset_summary(tiny_dataset, FeatureConfig())       # the simulator's default chirp
    assert summary['path'] == str(tiny_dataset)
    with pytest.raises(ChirpMismatch, match=f'{tiny_dataset.name} .*f_end 7500.0 \\(emitted\\) vs chirp_f_end 7000.0'):
        dataset_summary(tiny_dataset, FeatureConfig(chirp_f_end=7000.0))


def test_weight_average_is_what_is_validated_kept_and_resumed(tmp_path):
    from audio_vision.training.config import OptimConfig
    from audio_vision.training.loop import Monitor, WeightAverage, fit

    x = torch.randn(64, 2)
    step = lambda net, idx: (net(x[idx]) - 1.0).square().mean()  # noqa: E731
    seen = []

    def validate(net):
        seen.append(net.weight.detach().clone())
        return {'val_abs_rel': float((net(x) - 1.0).square().mean())}

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optim = OptimConfig(epochs=3, batch_size=16, lr=0.05, ema_decay=0.9)
    hist = fit(model, step, len(x), optim, tmp_path / 'stage', 0, validate, progress=False,
               monitor=Monitor('val_abs_rel', higher_is_better=False))
    state = torch.load(tmp_path / 'stage' / 'state.pt', weights_only=True)
    average = state['average']
    assert average['updates'] == 3 * 4                                 # one update per optimizer step
    torch.testing.assert_close(seen[-1], average['shadow']['weight'])  # validation saw the average ...
    assert not torch.equal(state['model']['weight'], average['shadow']['weight'])   # ... not the raw weights
    torch.testing.assert_close(model.weight.detach(), average['shadow']['weight'])  # and the model returns it
    assert len(hist) == 3
    # Extending the run resumes the average where it stopped.
    longer = OptimConfig(epochs=4, batch_size=16, lr=0.05, ema_decay=0.9)
    fit(torch.nn.Linear(2, 1), step, len(x), longer, tmp_path / 'stage', 0, validate, progress=False)
    assert torch.load(tmp_path / 'stage' / 'state.pt', weights_only=True)['average']['updates'] == 4 * 4

    net = torch.nn.Linear(2, 1)
    avg = WeightAverage(net, 0.5)
    before = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    avg.update(net)                           # ramp: d = min(0.5, 2 / 11)
    d = 2 / 11
    torch.testing.assert_close(avg.shadow['weight'], d * before + (1 - d) * (before + 1.0))
    with avg.applied(net):
        torch.testing.assert_close(net.weight.detach(), avg.shadow['weight'])
    torch.testing.assert_close(net.weight.detach(), before + 1.0)
    with pytest.raises(ValueError, match='ema_decay'):
        WeightAverage(net, 1.0)


def test_per_modality_optim_overrides_apply_to_one_modality_and_scale_with_the_cli(tmp_path):
    import argparse

    import yaml

    from audio_vision.commands.train import load_config
    from audio_vision.training.config import TrainConfig
    cfg = TrainConfig.from_dict({'atnet_optim': {'epochs': 14, 'lr': 0.001},
                                 'optim_overrides': {'depth': {'atnet_optim': {'epochs': 28, 'ema_decay': 0.998}}}})
    assert cfg.optim('atnet_optim', 'depth').epochs == 28 and cfg.optim('atnet_optim', 'depth').lr == 0.001
    assert cfg.optim('atnet_optim', 'depth').ema_decay == 0.998
    assert cfg.optim('atnet_optim', 'segmentation').epochs == 14
    assert cfg.optim('atnet_optim', 'segmentation').ema_decay is None
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match='unknown stage optimizer'):
        TrainConfig.from_dict({'optim_overrides': {'depth': {'atnet': {'epochs': 3}}}})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['epoch'\]"):
        TrainConfig.from_dict({'optim_overrides': {'depth': {'atnet_optim': {'epoch': 3}}}})
    with pytest.raises(ValueError, match='ema_decay must lie in'):              # at load, before any training
        TrainConfig.from_dict({'optim_overrides': {'depth': {'atnet_optim': {'ema_decay': 1.5}}}})
    path = tmp_path / 'train.yaml'
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    args = argparse.Namespace(config=path, modalities=None, stages=None, latent_size=None, seed=None, threads=None,
                              depth_target=None, epochs_scale=0.5, max_steps=3)
    scaled = load_config(args)
    assert scaled.optim('atnet_optim', 'depth').epochs == 14 and scaled.optim('atnet_optim', 'segmentation').epochs == 7
    assert scaled.optim('atnet_optim', 'depth').max_steps_per_epoch == 3


def test_per_modality_atnet_overrides_reach_one_modalitys_spec_only():
    from audio_vision.core.camera import PinholeCamera
    from audio_vision.core.classes import DEFAULT_CLASS_TABLE
    from audio_vision.core.model.checkpoint import ArrayGeometry, ModalityModel
    from audio_vision.training.config import TrainConfig
    from audio_vision.training.specs import modality_spec
    cfg = TrainConfig.from_dict({'atnet': {'encoder_width': 8}, 'atnet_overrides': {'depth': {'joined_convs': 2}},
                                 'features': {'window_s': 0.25, 'n_fft': 256, 'n_mels': 32}})
    assert cfg.atnet_of('depth').joined_convs == 2 and cfg.atnet_of('depth').encoder_width == 8
    assert cfg.atnet_of('segmentation').joined_convs == 0
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    array = ArrayGeometry(cfg.features.sample_rate, np.random.default_rng(1).normal(scale=0.1, size=(4, 3)))
    depth, seg = (ModalityModel(modality_spec(cfg, m, PinholeCamera(64, 64, 90.0), array, DEFAULT_CLASS_TABLE))
                  for m in ('depth', 'segmentation'))
    assert depth.spec.atnet.joined_convs == 2 and len(depth.atnet.joined) == 6
    assert seg.spec.atnet.joined_convs == 0 and len(seg.atnet.joined) == 0
    with pytest.raises(ValueError, match=r"atnet_overrides.depth: unknown setting\(s\) \['joined'\]"):
        TrainConfig.from_dict({'atnet_overrides': {'depth': {'joined': 2}}})
    with pytest.raises(ValueError, match="unknown modality 'sonar'"):
        TrainConfig.from_dict({'atnet_overrides': {'sonar': {'joined_convs': 2}}})


def test_layout_method_row_takes_the_room_from_the_layout_and_bodies_from_the_method():
    from types import SimpleNamespace

    from audio_vision.core.classes import DEFAULT_CLASS_TABLE as table
    from audio_vision.training.evaluate import join_layout
    wall, floor, person = table.id_of('wall'), table.id_of('floor'), table.id_of('person')
    layout = SimpleNamespace(depth=np.array([[[2.0, 2.0, np.nan]]], dtype=np.float32),
                             segmentation=np.array([[[floor, floor, wall]]], dtype=np.uint8))
    method = {'depth': np.array([[[3.0, 1.0, 5.0]]], dtype=np.float32),
              'segmentation': np.array([[[wall, person, floor]]], dtype=np.uint8)}
    # pixel 0: layout prior, method sees the room -> layout; pixel 1: method sees a body -> method;
    # pixel 2: no prior -> method
    assert join_layout(layout, 'depth', method, table).tolist() == [[[2.0, 1.0, 5.0]]]
    assert join_layout(layout, 'segmentation', method, table).tolist() == [[[floor, person, floor]]]
    # depth alone (no segmentation model): the layout wherever it has a prior
    assert join_layout(layout, 'depth', {'depth': method['depth']}, table).tolist() == [[[2.0, 2.0, 5.0]]]


def test_a_feature_cache_of_another_front_end_revision_is_not_reused(tiny_dataset, monkeypatch):
    """A prior's features are measured by the sonar front-end's code: a cache it made before its measurements
    changed (FRONT_END_REVISION) is recomputed; a config without the prior keeps its cache."""
    from audio_vision.core.features.config import FeatureConfig
    from audio_vision.training import data
    caches = Path(tiny_dataset) / 'features_cache'

    def files_after(features):
        before = set(caches.glob('test-*.npy')) if caches.is_dir() else set()
        data.load_split(tiny_dataset, 'test', features, progress=False)
        return set(caches.glob('test-*.npy')) - before

    prior, plain = FeatureConfig(layout_prior='layout'), FeatureConfig()
    assert len(files_after(prior)) == 1 and len(files_after(plain)) == 1
    assert not files_after(prior) and not files_after(plain)            # reused
    monkeypatch.setattr(data, 'FRONT_END_REVISION', data.FRONT_END_REVISION + 1)
    assert len(files_after(prior)) == 1 and not files_after(plain)


def test_depth_relative_to_the_layout_trains_ships_and_evaluates(tiny_dataset, tmp_path):
    """``depth_target: layout_ratio``: the VQ-VAE learns the images' departure from the measured room (its inputs are
    the absolute encoding minus the prior's normalised log-depth), the checkpoint says so, and evaluation reads
    metres with the room added back (its upper bound is then as close to the truth as the absolute one's)."""
    import yaml

    from audio_vision.core.model.checkpoint import load_checkpoint
    from audio_vision.core.model.encoding import image_to_tensor
    from audio_vision.training.config import TrainConfig
    from audio_vision.training.trainer import Trainer

    raw = yaml.safe_load(tiny_train_config(tmp_path).read_text())
    raw = {**raw, 'features': {**raw['features'], 'layout_prior': 'layout'}, 'depth_target': 'layout_ratio',
           'modalities': ['depth'], 'stages': ['vqvae', 'atnet', 'end_to_end']}
    trainer = Trainer(tiny_dataset, tmp_path / 'run', TrainConfig.from_dict(raw), progress=False)
    trainer.run()
    model = load_checkpoint(tmp_path / 'run' / 'models' / 'depth.pt')
    assert model.spec.depth_target == 'layout_ratio'
    feats = trainer.val.features.float()
    reference = model.reference(feats)
    assert reference is not None and float(reference.abs().sum()) > 0          # the rooms were measured
    absolute = model.encoding.encode(image_to_tensor(trainer.val.depth, 'depth'))
    relative, _ = trainer._targets(trainer.val, model, slice(None))
    torch.testing.assert_close(relative[:, 0], (absolute[:, 0] - reference) * absolute[:, 1])
    # The room is what makes the reconstructions metres: without it added back they miss by the room itself.
    truth = torch.as_tensor(np.asarray(trainer.val.depth), dtype=torch.float32)
    seen = torch.isfinite(truth) & (truth > 0)
    with torch.no_grad():
        recon = model.vqvae.decode_latent(model.vqvae.encode(relative))

    def abs_rel(output):
        return float(((model.encoding.metres(output) - truth).abs() / truth)[seen].mean())
    assert abs_rel(model.absolute(recon, reference)) < 0.5 * abs_rel(recon)

    out = tmp_path / 'eval.json'
    run_cli('evaluate', '--data', tiny_dataset, '--json', out, '--models', tmp_path / 'run' / 'models',
            '--no-progress', '--no-layout')
    rows = json.loads(out.read_text())['rows']
    for row in ('method', 'end_to_end', 'vqvae_upper_bound'):
        assert np.isfinite(rows[row]['depth']['abs_rel']), row
    # Evaluation adds the room back too (not "upper bound < method": this tiny VQ-VAE uses one codeword, and the
    # method can match it by chance).
    for row in ('method', 'vqvae_upper_bound'):
        assert rows[row]['depth']['abs_rel'] < 0.5 * abs_rel(recon), (row, rows[row]['depth'])
