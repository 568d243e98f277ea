"""octconv-bench runs and reports every figure (no timing is asserted: it is a benchmark)."""
import json
import os
import subprocess
import sys
import tempfile

import mxnet as mx

from octconv.train import bench
from octconv.train import machine as machine_module
from octconv.train import timing
from octconv.utils import flops
from octconv.gluon import get_model

GLUON = ['--api', 'gluon']      # octconv-bench defaults to the Symbol API, as every tool


def test_bench_reports_each_model_against_the_best_vanilla(capsys):
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '2',
                               '--train-batch', '2', '--input-size', '32', '--repeats', '2',
                               '--warmup', '1']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert {r['ratio'] for r in rows} == {0.0, 0.5}
    vanilla = [r for r in rows if r['ratio'] == 0]
    for batch in (1, 2):        # ratios are against the fastest vanilla variant
        best = min(r['b%d_ms' % batch] for r in vanilla)
        fastest = min(r['b%d_min_ms' % batch] for r in vanilla)
        for row in rows:
            assert row['b%d_min_ms' % batch] <= row['b%d_ms' % batch]
            assert abs(row['b%d_time_ratio' % batch] - row['b%d_ms' % batch] / best) < 1e-9
            assert abs(row['b%d_min_time_ratio' % batch] -
                       row['b%d_min_ms' % batch] / fastest) < 1e-9
            assert abs(row['b%d_images_per_s' % batch] - batch * 1000 /
                       row['b%d_ms' % batch]) < 1e-6
    assert {r['variant'] for r in rows} == {
        'ratio %s%s' % (ratio, suffix) for ratio in ('0', '0.5')
        for suffix in ('', ' +mkldnn-fusion', ' +bn-fold+mkldnn-fusion',
                       ' for_inference unmerged', ' for_inference')}
    octave = [r for r in rows if r['ratio'] == 0.5 and 'fusion' not in r['variant']][0]
    shape = (1, 3, 32, 32)
    want = (flops.count_block(get_model('mobilenet_v1_075', ratio=0.5), shape).flops /
            flops.count_block(get_model('mobilenet_v1_075', ratio=0.), shape).flops)
    assert abs(octave['flop_ratio'] - want) < 1e-12
    trained = [r for r in rows if 'train_ms' in r]
    assert {r['variant'] for r in trained} == {'ratio 0', 'ratio 0.5'}     # as built only
    assert abs(octave['train_time_ratio'] - octave['train_ms'] / min(
        r['train_ms'] for r in trained if r['ratio'] == 0)) < 1e-9


def _sleeper(seconds):
    """An 'inference' that takes ``seconds`` per image."""
    import time

    def infer(batch):
        time.sleep(seconds * batch)
    return infer


def _writer(megabytes):
    """An 'inference' that writes ``megabytes`` of new memory, mapped from the system and
    unmapped after (not through malloc, whose freed blocks may stay resident in a process
    that has run other tests: the new memory of each run is then nothing)."""
    import mmap
    import numpy as np

    def infer(batch):
        block = mmap.mmap(-1, megabytes * 2 ** 20)
        written = np.frombuffer(block, dtype=np.uint8)
        written.fill(1)                                         # written: resident
        del written
        block.close()
    return infer


def test_the_timing_method_measures_what_runs():
    """Synthetic models of known durations and memory, through the bench's own timing and
    reporting: medians, ratios to the fastest vanilla, the peak memory of each one's runs."""
    import argparse
    cands = [timing.Candidate('slow vanilla', 0., _sleeper(0.048)),
             timing.Candidate('fast vanilla', 0., _sleeper(0.032)),
             timing.Candidate('octave', 0.5, _sleeper(0.024))]
    args = argparse.Namespace(warmup=1, repeats=5, inner=2, batch_sizes=[1, 2], train_batch=0,
                              model='m', api='gluon', runtime='mxnet', dtype='float32',
                              input_size=224, frames=None)
    timing.time_rounds(cands, args)
    assert all(len(c.times[b]) == 10 for c in cands for b in (1, 2))
    rows = {r['variant']: r for r in bench._rows(cands, args, {0.: 4., 0.5: 2.}, {})}
    for batch in (1, 2):
        assert 31 < rows['fast vanilla']['b%d_ms' % batch] / batch < 36     # sleeps of 32 ms
        assert abs(rows['octave']['b%d_time_ratio' % batch] - 0.75) < 0.1    # 24 against 32
        assert abs(rows['slow vanilla']['b%d_time_ratio' % batch] - 1.5) < 0.25
    assert rows['octave']['flop_ratio'] == 0.5
    cands = [timing.Candidate('vanilla', 0., _sleeper(0.001)),
             timing.Candidate('octave', 0.5, _writer(96))]
    timing.time_rounds(cands, args)
    rows = {r['variant']: r for r in bench._rows(cands, args, {0.: 4., 0.5: 2.}, {})}
    assert rows['octave']['peak_extra_mb'] > 80 > rows['vanilla']['peak_extra_mb']


