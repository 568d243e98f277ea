"""The fault battery: broken files, mistyped flags, signals, a full disk, divergence and
uneven shards end cleanly: an exit code, one line naming the problem, no signal death,
no traceback, nothing half-written, earlier checkpoints intact, no process left."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from conftest import leftovers, pack_demo_digits
from octconv.train import checkpoint, launch, train_imagenet
from octconv.utils import demo_data


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """60 demo digits (6 per class) as train and val .rec at 32 px."""
    return pack_demo_digits(tmp_path_factory.mktemp('faults'), per_class=6, val_ratio=0.34)


def _train_flags(tiny, save_dir, *extra):
    return ['--rec-train', tiny + '_train.rec', '--rec-val', tiny + '_val.rec', '--save-dir',
            str(save_dir), '--input-size', '32', '--batch-size', '8', '--num-epochs', '2',
            '--lr', '0.05', '--quiet', '-j', '1', '--min-random-area', '0.5'] + list(extra)


def _cli(module, *argv, timeout=120, signal_after=None, env=None):
    """Run ``python -m module argv`` in a fresh process; ``(returncode, stdout, stderr)``."""
    process = subprocess.Popen([sys.executable, '-m', module] + [str(a) for a in argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **(env or {})))
    try:
        if signal_after is not None:
            wait_for, sig = signal_after
            deadline = time.time() + timeout
            while not wait_for() and time.time() < deadline and process.poll() is None:
                time.sleep(0.05)
            process.send_signal(sig)
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def _errors(stderr):
    """The error lines a tool wrote (its 'error:' or 'stopped' lines)."""
    return [line for line in stderr.splitlines() if 'error' in line or 'stopped' in line]


def _assert_clean_exit(code, stderr, want_code, *words):
    assert code == want_code, stderr[-3000:]
    assert 'Traceback' not in stderr, stderr[-3000:]
    lines = _errors(stderr)
    assert len(lines) == 1, stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]


def _write_rec(prefix, records):
    """A .rec/.idx of ``[(label, payload bytes)]``."""
    writer = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'w')
    for key, (label, payload) in enumerate(records):
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, label, key, 0), payload))
    writer.close()
    return prefix + '.rec'


def _jpegs(tiny, count):
    """The first ``count`` image payloads of the tiny validation set."""
    reader = mx.recordio.MXIndexedRecordIO(tiny + '_val.idx', tiny + '_val.rec', 'r')
    payloads = [mx.recordio.unpack(reader.read_idx(k))[1] for k in sorted(reader.keys)[:count]]
    reader.close()
    return payloads


def _checkpoint_files(save_dir):
    root = os.path.join(save_dir, 'checkpoints')
    return {name: {f: open(os.path.join(root, name, f), 'rb').read()
                   for f in sorted(os.listdir(os.path.join(root, name)))}
            for name in sorted(os.listdir(root))} if os.path.isdir(root) else {}


# -- crashes and wrong results ------------------------------------------------------------

def test_a_record_that_is_no_image_is_refused_before_mxnet_reads_it(tiny, tmp_path):
    payloads = _jpegs(tiny, 4)
    bad = _write_rec(str(tmp_path / 'bad'), [(i % 10, p) for i, p in enumerate(payloads)]
                     + [(1, b'%PDF-1.4 not an image at all' * 4)])
    net = tmp_path / 'run'
    assert train_imagenet.main(_train_flags(tiny, net, '--num-epochs', '1')) == 0
    code, _, err = _cli('octconv.train.score', '--model', net / 'model', '--epoch', 1,
                        '--rec-val', bad, '--batch-size', 2, '--quiet')
    _assert_clean_exit(code, err, 2, 'bad.rec, record 4', 'not an encoded image')
    # as validation data of a training run: refused before the first epoch
    flags = _train_flags(tiny, tmp_path / 'val-bad')
    flags[flags.index('--rec-val') + 1] = bad
    code, _, err = _cli('octconv.train.train_imagenet', *flags)
    _assert_clean_exit(code, err, 2, 'bad.rec, record 4')
    assert not checkpoint.list_checkpoints(str(tmp_path / 'val-bad'))


@pytest.mark.parametrize('flags', [['--lr', '1e6'], ['--wd', '1e3', '--lr', '1']])
def test_divergence_stops_with_the_first_bad_parameter_and_no_bad_checkpoint(tiny, tmp_path,
                                                                         flags):
    save = tmp_path / 'diverged'
    code, _, err = _cli('octconv.train.train_imagenet',
                        *_train_flags(tiny, save, '--num-epochs', '3', *flags))
    _assert_clean_exit(code, err, 1, 'NaN or inf', 'at epoch', 'batch')
    for _, folder in checkpoint.list_checkpoints(str(save)):
        params = mx.nd.load(os.path.join(folder, 'model.params'))
        assert all(np.isfinite(v.asnumpy()).all() for v in params.values()), folder
    best = checkpoint.best(str(save))
    assert best is None or os.path.isdir(best['folder'])
    assert not os.path.exists(save / 'model-0003.params')


def test_dist_sync_trains_shares_that_are_not_multiples_of_the_batch(tmp_path):
    rec = pack_demo_digits(tmp_path, per_class=4, val_ratio=0) + '.rec'    # 40 images
    port = launch._free_port()
    save = tmp_path / 'dist'
    code = launch.run([sys.executable, '-m', 'octconv.train.train_imagenet', '--rec-train', rec,
                       '--save-dir', str(save), '--input-size', '32', '--batch-size', '16',
                       '--num-epochs', '2', '--quiet', '-j', '1', '--api', 'gluon', '--model',
                       'mobilenet_v1_075', '--ratio', '0.375', '--kv-store', 'dist_sync'],
                      num_workers=2, num_servers=1, timeout=240, port=port)
    assert code == 0
    log = [json.loads(line) for line in open(save / 'log.jsonl')]
    # 20 images a worker, batches of 16: 2 full steps each (4 wrapped images trained twice)
    assert [(l['epoch'], l['images']) for l in log] == [(1, 32), (2, 32)]
    assert not leftovers(b'DMLC_PS_ROOT_PORT=%d' % port)


def test_sigterm_to_the_launcher_stops_every_child(tmp_path):
    marker = 'octconv-fault-%d' % os.getpid()
    started = tmp_path / 'started'
    worker = ('import os, time\n'
              'open(os.path.join(%r, str(os.getpid())), "w").close()\n'
              'time.sleep(600)  # %s\n' % (str(started), marker))
    started.mkdir()
    code, _, err = _cli('octconv.train.launch', '-n', '2', '-s', '1', '--', sys.executable,
                        '-c', worker, timeout=60,
                        signal_after=(lambda: len(os.listdir(started)) >= 2, signal.SIGTERM),
                        env={'OCTCONV_FAULT_MARKER': marker})    # inherited by every child
    assert code == 128 + signal.SIGTERM, err
    assert 'SIGTERM received; stopping every process' in err and 'Traceback' not in err
    assert not leftovers(marker.encode())     # scheduler, server and both workers are gone


def test_score_refuses_labels_outside_the_model_classes(tiny, tmp_path):
    net = tmp_path / 'run'
    assert train_imagenet.main(_train_flags(tiny, net, '--num-epochs', '1')) == 0
    payloads = _jpegs(tiny, 3)
    for label, shown in ((1000., '1000'), (-1., '-1'), (2.5, '2.5')):
        bad = _write_rec(str(tmp_path / 'labels'), [(0., payloads[0]), (label, payloads[1]),
                                                    (1., payloads[2])])
        out = tmp_path / 'result.jsonl'
        code, _, err = _cli('octconv.train.score', '--model', net / 'model', '--epoch', 1,
                            '--rec-val', bad, '--batch-size', 2, '--json-out', out)
        _assert_clean_exit(code, err, 2, 'record 1', 'label %s is not a class index in [0, 10)'
                           % shown)
        assert not out.exists()


def _mount_tmpfs(path, megabytes):
    path.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('a small tmpfs needs root')
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dk' % (megabytes * 1024),
                           'tmpfs', str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % done.stderr.decode().strip())


def _folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
               for f in files)


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_half_written_file(tiny, tmp_path):
    flags = ['--api', 'gluon', '--model', 'mobilenet_v1_075', '--ratio', '0.375']
    probe = tmp_path / 'probe'
    assert train_imagenet.main(_train_flags(tiny, probe, '--num-epochs', '1', *flags)) == 0
    one = _folder_bytes(probe / 'checkpoints')        # a checkpoint: parameters and states
    disk = tmp_path / 'disk'
    _mount_tmpfs(disk, int(one * 1.25 / 2 ** 20) + 1)  # one checkpoint fits, not two
    try:
        # epoch 2's checkpoint does not fit: epoch 1 stays, no temporary is left
        save = disk / 'run'
        code, _, err = _cli('octconv.train.train_imagenet', *_train_flags(tiny, save, *flags))
        _assert_clean_exit(code, err, 2, 'epoch-0002', 'MB free')
        assert sorted(os.listdir(save / 'checkpoints')) == ['epoch-0001']
        before = _checkpoint_files(save)
        code, _, err = _cli('octconv.train.train_imagenet',
                            *_train_flags(tiny, save, '--resume', *flags))
        _assert_clean_exit(code, err, 2, 'epoch-0002', 'MB free')
        assert _checkpoint_files(save) == before
        # the final export does not fit beside the checkpoint: no file under a final name
        shutil.rmtree(save)
        last = disk / 'last'
        code, _, err = _cli('octconv.train.train_imagenet',
                            *_train_flags(tiny, last, '--num-epochs', '1', *flags))
        _assert_clean_exit(code, err, 2, str(last), 'MB free')
        assert sorted(os.listdir(last)) == ['best.json', 'checkpoints', 'log.jsonl', 'run.json',
                                            'train.log']
        assert sorted(os.listdir(last / 'checkpoints')) == ['epoch-0001']
    finally:
        subprocess.run(['umount', str(disk)], check=False)


def test_score_batch_size_zero_is_refused_at_once(tiny):
    code, _, err = _cli('octconv.train.score', '--model', 'x', '--epoch', 1, '--rec-val',
                        tiny + '_val.rec', '--batch-size', 0, timeout=60)
    _assert_clean_exit(code, err, 2, '--batch-size must be in [1, inf], got 0')


# -- mistyped flags and files: exit 2 and one line naming them, before any work ----------

BAD_FLAGS = [(['--batch-size', '0'], '--batch-size'), (['--batch-size', '-8'], '--batch-size'),
             (['--input-size', '16'], '--input-size'), (['--input-size', '0'], '--input-size'),
             (['-j', '0'], '--num-data-workers'), (['--min-random-area', '2'],
                                                  '--min-random-area'),
             (['--final-drop', '1.5'], '--final-drop'), (['--save-frequency', '0'],
                                                         '--save-frequency'),
             (['--lr', '-1'], '--lr'), (['--label-smoothing', '1.5'], '--label-smoothing'),
             (['--label-smoothing', '-0.5'], '--label-smoothing'),
             (['--momentum', '-1'], '--momentum'), (['--num-epochs', '0'], '--num-epochs must'),
             (['--mixup-alpha', '-1'], '--mixup-alpha must be in (0'),
             (['--warmup-epochs', '3', '--num-epochs', '3'], '--warmup-epochs must'),
             (['--lr-decay-epoch', '1,x'], '--lr-decay-epoch'),
             (['--rec-train', 'a;b.rec'], "';' as a separator")]


@pytest.mark.parametrize('flags,words', BAD_FLAGS, ids=[' '.join(f) for f, _ in BAD_FLAGS])
def test_a_bad_flag_is_refused_before_any_work(tmp_path, capsys, flags, words):
    save = tmp_path / 'run'
    assert train_imagenet.main(['--save-dir', str(save), '--quiet'] + flags) == 2
    err = capsys.readouterr().err
    assert len(_errors(err)) == 1 and words in err and 'Traceback' not in err, err
    assert not save.exists()


def test_num_epochs_one_trains_with_the_default_warmup(tiny, tmp_path):
    assert train_imagenet.main(_train_flags(tiny, tmp_path / 'one', '--num-epochs', '1')) == 0


def test_bad_paths_are_named(tiny, tmp_path, capsys):
    (tmp_path / 'file').write_text('not a folder')
    fifo = tmp_path / 'fifo.rec'
    os.mkfifo(fifo)
    for flags, words in ((['--save-dir', str(tmp_path / 'file')], 'exists and is not a folder'),
                         (['--rec-train', str(tmp_path)], 'not a regular file'),
                         (['--rec-train', str(fifo)], 'not a regular file')):
        assert train_imagenet.main(flags + ['--quiet']) == 2
        err = capsys.readouterr().err
        assert len(_errors(err)) == 1 and words in err, err


def test_an_index_whose_keys_share_a_record_is_refused(tiny, tmp_path, capsys):
    rec = tmp_path / 'same.rec'
    shutil.copy(tiny + '_train.rec', rec)
    with open(tiny + '_train.idx') as source:
        keys = [line.split('\t')[0] for line in source if line.strip()]
    (tmp_path / 'same.idx').write_text(''.join('%s\t0\n' % k for k in keys))
    assert train_imagenet.main(['--rec-train', str(rec), '--input-size', '32', '--quiet',
                                '--save-dir', str(tmp_path / 'run')]) == 2
    assert 'both point at byte 0' in capsys.readouterr().err


def test_an_empty_image_file_is_refused_by_name(tmp_path, capsys):
    demo_data.write_image_folder(str(tmp_path / 'data' / 'train'), per_class=2)
    demo_data.write_image_folder(str(tmp_path / 'data' / 'val'), per_class=1)
    empty = tmp_path / 'data' / 'train' / '3' / 'empty.jpg'
    empty.write_bytes(b'')
    assert train_imagenet.main(['--data-dir', str(tmp_path / 'data'), '--quiet', '--save-dir',
                                str(tmp_path / 'run'), '--input-size', '32']) == 2
    err = capsys.readouterr().err
    assert 'empty.jpg: the image file is empty' in err and 'Traceback' not in err


def test_resume_from_a_damaged_or_foreign_checkpoint_is_refused(tiny, tmp_path, capsys):
    save = tmp_path / 'run'
    assert train_imagenet.main(_train_flags(tiny, save, '--num-epochs', '1')) == 0
    capsys.readouterr()
    folder = checkpoint.latest(str(save))
    assert train_imagenet.main(_train_flags(tiny, save, '--resume', '--ratio', '0.5')) == 2
    assert 'was trained with ratio 0.25; this run has ratio 0.5' in capsys.readouterr().err
    for name in ('model.params', 'trainer.states'):
        copy = tmp_path / ('copy-' + name)
        shutil.copytree(folder, copy)
        with open(copy / name, 'r+b') as handle:
            handle.truncate(os.path.getsize(copy / name) // 2)
        assert train_imagenet.main(_train_flags(tiny, save, '--resume-from', str(copy))) == 2
        err = capsys.readouterr().err
        assert name in err and 'Traceback' not in err and len(_errors(err)) == 1, err
        shutil.rmtree(copy)


# -- interrupts, temporary files, log noise ---------------------------------------------

def test_sigterm_ends_training_cleanly_with_the_last_checkpoint_intact(tiny, tmp_path):
    save = tmp_path / 'term'
    code, _, err = _cli('octconv.train.train_imagenet',
                        *_train_flags(tiny, save, '--num-epochs', '50'),
                        signal_after=(lambda: bool(checkpoint.list_checkpoints(str(save))),
                                      signal.SIGTERM))
    _assert_clean_exit(code, err, 128 + signal.SIGTERM, 'stopped by SIGTERM',
                       'the last complete checkpoint is')
    names = os.listdir(save / 'checkpoints')
    assert names and all(n.startswith('epoch-') for n in names)
    for _, folder in checkpoint.list_checkpoints(str(save)):
        assert mx.nd.load(os.path.join(folder, 'model.params'))


def test_ctrl_c_during_a_checkpoint_write_leaves_no_temporary(tiny, tmp_path, monkeypatch,
                                                              capsys):
    save_states = mx.gluon.Trainer.save_states
    calls = []

    def interrupted_second_time(trainer, path):
        calls.append(path)
        save_states(trainer, path)
        if len(calls) == 2:         # epoch 2's checkpoint, its files half written
            raise KeyboardInterrupt
    monkeypatch.setattr(mx.gluon.Trainer, 'save_states', interrupted_second_time)
    save = tmp_path / 'int'
    assert train_imagenet.main(_train_flags(tiny, save, '--num-epochs', '3')) == 130
    err = capsys.readouterr().err
    assert 'stopped by SIGINT; the last complete checkpoint is' in err and 'epoch-0001' in err
    assert os.listdir(save / 'checkpoints') == ['epoch-0001']


def test_im2rec_leaves_nothing_when_it_refuses_a_folder(tmp_path):
    root = tmp_path / 'images'
    demo_data.write_image_folder(str(root), per_class=2)
    (root / '4' / 'broken.jpg').write_bytes(b'\xff\xd8\xff not really a jpeg')
    code, _, err = _cli('octconv.utils.im2rec', root, tmp_path / 'out' / 'set', '--threads', 1)
    _assert_clean_exit(code, err, 2, 'broken.jpg: the image cannot be decoded')
    assert os.listdir(tmp_path / 'out') == []


def test_training_logs_no_mkldnn_pooling_warning(tiny, tmp_path):
    code, _, err = _cli('octconv.train.train_imagenet',
                        *_train_flags(tiny, tmp_path / 'quiet', '--num-epochs', '1'))
    assert code == 0 and 'forward_scoring' not in err
