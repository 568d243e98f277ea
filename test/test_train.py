"""Training: recipe pieces against formulas, loss goes down, checkpoints survive, resume is exact."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from octconv.train import checkpoint, fit, train_imagenet
from octconv.train.schedule import make_lr_scheduler
from octconv.train.targets import mixup, one_hot_targets
from octconv.utils import demo_data


def _args(digits60, save_dir, *extra):
    return ['--rec-train', digits60 + '_train.rec', '--rec-val', digits60 + '_val.rec',
            '--save-dir', str(save_dir), '--input-size', '32', '--batch-size', '16',
            '--num-epochs', '3', '--lr', '0.05', '--warmup-epochs', '1', '--quiet',
            '--min-random-area', '0.5', '-j', '1'] + list(extra)


def _files(folder):
    """``{path: bytes}`` of every file under ``folder``."""
    return {str(path): path.read_bytes() for path in sorted(folder.rglob('*')) if path.is_file()}


def _params(folder):
    return {k: v.asnumpy() for k, v in mx.nd.load(os.path.join(folder, 'model.params')).items()}


def test_warmup_then_cosine_follows_the_formula():
    iters, warm, epochs, lr = 5, 2, 10, 0.4
    schedule = make_lr_scheduler('cosine', lr, epochs, iters, warmup_epochs=warm, warmup_lr=0.)
    n_warm, n_cos = warm * iters, (epochs - warm) * iters
    for i in range(epochs * iters):
        if i < n_warm:      # linear from warmup_lr to lr over the warm-up iterations
            want = lr * i / (n_warm - 1)
        else:               # lr (1 + cos(pi t)) / 2, t running from 0 to 1
            want = lr * (1 + math.cos(math.pi * (i - n_warm) / (n_cos - 1))) / 2
        assert schedule(i) == pytest.approx(want, abs=1e-12), i


def test_step_schedule_decays_at_the_given_epochs():
    schedule = make_lr_scheduler('step', 0.1, 10, 4, lr_decay=0.1, lr_decay_epochs=[3, 6])
    assert [round(schedule(e * 4), 6) for e in (0, 2, 3, 5, 6, 9)] == [0.1, 0.1, 0.01, 0.01,
                                                                       0.001, 0.001]


def test_label_smoothing_and_mixup_targets_by_hand():
    labels = mx.nd.array([2, 0])
    smooth = one_hot_targets(mx.nd, labels, 4, smoothing=0.1).asnumpy()
    np.testing.assert_allclose(smooth, [[0.025, 0.025, 0.925, 0.025],
                                        [0.925, 0.025, 0.025, 0.025]], rtol=1e-6)
    data = mx.nd.array([[1., 2.], [3., 4.]])
    mixed_x, mixed_y = mixup(data, mx.nd.array(smooth), 0.7)
    np.testing.assert_allclose(mixed_x.asnumpy(), [[1.6, 2.6], [2.4, 3.4]], rtol=1e-6)
    np.testing.assert_allclose(mixed_y.asnumpy()[0], [0.295, 0.025, 0.655, 0.025], rtol=1e-5)


@pytest.mark.parametrize('api_args', [['--api', 'symbol', '--network', 'resnetv2', '--depth',
                                       '26'],
                                      ['--api', 'gluon', '--model', 'mobilenet_v1_075',
                                       '--ratio', '0.375']])
def test_loss_decreases_on_repeated_batches(tmp_path, api_args):
    config, _ = train_imagenet.parse_config(
        api_args + ['--save-dir', str(tmp_path), '--num-epochs', '8', '--lr', '0.01',
                    '--warmup-epochs', '0', '--quiet', '--lr-mode', 'step', '--optimizer', 'sgd'])
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.randn(8, 3, 32, 32))
    y = mx.nd.array(rng.randint(0, 4, 8))
    batch = mx.gluon.data.DataLoader(mx.gluon.data.ArrayDataset(x, y), batch_size=8)
    _, history = fit.fit(config, [mx.cpu()], fit.TrainingData(4, 8, 1, lambda epoch: batch, None))
    losses = [h['train_loss'] for h in history]
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses


def test_stopped_and_resumed_equals_uninterrupted(digits60, tmp_path):
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    assert train_imagenet.main(_args(digits60, straight)) == 0
    config, _ = train_imagenet.parse_config(_args(digits60, split))
    train_imagenet.run(config, stop_after=2)
    assert [e for e, _ in checkpoint.list_checkpoints(str(split))] == [1, 2]
    # only --resume and the folder: every other value is the checkpoint's run's
    assert train_imagenet.main(['--resume', '--save-dir', str(split)]) == 0
    want, got = _params(checkpoint.latest(str(straight))), _params(checkpoint.latest(str(split)))
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)   # bitwise on CPU
    log = [json.loads(l) for l in open(split / 'log.jsonl')]
    assert [l['epoch'] for l in log] == [1, 2, 3]
    straight_log = [json.loads(l) for l in open(straight / 'log.jsonl')]
    assert [(l['lr'], l['train_loss']) for l in log] == [(l['lr'], l['train_loss'])
                                                         for l in straight_log]
    # the records say what ran: the run's values, and one segment per process
    record = json.loads((split / 'run.json').read_text())
    assert (record['num_epochs'], record['lr'], record['sources']['lr']) == (3, 0.05, 'user')
    assert [s['first_epoch'] for s in record['segments']] == [1, 3]
    assert record['segments'][1]['options']['resume_from'].endswith('epoch-0002')
    meta = checkpoint.load_meta(checkpoint.latest(str(split)))
    assert meta['segments'] == record['segments'] and meta['config']['num_epochs'] == 3
    assert (split / 'curves.png').read_bytes()[:4] == b'\x89PNG'
    assert (split / 'model-symbol.json').exists() and (split / 'model-0003.params').exists()


def test_one_run_per_folder_and_a_sigkilled_run_resumes_losing_at_most_one_epoch(digits60, tmp_path,
                                                                                capsys):
    save = tmp_path / 'killed'
    command = [sys.executable, '-m', 'octconv.train.train_imagenet'] + _args(
        digits60, save, '--num-epochs', '4')
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not checkpoint.list_checkpoints(str(save)) and time.time() < deadline:
            assert process.poll() is None, 'training ended before it could be killed'
            time.sleep(0.05)
        # a second run on the same folder (a command typed twice) is refused, naming the
        # folder and the process that holds it, and touches none of its files (the first
        # run is stopped meanwhile, so that the folder changes only if the second writes)
        process.send_signal(signal.SIGSTOP)
        before = _files(save)
        assert train_imagenet.main(_args(digits60, save, '--num-epochs', '4')) == 2
        err = capsys.readouterr().err
        assert '%s is in use by another training run (process %d on' % (save, process.pid) in err
        assert 'Traceback' not in err and _files(save) == before
        assert process.poll() is None, 'training ended before it could be killed'
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    done = [e for e, _ in checkpoint.list_checkpoints(str(save))]
    assert done and done[-1] < 4
    # the kernel released the killed run's hold on the folder: resuming works at once
    assert train_imagenet.main(_args(digits60, save, '--num-epochs', '4', '--resume')) == 0
    assert [e for e, _ in checkpoint.list_checkpoints(str(save))][-1] == 4
    log = [json.loads(line)['epoch'] for line in open(save / 'log.jsonl')]
    assert log[-1] == 4


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(digits60, tmp_path,
                                                                     caplog, monkeypatch):
    """Targets that turn NaN from the second epoch on make the loss NaN while every
    parameter is still finite: the loss check, not the parameter check, stops the run."""
    batches = []

    def targets_nan_from_epoch_2(F, labels, classes, smoothing=0.):
        batches.append(len(labels))
        targets = one_hot_targets(F, labels, classes, smoothing)
        return targets * float('nan') if len(batches) > first_epoch else targets
    first_epoch = -(-40 // 8)           # 40 training digits, batches of 8
    monkeypatch.setattr(fit, 'one_hot_targets', targets_nan_from_epoch_2)
    save = tmp_path / 'nan'
    code = train_imagenet.main(_args(digits60, save, '--batch-size', '8', '--warmup-epochs', '0'))
    assert code == 1
    assert 'the loss is nan at epoch 2, batch 1; the last good checkpoint is %s' % \
        checkpoint.latest(str(save)) in caplog.text
    assert [e for e, _ in checkpoint.list_checkpoints(str(save))] == [1]
    assert all(np.isfinite(v).all() for v in _params(checkpoint.latest(str(save))).values())


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path):
    def good(folder):
        with open(os.path.join(folder, 'model.params'), 'w') as handle:
            handle.write('epoch 1')

    def disk_full(folder):
        with open(os.path.join(folder, 'model.params'), 'w') as handle:
            handle.write('half')
        raise OSError(28, 'No space left on device')
    checkpoint.save(str(tmp_path), 1, good, {'epoch': 1}, top1=0.5)
    with pytest.raises(checkpoint.CheckpointError, match=r'epoch-0002: \[Errno 28\] No space'):
        checkpoint.save(str(tmp_path), 2, disk_full, {'epoch': 2}, top1=0.9)
    assert [e for e, _ in checkpoint.list_checkpoints(str(tmp_path))] == [1]
    assert open(os.path.join(checkpoint.latest(str(tmp_path)), 'model.params')).read() == 'epoch 1'
    assert os.listdir(tmp_path / 'checkpoints') == ['epoch-0001']          # no temp left behind
    assert checkpoint.best(str(tmp_path))['epoch'] == 1


def test_rewriting_an_epoch_keeps_the_old_folder_until_the_new_one_is_in_place(tmp_path,
                                                                               monkeypatch):
    def writes(text):
        def write_files(folder):
            with open(os.path.join(folder, 'model.params'), 'w') as handle:
                handle.write(text)
        return write_files

    def content():
        return {e: open(os.path.join(f, 'model.params')).read()
                for e, f in checkpoint.list_checkpoints(str(tmp_path))}
    for epoch in (1, 2):
        checkpoint.save(str(tmp_path), epoch, writes('run 1, epoch %d' % epoch), {})
    rename = os.rename

    def failing_rename(src, dst, error):
        new = os.path.basename(src).startswith('.epoch-0002.') and 'replaced' not in src
        if new and dst.endswith('epoch-0002'):
            raise error                     # the new folder cannot be put in place
        rename(src, dst)
    monkeypatch.setattr(os, 'rename', lambda s, d: failing_rename(s, d, OSError(5, 'I/O')))
    with pytest.raises(checkpoint.CheckpointError, match=r'epoch-0002: \[Errno 5\] I/O'):
        checkpoint.save(str(tmp_path), 2, writes('run 2, epoch 2'), {})
    assert content() == {1: 'run 1, epoch 1', 2: 'run 1, epoch 2'}        # put back whole
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['epoch-0001', 'epoch-0002']
    # Ctrl-C at that moment: the interrupt goes on, the old epoch 2 is put back whole
    monkeypatch.setattr(os, 'rename', lambda s, d: failing_rename(s, d, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(str(tmp_path), 2, writes('run 2, epoch 2'), {})
    assert content() == {1: 'run 1, epoch 1', 2: 'run 1, epoch 2'}
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['epoch-0001', 'epoch-0002']
    monkeypatch.setattr(os, 'rename', rename)
    checkpoint.save(str(tmp_path), 2, writes('run 3, epoch 2'), {})
    assert content() == {1: 'run 1, epoch 1', 2: 'run 3, epoch 2'}
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['epoch-0001', 'epoch-0002']


def test_best_and_last_k_are_kept(tmp_path):
    for epoch, top1 in enumerate([0.2, 0.9, 0.3, 0.4, 0.5], start=1):
        checkpoint.save(str(tmp_path), epoch, lambda folder: None, {'epoch': epoch}, keep=2,
                        top1=top1)
    assert [e for e, _ in checkpoint.list_checkpoints(str(tmp_path))] == [2, 4, 5]
    assert checkpoint.best(str(tmp_path))['epoch'] == 2


def test_labels_outside_num_classes_are_refused_before_training(digits60, tmp_path, caplog):
    assert train_imagenet.main(_args(digits60, tmp_path / 'bad', '--num-classes', '5')) == 2
    assert 'is not a class index in [0, 5)' in caplog.text
    assert not checkpoint.list_checkpoints(str(tmp_path / 'bad'))


def test_paper_preset_fills_only_what_is_not_typed():
    config, _ = train_imagenet.parse_config(
        ['--api', 'gluon', '--model', 'resnet152_v1f', '--preset', 'paper', '--batch-size',
         '128', '--lr-mode', 'step', '--rec-train', 'train.rec'])
    assert (config.lr, config.warmup_epochs, config.optimizer) == (0.4 * 128 / 1024, 5, 'nag')
    assert config.mixup and config.label_smoothing == 0.1
    assert config.lr_mode == 'step' and config.sources['lr_mode'].source == 'user'
    assert (config.input_size, config.initializer) == (224, 'msraprelu')
    plain, _ = train_imagenet.parse_config(['--api', 'symbol', '--preset', 'paper'])
    assert not plain.mixup and plain.label_smoothing == 0 and plain.convention == 'symbol'


def test_training_and_scoring_from_image_folders(tmp_path, capsys):
    demo_data.write_image_folder(str(tmp_path / 'data' / 'train'), per_class=3)
    demo_data.write_image_folder(str(tmp_path / 'data' / 'val'), per_class=2)
    save = tmp_path / 'run'
    assert train_imagenet.main(['--data-dir', str(tmp_path / 'data'), '--save-dir', str(save),
                                '--num-epochs', '1', '--warmup-epochs', '0', '--batch-size',
                                '10', '--quiet', '--input-size', '32']) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (trained['images'], trained['val_images']) == (30, 20)   # DIR/train and DIR/val
    from octconv.train import score
    assert score.main(['--checkpoint', str(save / 'model'), '--epoch', '1', '--data-dir',
                       str(tmp_path / 'data' / 'val'), '--input-size', '32', '--quiet']) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored['images'] == 20 and scored['top1'] == trained['top1']   # the folder itself