def test_every_figure_names_its_machine_and_the_run_leaves_the_environment(capsys):
    names = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MXNET_EXEC_BULK_EXEC_INFERENCE')
    before = {name: os.environ.get(name) for name in names}
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '--train-batch', '0', '--input-size', '32',
                               '--repeats', '1', '--warmup', '1', '--variants', 'as-built',
                               '--threads', '1', '--profile']) == 0
    assert {name: os.environ.get(name) for name in names} == before     # set for the run only
    out = capsys.readouterr().out.splitlines()
    rows = [json.loads(l) for l in out if l.startswith('{')]
    with open('/proc/cpuinfo') as handle:
        cpuinfo = handle.read()
    model_name = next(l.split(':', 1)[1].strip() for l in cpuinfo.splitlines()
                      if l.startswith('model name'))
    flags = next(l.split(':', 1)[1].split() for l in cpuinfo.splitlines()
                 if l.startswith('flags'))
    for row in rows:
        machine = row['machine']
        assert machine['model_name'] == model_name and machine['threads'] == 1
        assert machine['isa'] == [f for f in machine_module.ISA_FLAGS if f in flags]
        assert machine['onednn'].startswith('v') and machine['onednn_isa']
        assert machine['mxnet'] == mx.__version__
    header = next(l for l in out if l.startswith('machine: '))
    assert model_name in header and machine['onednn'] in header and '1 threads' in header


def test_the_onednn_probe_runs_once_per_process_unless_it_read_nothing(monkeypatch):
    monkeypatch.setattr(machine_module, '_ONEDNN_READ', dict(machine_module._ONEDNN_READ))
    first = machine_module.onednn_description()
    assert first['onednn'].startswith('v')

    def no_child(*args, **kwargs):
        raise AssertionError('the probe ran a second time')
    monkeypatch.setattr(machine_module.subprocess, 'run', no_child)
    assert machine_module.onednn_description() == first
    monkeypatch.setattr(machine_module.subprocess, 'run',
                        lambda *a, **k: (_ for _ in ()).throw(OSError('no python')))
    assert machine_module.onednn_description(python='/nonexistent/python') == {}
    monkeypatch.setattr(machine_module, '_read_onednn', lambda python, timeout: {'onednn': 'v9'})
    assert machine_module.onednn_description(python='/nonexistent/python') == {'onednn': 'v9'}


def test_the_onnx_timing_child_imports_no_mxnet():
    program = ('import sys, octconv.train.timing\n'
               'print(sorted(m for m in sys.modules if m.split(".")[0] == "mxnet"))')
    done = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == '[]'


