"""The fault battery: broken files, mistyped flags, signals, a full disk, divergence and
uneven shards end cleanly: an exit code, one line naming the problem, no signal death,
no traceback, nothing half-written, earlier checkpoints intact, no process left."""
import json
import os
import re
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

# The exit codes of octconv-train and octconv-score that these tests expect.
DONE, DIVERGED, BAD_INPUT = 0, 1, 2
BY_SIGINT, BY_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM


@pytest.fixture(scope='module')
def trained(digits60, tmp_path_factory):
    """The save folder of one run of 1 epoch on ``digits60`` (read, never written, by the tests
    that use it)."""
    save = tmp_path_factory.mktemp('trained') / 'run'
    assert train_imagenet.main(_train_flags(digits60, save, '--num-epochs', '1')) == DONE
    return save


def _train_flags(digits60, save_dir, *extra):
    return ['--rec-train', digits60 + '_train.rec', '--rec-val', digits60 + '_val.rec',
            '--save-dir', str(save_dir), '--input-size', '32', '--batch-size', '8',
            '--num-epochs', '2',
            '--lr', '0.05', '--quiet', '-j', '1', '--min-random-area', '0.5'] + list(extra)


@pytest.fixture
def cli(forked_python):
    """``cli(module, *argv, timeout=120, env=None)``: ``python -m module argv`` run in a new
    process forked from one that has imported MXNet (:mod:`forked_python`: as a new
    interpreter runs it, without its seconds of imports); ``(returncode, stdout, stderr)``."""
    def run(module, *argv, timeout=120, env=None):
        code = ('import runpy, sys\nsys.argv = [%r] + %r\n'
                'runpy.run_module(%r, run_name="__main__", alter_sys=True)'
                % (module, [str(a) for a in argv], module))
        return forked_python.run(code, os.getcwd(), dict(os.environ, **(env or {})), timeout)
    return run


def _cli_process(module, *argv, timeout=120, signal_after=None, env=None):
    """Run ``python -m module argv`` in a new interpreter (``signal_after``: (a condition
    to wait for, the signal to send then)); ``(returncode, stdout, stderr)``."""
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
    """The error lines a tool wrote (its 'error:' or 'stopped' lines; not the lines OpenCV
    prints from C++ when it fails to decode an image)."""
    return [line for line in stderr.splitlines()
            if ('error' in line or 'stopped' in line)
            and ('OpenCV(' not in line or 'octconv' in line)]


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


def _jpegs(digits60, count):
    """The first ``count`` image payloads of the digits60 validation set."""
    reader = mx.recordio.MXIndexedRecordIO(digits60 + '_val.idx', digits60 + '_val.rec', 'r')
    payloads = [mx.recordio.unpack(reader.read_idx(k))[1] for k in sorted(reader.keys)[:count]]
    reader.close()
    return payloads


def _checkpoint_files(save_dir):
    root = os.path.join(save_dir, 'checkpoints')
    return {name: {f: open(os.path.join(root, name, f), 'rb').read()
                   for f in sorted(os.listdir(os.path.join(root, name)))}
            for name in sorted(os.listdir(root))} if os.path.isdir(root) else {}


# -- crashes and wrong results ------------------------------------------------------------

def test_a_record_that_is_no_image_is_refused_before_mxnet_reads_it(cli, digits60, trained,
                                                                    tmp_path):
    payloads = _jpegs(digits60, 4)
    bad = _write_rec(str(tmp_path / 'bad'), [(i % 10, p) for i, p in enumerate(payloads)]
                     + [(1, b'%PDF-1.4 not an image at all' * 4)])
    code, _, err = cli('octconv.train.score', '--checkpoint', trained / 'model', '--epoch', 1,
                       '--rec-val', bad, '--batch-size', 2, '--quiet')
    _assert_clean_exit(code, err, BAD_INPUT, 'bad.rec, record 4', 'not an encoded image')
    # as validation data of a training run: refused before the first epoch
    flags = _train_flags(digits60, tmp_path / 'val-bad')
    flags[flags.index('--rec-val') + 1] = bad
    code, _, err = cli('octconv.train.train_imagenet', *flags)
    _assert_clean_exit(code, err, BAD_INPUT, 'bad.rec, record 4')
    assert not checkpoint.list_checkpoints(str(tmp_path / 'val-bad'))


