"""The FLOP counter against hand counts and the paper; the summary and plot tools."""
import json
import shutil

import mxnet as mx
import pytest

import octconv.symbol as S
from octconv.gluon import get_model
from octconv.train import flops_report, plot_ablation, summary
from octconv.gluon.released import MODELS
from octconv.symbol.released import ABLATION, RESNET50_GFLOPS
from octconv.utils import flops, paper
from octconv.utils.octave import octave_conv, plan_octave_conv, split_channels


def test_a_small_graph_counted_by_hand():
    data = mx.sym.var('data')
    x = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name='c')
    x = mx.sym.BatchNorm(x, fix_gamma=False, name='bn')
    x = mx.sym.Activation(x, act_type='relu', name='r')
    x = mx.sym.Activation(x, act_type='sigmoid', name='s')         # not counted
    x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='max', name='p')
    x = mx.sym.FullyConnected(x, num_hidden=5, name='fc')
    got = flops.count_symbol(x, (1, 3, 8, 8))
    conv = 8 * 8 * 4 * 3 * 3 * 3
    want = conv + 4 * 64 + 4 * 64 + (4 * 4 * 4) * 4 + 5 * 64 + 5
    assert got.flops == want
    assert got.macs == conv + 5 * 64
    assert got.params == (4 * 27 + 4) + (4 + 4) + (5 * 64 + 5)     # BN gamma, beta; no stats
    assert flops.count_symbol(x, (2, 3, 8, 8)).flops == 2 * want


@pytest.mark.parametrize('ratio', [0.125, 0.25, 0.5, 0.75])
def test_one_octave_layer_costs_table_1_of_vanilla(ratio):
    channels = split_channels(64, ratio)
    spec = plan_octave_conv('oct', channels, channels, 3, pad=1)
    weights = {p: (mx.sym.var(p + '_w'), None) for p in spec.paths}
    high, low = octave_conv(mx.sym, spec, mx.sym.var('data'), mx.sym.var('low'), weights)
    octave = flops.count_symbol(mx.sym.Group([high, low]), (1, channels[0], 56, 56),
                                other_inputs={'low': (1, channels[1], 28, 28)})
    vanilla = flops.count_symbol(mx.sym.Convolution(mx.sym.var('data'), num_filter=64,
                                                    kernel=(3, 3), pad=(1, 1), no_bias=True),
                                 (1, 64, 56, 56))
    assert octave.macs == pytest.approx(vanilla.macs * paper.table1_flop_factor(ratio),
                                        rel=1e-12)
    assert octave.params == vanilla.params
    assert [layer.name for layer in octave.layers] == ['oct']     # four paths, one layer


@pytest.mark.parametrize('row', MODELS, ids=[r.model for r in MODELS])
def test_table_b_params_and_flops(row):
    net = get_model(row.model, ratio=row.ratio, use_se=row.use_se)
    got = flops.count_block(net, (1, 3, 224, 224))
    assert abs(got.params / 1e6 - row.params_m) <= 0.05
    assert abs(got.flops / 1e9 / row.gflops - 1) <= 0.01


@pytest.mark.parametrize('ratio', sorted(RESNET50_GFLOPS))
def test_resnet50_ablation_gflops(ratio):
    got = flops.count_symbol(S.get_linear('resnetv2', 50, ratio=ratio), (1, 3, 224, 224))
    assert abs(got.flops / 1e9 / RESNET50_GFLOPS[ratio] - 1) <= 0.025


def test_per_layer_rows_sum_to_the_totals():
    got = flops.count_symbol(S.get_linear('seresnetv2', 50, ratio=0.25), (1, 3, 225, 199))
    assert sum(layer.flops for layer in got.layers) == got.flops
    assert sum(layer.macs for layer in got.layers) == got.macs
    names = [layer.name for layer in got.layers]
    assert len(names) == len(set(names)) and 'L3_B01_conv2_conv' in names


