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
    assert 0 < vq_rows[-1]['codebook_used'] <= 1 and vq_rows[-1]['perplexity'] >= 1
    assert (run_dir / 'curves.png').stat().st_size > 1000
    for name in ('depth.pt', 'segmentation.pt', 'end_to_end_depth.pt', 'end_to_end_segmentation.pt', 'mean.pt'):
        assert (tmp_path / 'shipped' / name).is_file()
    # fp16 export is smaller than the full-precision model
    assert (tmp_path / 'shipped' / 'depth.pt').stat().st_size < (run_dir / 'models' / 'depth.pt').stat().st_size

    out = tmp_path / 'eval.json'
    run_cli('evaluate', '--data', tiny_dataset, '--json', out, '--models', tmp_path / 'shipped',
            '--mosaic', tmp_path / 'mosaic.png', '--no-progress')
    result = json.loads(out.read_text())
    assert set(result['rows']) >= {'method', 'method_no_quant', 'end_to_end', 'mean', 'vqvae_upper_bound'}
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