# epoch 1 trains; from epoch 2 on the step schedule multiplies the lr by the decay
@pytest.mark.parametrize('flags', [['--lr-decay', '1e30'], ['--lr-decay', '1e4', '--wd', '1e3']])
def test_divergence_stops_with_the_first_bad_parameter_and_no_bad_checkpoint(cli, digits60,
                                                                             tmp_path, flags):
    save = tmp_path / 'diverged'
    code, _, err = cli('octconv.train.train_imagenet',
                       *_train_flags(digits60, save, '--num-epochs', '3', '--lr-mode', 'step',
                                     '--lr-decay-epoch', '1', *flags))
    _assert_clean_exit(code, err, DIVERGED, 'NaN or inf', 'at epoch 2', 'batch')
    saved = checkpoint.list_checkpoints(str(save))
    assert [epoch for epoch, _ in saved] == [1]         # epoch 1's, and nothing after it
    params = mx.nd.load(os.path.join(saved[0][1], 'model.params'))
    assert params and all(np.isfinite(v.asnumpy()).all() for v in params.values())
    assert checkpoint.best(str(save))['folder'] == saved[0][1]
    assert not os.path.exists(save / 'model-0003.params')


def _records(prefix):
    """``[(label, payload)]`` of every record of PREFIX.rec, in order."""
    reader = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    records = []
    for key in sorted(reader.keys):
        header, payload = mx.recordio.unpack(reader.read_idx(key))
        records.append((header.label, payload))
    reader.close()
    return records


def test_a_training_jpeg_cut_off_after_its_header_is_named_or_left_out(cli, digits60, tmp_path):
    records = _records(digits60 + '_train')
    records[5] = (records[5][0], records[5][1][:20])           # the JPEG header only
    cut = _write_rec(str(tmp_path / 'cut'), records)
    flags = _train_flags(digits60, tmp_path / 'refused', '--num-epochs', '1')
    flags[flags.index('--rec-train') + 1] = cut
    code, _, err = cli('octconv.train.train_imagenet', *flags)
    _assert_clean_exit(code, err, BAD_INPUT, 'cut.rec, record 5 (key 5)', 'cut off')
    assert not checkpoint.list_checkpoints(str(tmp_path / 'refused'))
    # --skip-bad-records: trained without it, and each record left out is named
    save = tmp_path / 'skipped'
    flags[flags.index('--save-dir') + 1] = str(save)
    code, _, err = cli('octconv.train.train_imagenet', *flags, '--skip-bad-records')
    assert code == DONE, err[-3000:]
    assert 'forward_scoring' not in err         # no MKLDNN pooling warning at even sizes
    assert err.count('exported model-0001.params') == 1          # each log line once
    assert re.search(r'\[epoch 1\] .* val top-1 \d\.\d{4} top-5 \d\.\d{4} ', err), err
    assert 'left out of training: %s, record 5 (key 5)' % cut in err
    skipped = json.loads((save / 'run.json').read_text())['segments'][0]['skipped_records']
    assert [(r['file'], r['index'], r['key']) for r in skipped] == [(cut, 5, 5)]
    assert 'cut off' in skipped[0]['reason']
    log = [json.loads(line) for line in open(save / 'log.jsonl')]
    assert log[0]['images'] == len(records) - 1