def test_gluon_export_counts_like_the_block(tmp_path):
    net = get_model('mobilenet_v2_100', ratio=0.375)
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 3, 224, 224)))
    net.export(str(tmp_path / 'm'))
    exported = mx.sym.load(str(tmp_path / 'm-symbol.json'))
    from_file = flops.count_symbol(exported, (1, 3, 224, 224))
    from_block = flops.count_block(net, (1, 3, 224, 224))
    assert (from_file.flops, from_file.macs) == (from_block.flops, from_block.macs)
    assert from_file.params == from_block.params    # mobilenet v2 freezes nothing


def test_layer_names_group_octave_paths():
    assert flops.layer_name('R50_L1_B0_conv2-h2l_down') == 'R50_L1_B0_conv2'
    assert flops.layer_name('L2_B01_conv2_conv-l2h') == 'L2_B01_conv2_conv'
    assert flops.layer_name('R50_L1_B0_bn1-h_fwd') == 'R50_L1_B0_bn1'
    assert flops.layer_name('R50_conv1_fwd') == 'R50_conv1'


def test_cli_json_and_errors(capsys):
    assert flops_report.main(['--api', 'gluon', '--model', 'mobilenet_v1_075', '--ratio', '0.375',
                       '--json']) == 0
    line = json.loads(capsys.readouterr().out)
    assert set(line) >= {'params', 'flops', 'macs'} and line['params'] == 2585560
    assert flops_report.main(['--network', 'resnetv2', '--depth', '51']) == 2
    assert 'no depth 51' in capsys.readouterr().err
    assert flops_report.main(['--network', 'resnetv2', '--depth', '26', '--per-layer']) == 0
    assert 'L2_B01_conv2_conv' in capsys.readouterr().out


def test_cli_paper_tables_as_json(capsys):
    assert flops_report.main(['--paper', '--json']) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(ABLATION) + len(MODELS)
    assert all(abs(r['flops_diff']) <= 0.01 for r in rows if r['table'] == 'B')


def test_summary_prints_and_says_when_dot_is_missing(capsys, monkeypatch, tmp_path):
    assert summary.main(['--network', 'resnetv2', '--depth', '26', '--ratio', '0.5']) == 0
    out = capsys.readouterr().out
    assert 'L2_B01_conv2_conv-h2l' in out and 'Total params' in out
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    assert summary.main(['--api', 'gluon', '--model', 'mobilenet_v1_075',
                         '--plot', str(tmp_path / 'g.png')]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'apt-get install graphviz' in err[0]


@pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz dot is not installed')
def test_summary_draws_the_graph(tmp_path):
    path = tmp_path / 'graph.png'
    assert summary.main(['--network', 'resnetv2', '--depth', '26', '--plot', str(path)]) == 0
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_ablation_plot_from_a_csv(tmp_path):
    table = tmp_path / 'results.csv'
    table.write_text('model,ratio,top1,top5,gflops\nResNet-50,-1,77.0,93.4,4.10\n'
                     'ResNet-50,0.25,78.0,93.8,3.12\nResNet-26,0.5,75.5,92.5,1.49\n')
    out = tmp_path / 'ablation.png'
    assert plot_ablation.main(['--csv', str(table), '-o', str(out)]) == 0
    import matplotlib.image       # here: Matplotlib reads its cache folder when imported
    image = matplotlib.image.imread(str(out))
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and image.shape[0] > 100


@pytest.mark.parametrize('content,message', [
    ('model,ratio,top1\nA,0.5,70\n', 'missing column'),
    ('model,ratio,top1,top5,gflops\nA,0.5,seventy,90,1.0\n', 'line 2: column top1'),
    ('model,ratio,top1,top5,gflops\n', 'no results'),
])
def test_ablation_plot_rejects_bad_csv(tmp_path, capsys, content, message):
    table = tmp_path / 'bad.csv'
    table.write_text(content)
    assert plot_ablation.main(['--csv', str(table), '-o', str(tmp_path / 'x.png')]) == 2
    assert message in capsys.readouterr().err
