"""The studies time the networks octconv builds: the oneDNN floor study's layers, read from
the exported graph, carry the FLOP counter's multiply-adds, path by path; the OpenVINO INT8
graph study's forms compute the network's outputs; a study's run is kept by date and CPU."""
import datetime
import importlib.util
import json
import os
import pathlib
import subprocess

import mxnet as mx
import numpy as np
import pytest
from conftest import ops_of

from octconv.gluon import get_model
from octconv.train.studies import keep_run, run_study, study_parser
from octconv.utils.flops import count_block
from octconv.utils.onnx_export import int8_graph

STUDIES = pathlib.Path(__file__).resolve().parent.parent / 'studies'


def load_study(name):
    spec = importlib.util.spec_from_file_location(name + '_run', STUDIES / name / 'run.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def study():
    return load_study('onednn_floor')


@pytest.mark.parametrize('ratio', [0., 0.25])
def test_the_floor_study_reads_every_convolution_of_the_graph(study, ratio):
    layers = study.convolution_layers(ratio, size=64)
    counted = count_block(get_model('resnet50_v1b', ratio=ratio), (1, 3, 64, 64))
    assert study.convolution_macs(layers) == sum(
        row.macs for row in counted.layers if 'Convolution' in row.ops)
    fields = {layer[0]: layer[1:] for layer in layers}
    # the stem reads the image; the first octave layer splits a high map (alpha_in 0)
    assert fields['R50_conv1_fwd'][:8] == (7, 2, 3, 3, 0, 64, 0, 64)
    first = fields['R50_L1_B0_conv1']
    assert first[3:7] == ((64, 0, 48, 16) if ratio else (64, 0, 64, 0))


def test_every_form_of_the_openvino_study_computes_the_networks_outputs():
    graphs = load_study('openvino_int8_graphs')
    shape = (2, 3, 64, 64)
    net = get_model('resnet50_v1b', ratio=0.25, classes=10)
    net.initialize(mx.init.Xavier())
    symbol, params = net.export_graph(data_shape=shape)
    x = mx.nd.random.uniform(-1, 1, shape)
    expected = net(x).asnumpy()
    ops = {}
    for form, passes in graphs.FORMS.items():
        form_symbol, form_params = int8_graph(symbol, params, shape, passes=passes)
        block = mx.gluon.SymbolBlock(form_symbol, mx.sym.var('data'))
        for name, param in block.collect_params().items():
            param._load_init(form_params[name], mx.cpu())
        got = block(x).asnumpy()
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), form
        ops[form] = ops_of(form_symbol)
    # the forms differ as their passes say: no average pooling once pooling is a convolution,
    # concatenated inputs once the sums are merged
    assert 'Pooling' in ops['none'] and 'Concat' not in ops['none']
    assert ops['export_onnx'].count('Pooling') < ops['pooling kept'].count('Pooling')
    assert 'Concat' in ops['pooling kept'] and 'Concat' not in ops['not merged']


def test_a_study_keeps_its_run_by_date_and_cpu_and_fails_with_exit_2(tmp_path, capsys):
    rows = [{'ratio': 0.0, 'ms': 1.5}, {'ratio': 0.25, 'ms': 1.2}]
    cpu = {'vendor': 'AuthenticAMD', 'family': '25', 'model': '17'}
    kept = keep_run(rows, None, str(tmp_path / 'study'), cpu)
    assert kept == str(tmp_path / 'study' / ('%s_amd-f25m17.jsonl' % datetime.date.today()))
    with open(kept) as handle:
        assert [json.loads(line) for line in handle] == rows
    assert os.listdir(tmp_path / 'study') == [os.path.basename(kept)]   # no temporary left
    chosen = str(tmp_path / 'mine.jsonl')
    assert keep_run(rows[:1], chosen, str(tmp_path / 'study'), cpu) == chosen

    def failing(args):
        raise subprocess.CalledProcessError(1, ['g++', 'floor.cpp'])
    args = study_parser('a study', str(tmp_path / 'study')).parse_args(['--batch-sizes', '1'])
    assert (args.batch_sizes, args.threads, args.out) == ([1], 2, None)
    assert run_study(failing, args) == 2
    assert "error: Command '['g++', 'floor.cpp']' returned non-zero" in capsys.readouterr().err