def test_an_image_mxnet_cannot_decode_mid_epoch_is_named(cli, digits60, tmp_path):
    records = _records(digits60 + '_train')
    records[3] = (records[3][0], b'BM' + b'\x00' * 60)       # a BMP signature over nothing
    broken = _write_rec(str(tmp_path / 'broken'), records)
    flags = _train_flags(digits60, tmp_path / 'run', '--num-epochs', '1')
    flags[flags.index('--rec-train') + 1] = broken
    code, _, err = cli('octconv.train.train_imagenet', *flags)
    _assert_clean_exit(code, err, BAD_INPUT, 'broken.rec: MXNet could not decode an image of '
                                             'batch', 'were read', '--validate')
    # --validate decodes every image before training and names the record
    code, _, err = cli('octconv.train.train_imagenet', *flags, '--validate')
    _assert_clean_exit(code, err, BAD_INPUT, 'broken.rec, record 3 (key 3)',
                       'cannot be decoded')


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
    code, _, err = _cli_process(
        'octconv.train.launch', '-n', '2', '-s', '1', '--', sys.executable, '-c', worker,
        timeout=60, signal_after=(lambda: len(os.listdir(started)) >= 2, signal.SIGTERM),
        env={'OCTCONV_FAULT_MARKER': marker})    # inherited by every child
    assert code == 128 + signal.SIGTERM, err
    assert 'SIGTERM received; stopping every process' in err and 'Traceback' not in err
    assert not leftovers(marker.encode())     # scheduler, server and both workers are gone


def test_score_refuses_labels_outside_the_model_classes(cli, digits60, trained, tmp_path):
    net = trained
    payloads = _jpegs(digits60, 3)
    for label, shown in ((1000., '1000'), (-1., '-1'), (2.5, '2.5')):
        bad = _write_rec(str(tmp_path / 'labels'), [(0., payloads[0]), (label, payloads[1]),
                                                    (1., payloads[2])])
        out = tmp_path / 'result.jsonl'
        code, _, err = cli('octconv.train.score', '--checkpoint', net / 'model', '--epoch', 1,
                           '--rec-val', bad, '--batch-size', 2, '--json-out', out)
        _assert_clean_exit(code, err, BAD_INPUT, 'record 1',
                           'label %s is not a class index in [0, 10)' % shown)
        assert not out.exists()


