"""octconv-bench runs and reports every figure (no timing is asserted: it is a benchmark)."""
import json
import os
import tempfile

import mxnet as mx

from octconv.train import bench
from octconv.train import machine as machine_module
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
        assert min(r['b%d_time_ratio' % batch] for r in vanilla) == 1.0
        assert min(r['b%d_min_time_ratio' % batch] for r in vanilla) == 1.0
        for row in rows:
            assert row['b%d_min_ms' % batch] <= row['b%d_ms' % batch]
    assert {r['variant'] for r in rows} == {
        'ratio %s%s' % (ratio, suffix) for ratio in ('0', '0.5')
        for suffix in ('', ' +mkldnn-fusion', ' +bn-fold+mkldnn-fusion',
                       ' for_inference unmerged', ' for_inference')}
    octave = [r for r in rows if r['ratio'] == 0.5 and 'fusion' not in r['variant']][0]
    shape = (1, 3, 32, 32)
    want = (flops.count_block(get_model('mobilenet_v1_075', ratio=0.5), shape).flops /
            flops.count_block(get_model('mobilenet_v1_075', ratio=0.), shape).flops)
    assert abs(octave['flop_ratio'] - want) < 1e-12
    assert octave['train_ms'] > 0 and octave['peak_extra_mb'] >= 0 and octave['b2_images_per_s'] > 0


def test_every_figure_names_its_machine(capsys):
    assert bench.main(GLUON + ['--model', 'mobilenet_v1_075', '--ratios', '0.5',
                               '--batch-sizes', '1', '--train-batch', '0', '--input-size', '32',
                               '--repeats', '1', '--warmup', '1', '--variants', 'as-built',
                               '--threads', '1']) == 0
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
    run = bench._OneAtATime(Session)
    for path in ['a', 'a', 'b', 'a', 'a']:
        assert run(path, 1) == (path, 1)
    assert opened == [('a', 0), ('b', 0), ('a', 0)]     # opened per turn, never two alive


def test_bench_times_int8_models_against_their_targets_with_profiles(capsys, monkeypatch):
    import pytest
    # --profile turns MXNet's bulk execution off for its process; restored after the test
    monkeypatch.delenv('MXNET_EXEC_BULK_EXEC_INFERENCE', raising=False)
    for runtime, convolution in (('mxnet', '_sg_mkldnn_conv'), ('onnxruntime', 'QLinearConv')):
        assert bench.main(GLUON + ['--model', 'resnet50_v1b', '--ratios', '0.25', '--batch-sizes',
                                   '1', '--input-size', '32', '--repeats', '1', '--warmup', '1',
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