def test_bench_runs_symbol_networks_in_both_graphs(capsys):
    assert bench.main(['--api', 'symbol', '--network', 'resnetv2', '--depth', '26', '--ratios',
                       '0.5', '--batch-sizes', '1', '--train-batch', '0', '--input-size', '32',
                       '--repeats', '1', '--warmup', '1', '--variants', 'as-built',
                       '--graphs', 'optimized', 'straightforward']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert {r['ratio'] for r in rows} == {0.0, 0.5} and all(r['api'] == 'symbol' for r in rows)
    assert 'ratio 0.5 straightforward' in {r['variant'] for r in rows}
    assert all('train_ms' not in r for r in rows)              # --train-batch 0: none


def test_bench_times_chosen_variants_and_onnx_exports_in_other_runtimes(capsys, tmp_path,
                                                                      monkeypatch):
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '--train-batch', '2', '--input-size', '32',
                               '--repeats', '1',
                               '--warmup', '1', '--variants', 'for_inference']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert [r['variant'] for r in rows] == ['ratio 0 for_inference', 'ratio 0.5 for_inference']
    assert rows[1]['inference_graph']['b1'] in ('unmerged', 'upsampling-first', 'merged')
    assert all('train_ms' not in r for r in rows)        # the training step goes with as-built
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '--input-size', '32', '--repeats', '1',
                               '--warmup', '1', '--runtime', 'onnxruntime']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert {r['variant'] for r in rows} == {'ratio %s%s' % (ratio, suffix)
                                           for ratio in ('0', '0.5')
                                           for suffix in (' mxnet-export', ' export_onnx')}
    assert all(r['runtime'] == 'onnxruntime' and r['b1_ms'] > 0 for r in rows)
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))    # where the files go
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '2',
                               '--input-size', '32', '--repeats', '1', '--warmup', '1',
                               '--runtime', 'openvino']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert [r['variant'] for r in rows] == ['ratio 0 openvino', 'ratio 0.5 openvino']
    assert all(r['b1_ms'] > 0 and r['b2_ms'] > 0 for r in rows)
    assert os.listdir(tmp_path) == []                        # the exported files are deleted


def test_onnx_runtimes_have_one_model_open_at_a_time():
    alive, opened = [], []

    class Session:
        def __init__(self, path):
            opened.append((path, len(alive)))     # which file, and how many others alive
            alive.append(path)
            self.path = path

        def __call__(self, x):
            return self.path, x

        def __del__(self):
            alive.remove(self.path)
    run = timing.OneAtATime(Session)
    for path in ['a', 'a', 'b', 'a', 'a']:
        assert run(path, 1) == (path, 1)
    assert opened == [('a', 0), ('b', 0), ('a', 0)]     # opened per turn, never two alive


def test_bench_times_int8_models_against_their_targets_with_profiles(capsys, monkeypatch):
    import pytest
    # --profile turns MXNet's bulk execution off for its process; restored after the test
    monkeypatch.delenv('MXNET_EXEC_BULK_EXEC_INFERENCE', raising=False)
    for runtime, convolution in (('mxnet', '_sg_mkldnn_conv'), ('onnxruntime', 'QLinearConv')):
        assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.25',
                                   '--batch-sizes', '1', '--input-size', '32', '--repeats', '1',
                                   '--warmup', '1',
                                   '--dtype', 'int8', '--runtime', runtime, '--profile',
                                   '--variants', 'unmerged']) == 0   # one MXNet graph
        out = capsys.readouterr().out
        rows = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
        assert [(r['dtype'], r['ratio']) for r in rows] == [('int8', 0.), ('int8', 0.25)]
        assert 'target_time_ratio' not in rows[0]
        assert rows[1]['target_time_ratio'] == bench.INT8_TARGETS[0.25] == 0.85
        assert 'target ratio 0.25 ' in out and 'of vanilla INT8; b1 ' in out
        for row in rows:             # every model's time by operator, its convolutions INT8
            assert row['profile_b1_ms'][convolution] > 0
    with pytest.raises(SystemExit) as stopped:
        bench.main(GLUON + ['--dtype', 'int8', '--variants', 'as-built'])
    assert stopped.value.code == 2 and '--variants as-built' in capsys.readouterr().err


def test_bench_refuses_a_model_it_cannot_build_before_timing(capsys):
    import pytest
    for flags, named in ((['--model', 'resnet18_v1b'], "unknown model 'resnet18_v1b'"),
                         (['--api', 'gluoncv', '--model', 'inceptionv3', '--input-size', '32'],
                          'kernel size')):
        with pytest.raises(SystemExit) as stopped:
            bench.main(GLUON + flags + ['--ratios', '0.25', '--batch-sizes', '1'])
        captured = capsys.readouterr()
        assert stopped.value.code == 2 and named in captured.err and captured.out == ''