def _mount_tmpfs(path):
    """A 1 MB tmpfs at ``path`` (resized by ``_resize_tmpfs``), or a skip saying why not."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('a small tmpfs (the full disk) needs root and mount')
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1024k', 'tmpfs', str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % done.stderr.decode().strip())


def _resize_tmpfs(path, megabytes):
    subprocess.run(['mount', '-o', 'remount,size=%dk' % (megabytes * 1024), str(path)],
                   check=True)


def _folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
               for f in files)


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_half_written_file(cli, digits60,
                                                                             tmp_path):
    disk = tmp_path / 'disk'
    _mount_tmpfs(disk)                                  # decided before any training
    try:
        flags = ['--api', 'gluon', '--model', 'mobilenet_v1_075', '--ratio', '0.375']
        probe = tmp_path / 'probe'
        assert train_imagenet.main(_train_flags(digits60, probe, '--num-epochs', '1', *flags)) == 0
        one = _folder_bytes(probe / 'checkpoints')     # a checkpoint: parameters and states
        _resize_tmpfs(disk, int(one * 1.25 / 2 ** 20) + 1)   # one checkpoint fits, not two
        # epoch 2's checkpoint does not fit: epoch 1 stays, no temporary is left
        save = disk / 'run'
        code, _, err = cli('octconv.train.train_imagenet', *_train_flags(digits60, save, *flags))
        _assert_clean_exit(code, err, BAD_INPUT, 'epoch-0002', 'MB free')
        assert sorted(os.listdir(save / 'checkpoints')) == ['epoch-0001']
        before = _checkpoint_files(save)
        code, _, err = cli('octconv.train.train_imagenet',
                           *_train_flags(digits60, save, '--resume', *flags))
        _assert_clean_exit(code, err, BAD_INPUT, 'epoch-0002', 'MB free')
        assert _checkpoint_files(save) == before
        # the final export does not fit beside the checkpoint: no file under a final name
        shutil.rmtree(save)
        last = disk / 'last'
        code, _, err = cli('octconv.train.train_imagenet',
                           *_train_flags(digits60, last, '--num-epochs', '1', *flags))
        _assert_clean_exit(code, err, BAD_INPUT, str(last), 'MB free')
        assert sorted(os.listdir(last)) == ['.lock', 'best.json', 'checkpoints', 'log.jsonl',
                                            'run.json', 'train.log']
        assert sorted(os.listdir(last / 'checkpoints')) == ['epoch-0001']
    finally:
        subprocess.run(['umount', str(disk)], check=False)


def test_score_batch_size_zero_is_refused_at_once(cli, digits60):
    code, _, err = cli('octconv.train.score', '--checkpoint', 'x', '--epoch', 1, '--rec-val',
                       digits60 + '_val.rec', '--batch-size', 0, timeout=60)
    _assert_clean_exit(code, err, BAD_INPUT, '--batch-size must be in [1, inf], got 0')


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
    assert train_imagenet.main(['--save-dir', str(save), '--quiet'] + flags) == BAD_INPUT
    err = capsys.readouterr().err
    assert len(_errors(err)) == 1 and words in err and 'Traceback' not in err, err
    assert not save.exists()


def test_bad_paths_are_named(digits60, tmp_path, capsys):
    (tmp_path / 'file').write_text('not a folder')
    fifo = tmp_path / 'fifo.rec'
    os.mkfifo(fifo)
    for flags, words in ((['--save-dir', str(tmp_path / 'file')], 'exists and is not a folder'),
                         (['--rec-train', str(tmp_path)], 'not a regular file'),
                         (['--rec-train', str(fifo)], 'not a regular file')):
        assert train_imagenet.main(flags + ['--quiet']) == BAD_INPUT
        err = capsys.readouterr().err
        assert len(_errors(err)) == 1 and words in err, err


def test_an_index_whose_keys_share_a_record_is_refused(digits60, tmp_path, capsys):
    rec = tmp_path / 'same.rec'
    shutil.copy(digits60 + '_train.rec', rec)
    with open(digits60 + '_train.idx') as source:
        keys = [line.split('\t')[0] for line in source if line.strip()]
    (tmp_path / 'same.idx').write_text(''.join('%s\t0\n' % k for k in keys))
    assert train_imagenet.main(['--rec-train', str(rec), '--input-size', '32', '--quiet',
                                '--save-dir', str(tmp_path / 'run')]) == BAD_INPUT
    assert 'both point at byte 0' in capsys.readouterr().err


def test_an_empty_image_file_is_refused_by_name(tmp_path, capsys):
    demo_data.write_image_folder(str(tmp_path / 'data' / 'train'), per_class=2)
    demo_data.write_image_folder(str(tmp_path / 'data' / 'val'), per_class=1)
    empty = tmp_path / 'data' / 'train' / '3' / 'empty.jpg'
    empty.write_bytes(b'')
    assert train_imagenet.main(['--data-dir', str(tmp_path / 'data'), '--quiet', '--save-dir',
                                str(tmp_path / 'run'), '--input-size', '32']) == BAD_INPUT
    err = capsys.readouterr().err
    assert 'empty.jpg: the image file is empty' in err and 'Traceback' not in err


def test_resume_from_a_damaged_or_foreign_checkpoint_is_refused(digits60, trained, tmp_path,
                                                                 capsys):
    save = trained
    folder = checkpoint.latest(str(save))
    record = (save / 'run.json').read_text()
    # a typed value that would change the run: refused, each flag named with both values
    assert train_imagenet.main(_train_flags(digits60, save, '--resume', '--ratio', '0.5',
                                            '--lr', '0.5', '--num-epochs', '3')) == BAD_INPUT
    err = capsys.readouterr().err
    assert len(_errors(err)) == 1, err
    for named in ("--ratio 0.5 (the checkpoint's run has 0.25)",
                  "--lr 0.5 (the checkpoint's run has 0.05)",
                  "--num-epochs 3 (the checkpoint's run has 1)"):
        assert named in err, err
    assert (save / 'run.json').read_text() == record
    for name in ('model.params', 'trainer.states'):
        copy = tmp_path / ('copy-' + name)
        shutil.copytree(folder, copy)
        with open(copy / name, 'r+b') as handle:
            handle.truncate(os.path.getsize(copy / name) // 2)
        assert train_imagenet.main(_train_flags(digits60, save, '--num-epochs', '1',
                                                '--resume-from', str(copy))) == BAD_INPUT
        err = capsys.readouterr().err
        assert name in err and 'Traceback' not in err and len(_errors(err)) == 1, err
        shutil.rmtree(copy)


def test_resume_without_a_checkpoint_or_with_an_unreadable_record_is_named(
        digits60, trained, tmp_path, capsys):
    empty = tmp_path / 'empty'
    assert train_imagenet.main(_train_flags(digits60, empty, '--resume')) == BAD_INPUT
    err = capsys.readouterr().err
    assert 'no complete checkpoint in %s' % empty in err and len(_errors(err)) == 1, err
    copy = tmp_path / 'copy'
    shutil.copytree(checkpoint.latest(str(trained)), copy)
    (copy / 'meta.json').write_text('{"epoch": 1, "config": ')          # cut off
    assert train_imagenet.main(_train_flags(digits60, tmp_path / 'run', '--resume-from',
                                            str(copy))) == BAD_INPUT
    err = capsys.readouterr().err
    assert '%s: cannot read meta.json' % copy in err and len(_errors(err)) == 1, err


def test_resume_from_a_save_folder_takes_its_newest_checkpoint(digits60, tmp_path, caplog):
    first = tmp_path / 'first'
    assert train_imagenet.main(_train_flags(digits60, first, '--num-epochs', '2',
                                            '--keep-last', '2')) == DONE
    shutil.rmtree(checkpoint.latest(str(first)))          # epoch 2 gone: epoch 1 is newest
    second = tmp_path / 'second'
    assert train_imagenet.main(_train_flags(digits60, second, '--resume-from',
                                            str(first))) == DONE
    record = json.loads((second / 'run.json').read_text())
    assert record['segments'][-1]['first_epoch'] == 2
    assert record['segments'][-1]['options']['resume_from'].endswith('epoch-0001')
    # the log carries the history the checkpoint holds, then the new epoch
    assert [json.loads(line)['epoch'] for line in open(second / 'log.jsonl')] == [1, 2]


def test_a_training_set_of_bad_records_only_is_refused(digits60, tmp_path, capsys):
    rec = _write_rec(str(tmp_path / 'bad'), [(0, b'no image here'), (1, b'nor here')])
    for extra, words in (([], 'record 0'), (['--skip-bad-records'], 'no usable record')):
        assert train_imagenet.main(['--rec-train', rec, '--rec-val', digits60 + '_val.rec',
                                    '--input-size', '32', '--quiet', '--save-dir',
                                    str(tmp_path / 'run')] + extra) == BAD_INPUT
        err = capsys.readouterr().err
        assert words in err and len(_errors(err)) == 1 and 'Traceback' not in err, err


def test_skip_bad_records_with_image_folders_is_refused(tmp_path, capsys):
    demo_data.write_image_folder(str(tmp_path / 'data' / 'train'), per_class=1)
    demo_data.write_image_folder(str(tmp_path / 'data' / 'val'), per_class=1)
    assert train_imagenet.main(['--data-dir', str(tmp_path / 'data'), '--skip-bad-records',
                                '--quiet', '--save-dir', str(tmp_path / 'run')]) == BAD_INPUT
    err = capsys.readouterr().err
    assert '--skip-bad-records' in err and '--data-dir' in err and len(_errors(err)) == 1, err
    assert not (tmp_path / 'run').exists()


def test_a_folder_locked_by_a_process_that_wrote_no_record_says_holder_unknown(
        digits60, tmp_path, capsys):
    """A holder that took the lock but has not written who it is yet (or a foreign tool)."""
    save = tmp_path / 'run'
    save.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', (
        'import fcntl, os, sys, time\n'
        'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n'
        'fcntl.flock(fd, fcntl.LOCK_EX)\n'
        'print("locked", flush=True)\n'
        'time.sleep(60)'), str(save / checkpoint.LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert train_imagenet.main(_train_flags(digits60, save)) == BAD_INPUT
        err = capsys.readouterr().err
        assert '%s is in use by another training run (holder unknown)' % save in err, err
    finally:
        holder.kill()
        holder.wait()


# -- interrupts, temporary files, log noise ---------------------------------------------

# A SIGTERM that arrives while a finalizer runs: a handler that raised there would lose it
# ("Exception ignored in ..."), and training would go on. The trainer runs in a child whose
# epoch 2 starts by dropping an object whose __del__ sends SIGTERM to its own process.
_SIGTERM_IN_A_FINALIZER = """
import os, signal, sys, time
from octconv.train import fit, train_imagenet

class SendsSigtermWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)                     # the handler runs here, inside __del__

train_epoch = fit._train_epoch
def epoch_with_a_signal(*args):
    if args[8] == 1:                        # epoch 2 (0-based 1)
        SendsSigtermWhenCollected()         # collected at once
    return train_epoch(*args)
fit._train_epoch = epoch_with_a_signal
sys.exit(train_imagenet.main(sys.argv[1:]))
"""


def _params_of(folder):
    return {k: v.asnumpy() for k, v in mx.nd.load(os.path.join(folder, 'model.params')).items()}


def test_sigterm_in_a_finalizer_stops_training_at_the_next_batch(digits60, tmp_path):
    save = tmp_path / 'term'
    done = subprocess.run([sys.executable, '-c', _SIGTERM_IN_A_FINALIZER]
                          + _train_flags(digits60, save, '--num-epochs', '4'),
                          capture_output=True, text=True, timeout=300)
    _assert_clean_exit(done.returncode, done.stderr, BY_SIGTERM, 'stopped by SIGTERM',
                       'the last complete checkpoint is', 'epoch-0001')
    assert sorted(os.listdir(save / 'checkpoints')) == ['epoch-0001']
    log = [json.loads(line) for line in open(save / 'log.jsonl')]
    assert [entry['epoch'] for entry in log] == [1]           # epoch 2 trained no batch
    params = _params_of(save / 'checkpoints' / 'epoch-0001')
    assert len(params) > 50 and all(np.isfinite(v).all() for v in params.values())


def test_ctrl_c_during_a_checkpoint_write_completes_it_then_stops(digits60, tmp_path, monkeypatch,
                                                                  capsys):
    save_states = mx.gluon.Trainer.save_states
    calls = []

    def interrupted_second_time(trainer, path):
        calls.append(path)
        if len(calls) == 2:         # a real SIGINT while epoch 2's checkpoint is written
            os.kill(os.getpid(), signal.SIGINT)
        save_states(trainer, path)
    monkeypatch.setattr(mx.gluon.Trainer, 'save_states', interrupted_second_time)
    save = tmp_path / 'int'
    assert train_imagenet.main(_train_flags(digits60, save, '--num-epochs', '3')) == BY_SIGINT
    err = capsys.readouterr().err
    assert 'stopped by SIGINT; the last complete checkpoint is' in err and 'epoch-0002' in err
    assert sorted(os.listdir(save / 'checkpoints')) == ['epoch-0001', 'epoch-0002']
    assert [json.loads(line)['epoch'] for line in open(save / 'log.jsonl')] == [1, 2]


def test_a_second_signal_ends_the_process_at_once():
    program = ('import os, signal, time\n'
               'from octconv.train.stopping import StopSignals\n'
               'with StopSignals() as stops:\n'
               '    os.kill(os.getpid(), signal.SIGTERM)\n'
               '    assert stops.received == signal.SIGTERM\n'
               '    os.kill(os.getpid(), signal.SIGINT)\n'
               '    time.sleep(30)\n')
    done = subprocess.run([sys.executable, '-c', program], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGINT, done.stderr     # killed by the second one


def test_im2rec_leaves_nothing_when_it_refuses_a_folder(cli, tmp_path):
    root = tmp_path / 'images'
    demo_data.write_image_folder(str(root), per_class=2)
    (root / '4' / 'broken.jpg').write_bytes(b'\xff\xd8\xff not really a jpeg')
    code, _, err = cli('octconv.utils.im2rec', root, tmp_path / 'out' / 'set', '--threads', 1)
    _assert_clean_exit(code, err, BAD_INPUT, 'broken.jpg: the image cannot be decoded')
    assert os.listdir(tmp_path / 'out') == []
