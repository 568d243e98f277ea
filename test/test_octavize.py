"""octavize: any network's octave version, against octconv's hand-built networks (the
paper's placement), and beyond the paper's families: forward at any size, training,
FLOPs, export and re-import, ONNX in onnxruntime."""
import json
import pathlib

import mxnet as mx
import numpy as np
import onnxruntime as ort
import pytest
from gluoncv.model_zoo import get_model as gluoncv_model

import octconv.symbol as S
from octconv.gluon import get_model, octavize, paper_ratio
from octconv.train import bench, flops_report, score, summary, train_imagenet
from octconv.utils import demo_data
from octconv.utils.flops import count_block, count_symbol
from octconv.utils.onnx_export import export_onnx
from octconv.utils.octavize import Layer, rewrite

IMAGENET = (1, 3, 224, 224)


def conv_weight_shapes(symbol):
    """The sorted shapes of the convolution weights of ``symbol`` at 224 px, the
    classifier left out (octconv's hand-built models classify with a 1x1 convolution)."""
    shapes, _, _ = symbol.infer_shape(data=IMAGENET)
    return sorted(tuple(shape) for name, shape in zip(symbol.list_arguments(), shapes)
                  if name.endswith('weight') and len(shape) == 4 and 'classif' not in name)


def compute_flops(count):
    """FLOPs of convolutions, pooling and the classifier (the hand-built models mark their
    ReLUs as left out of the count, the paper's convention)."""
    return sum(row.flops for row in count.layers if row.ops != ('Activation',))


def traced(block):
    return block(mx.sym.var('data'))


# GluonCV's model, the policy, and octconv's hand-built model of the same network
PAPER_FAMILIES = [('resnet50_v1b', None, 'resnet50_v1b'),
                  ('resnext50_32x4d', None, 'resnext50_32x4d_v1b'),
                  ('mobilenet1.0', None, 'mobilenet_v1_100'),
                  ('mobilenet0.75', None, 'mobilenet_v1_075'),
                  ('densenet121', 'split-stem', 'densenet121')]


@pytest.mark.parametrize('source, policy, octconv_name', PAPER_FAMILIES)
def test_octavize_places_octconv_as_the_hand_built_networks(source, policy, octconv_name):
    ratio = paper_ratio(octconv_name)
    converted = octavize(gluoncv_model(source), ratio, policy=policy)
    hand_built = get_model(octconv_name, ratio=ratio)
    assert conv_weight_shapes(traced(converted)) == conv_weight_shapes(traced(hand_built))
    assert compute_flops(count_block(converted, IMAGENET)) == pytest.approx(
        compute_flops(count_block(hand_built, IMAGENET)), rel=0.005)


def test_symbol_octavize_of_the_vanilla_resnetv2_is_the_octave_one():
    vanilla = S.get_symbol('resnetv2', 50, ratio=0)
    converted = S.octavize(vanilla, 0.25)
    octave = S.get_symbol('resnetv2', 50, ratio=0.25)
    assert conv_weight_shapes(converted) == conv_weight_shapes(octave)
    assert count_symbol(converted, IMAGENET).flops == pytest.approx(
        count_symbol(octave, IMAGENET).flops, rel=0.005)
    assert converted.list_outputs() == ['softmax_output']
    assert graph_nodes(S.octavize(vanilla, 0)) == graph_nodes(vanilla)


def graph_nodes(symbol):
    """(operator, name, attributes, inputs) of each node of ``symbol``."""
    return [(node['op'], node['name'], node.get('attrs'), [e[:2] for e in node['inputs']])
            for node in json.loads(symbol.tojson())['nodes']]


def test_ratio_0_is_the_same_function_with_the_same_weights():
    net = gluoncv_model('resnet18_v1b', classes=10)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 64, 64))
    net(x)                                      # the parameters get their values
    same = octavize(net, 0)
    assert sorted(same.collect_params()) == sorted(p.name for p in
                                                  net.collect_params().values())
    np.testing.assert_array_equal(same(x).asnumpy(), net(x).asnumpy())


def test_new_parameters_are_named_after_the_original_and_keep_its_initializer():
    net = gluoncv_model('resnet50_v1b', classes=10, last_gamma=True)
    for param in net.collect_params('.*conv.*weight').values():
        param.init, param.lr_mult = mx.init.Constant(0.375), 0.5    # its own, not the default
    converted = octavize(net, 0.25)
    params = converted.collect_params()
    conv = 'resnetv1b_layers1_conv0_weight'
    assert {conv.replace('_weight', '_%s_weight' % path) for path in ('h2h', 'h2l')} <= \
        set(params)
    assert 'resnetv1b_layers1_batchnorm0_h_running_mean' in params
    zeros = [n for n, p in net.collect_params().items()
             if n.endswith('_gamma') and p.init == 'zeros']
    assert zeros, 'last_gamma gives the last BatchNorm of each block a zeros initializer'
    converted.initialize(mx.init.Xavier())          # the default the originals override
    converted(mx.nd.zeros((1, 3, 32, 32)))
    paths = [n for n in params if n.endswith(('h2h_weight', 'h2l_weight', 'l2h_weight',
                                               'l2l_weight'))]
    assert len(paths) > 40 and all(params[n].lr_mult == 0.5 for n in paths)
    assert all((params[n].data() == 0.375).asnumpy().all() for n in paths)
    split = [n.replace('_gamma', '_%s_gamma' % part) for n in zeros for part in 'hl']
    assert [n for n in split if n in params]
    assert all(params[n].data().abs().sum().asscalar() == 0 for n in split if n in params)


def test_copy_weights_gives_each_path_its_slice_of_the_original():
    net = gluoncv_model('resnet18_v1b', classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    converted = octavize(net, 0.25, copy_weights=True)
    original = {p.name: p.data().asnumpy() for p in net.collect_params().values()}
    params = converted.collect_params()
    weight = original['resnetv1b_layers2_conv0_weight']            # 128 from 64 + 0 ... pairs
    high_out = params['resnetv1b_layers2_conv0_h2h_weight'].shape[0]
    high_in = params['resnetv1b_layers2_conv0_h2h_weight'].shape[1]
    np.testing.assert_array_equal(params['resnetv1b_layers2_conv0_h2h_weight'].data().asnumpy(),
                                  weight[:high_out, :high_in])
    np.testing.assert_array_equal(params['resnetv1b_layers2_conv0_l2h_weight'].data().asnumpy(),
                                  weight[:high_out, high_in:])
    np.testing.assert_array_equal(params['resnetv1b_layers2_conv0_h2l_weight'].data().asnumpy(),
                                  weight[high_out:, :high_in])
    gamma = original['resnetv1b_layers2_batchnorm0_gamma']
    np.testing.assert_array_equal(
        params['resnetv1b_layers2_batchnorm0_l_gamma'].data().asnumpy(), gamma[high_out:])


def _digits(size, count=8, seed=0):
    """``count`` demo digits as (count, 3, size, size) float32 in [0, 1] and labels."""
    images, labels = demo_data.load_digits()
    pick = np.random.RandomState(seed).choice(len(images), count, replace=False)
    scale = -(-size // 8)
    big = np.kron(images[pick] / 255., np.ones((scale, scale)))[:, :size, :size]
    return (mx.nd.array(np.repeat(big[:, None], 3, axis=1).astype(np.float32)),
            mx.nd.array(labels[pick]))


def _loss_falls(net, size, batch, lr, steps=2):
    x, y = _digits(size, batch)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = mx.gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': lr})
    losses = []
    for _ in range(steps):
        with mx.autograd.record():
            loss = loss_fn(net(x), y).mean()
        loss.backward()
        trainer.step(1)
        losses.append(loss.asscalar())
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


# GluonCV models beyond the paper's families; the training size each takes (SqueezeNet's
# final pooling needs 224 px), its batch and Adam's rate. (VGG, the other 224 px network, is
# built and run in training mode by name in test_gluoncv_zoo.)
BEYOND = [('resnet18_v1b', 64, 8, 1e-3), ('resnet50_v1d', 64, 8, 1e-3),
          ('se_resnext50_32x4d', 64, 8, 1e-3), ('mobilenetv3_large', 64, 8, 1e-3),
          ('squeezenet1.1', 224, 4, 1e-4)]


@pytest.mark.parametrize('name, train_size, batch, lr', BEYOND)
def test_gluoncv_models_beyond_the_paper(name, train_size, batch, lr, tmp_path):
    mx.random.seed(0)
    vanilla = gluoncv_model(name, classes=10)
    net = octavize(vanilla, 0.25)
    assert count_block(net, IMAGENET).flops < count_block(vanilla, IMAGENET).flops
    net.initialize(mx.init.Xavier())
    odd = mx.nd.random.uniform(shape=(1, 3, 231, 229))
    assert net(odd).shape == (1, 10)
    _loss_falls(net, train_size, batch, lr)
    net.hybridize(static_alloc=True)
    x = mx.nd.random.uniform(shape=(1, 3, 224, 224))
    want = net(x).asnumpy()
    prefix = str(tmp_path / name)
    net.export(prefix)
    imported = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                            prefix + '-0000.params')
    np.testing.assert_allclose(imported(x).asnumpy(), want, rtol=1e-5, atol=1e-5)
    params = {name: p.data() for name, p in imported.collect_params().items()}
    onnx_file = export_onnx(mx.sym.load(prefix + '-symbol.json'), params, x.shape,
                            prefix + '.onnx')
    session = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_a_policy_function_decides_each_layer():
    seen = []

    def policy(layer):
        seen.append(layer)
        return 0.5 if layer.stride == 8 else 0.

    symbol = traced(gluoncv_model('resnet18_v1b'))
    converted, _ = rewrite(symbol, 0.25, IMAGENET, policy=policy)
    assert all(isinstance(layer, Layer) for layer in seen)
    assert [layer.kind for layer in seen].count('stem') == 1
    arg_shapes, _, _ = converted.infer_shape(data=IMAGENET)
    shapes = dict(zip(converted.list_arguments(), arg_shapes))
    for layer in seen:       # a low output of half the channels exactly where asked
        low = [shape for name, shape in shapes.items()
               if name.startswith(layer.name[:-len('_fwd')] + '_') and
               name.endswith(('_h2l_weight', '_l2l_weight'))]
        assert bool(low) == (layer.stride == 8), layer
        high = [shape for name, shape in shapes.items()
                if name.startswith(layer.name[:-len('_fwd')] + '_') and
                name.endswith(('_h2h_weight', '_l2h_weight'))]
        assert all(shape[0] == high[0][0] for shape in low), layer      # half and half
    assert sum(layer.stride == 8 for layer in seen) >= 3


@pytest.mark.parametrize('call, message', [
    (lambda: octavize(mx.gluon.nn.Dense(3), 1.0), 'ratio must be in [0, 1)'),
    (lambda: octavize(mx.gluon.nn.Sequential(), 0.25), 'takes a Gluon HybridBlock'),
    (lambda: octavize(gluoncv_model('squeezenet1.1'), 0.25, data_shape=(1, 3, 64, 64)),
     'cannot take data of shape (1, 3, 64, 64)'),        # its last pooling is 13x13
    (lambda: octavize(gluoncv_model('squeezenet1.1'), 0.25, data_shape=(3, 224, 224)),
     'cannot take data of shape (3, 224, 224)'),          # a signal's (N, C, L) shape
    (lambda: octavize(gluoncv_model('squeezenet1.1'), 0.25, data_shape=(1, 224, 224)),
     'cannot take data of shape (1, 224, 224)'),
    (lambda: octavize(gluoncv_model('squeezenet1.1'), 0.25, data_shape=(3, 224)),
     'data_shape must be (N, C, H, W)'),
    (lambda: octavize(gluoncv_model('resnet18_v1b'), 0.25, policy='everywhere'),
     'policy must be one of paper, split-stem'),
    (lambda: S.octavize(mx.sym.SwapAxis(mx.sym.Convolution(
        mx.sym.Convolution(mx.sym.var('data'), kernel=(3, 3), pad=(1, 1), num_filter=8,
                           name='stem'),
        kernel=(3, 3), pad=(1, 1), num_filter=8, name='conv'), dim1=1, dim2=2, name='swap'),
        0.25, (1, 3, 32, 32), policy=lambda layer: 0.25),
     'node swap (operator SwapAxis)'),
])
def test_bad_input_is_a_value_error_naming_it(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_the_tools_take_any_gluoncv_model_by_name(digits60, tmp_path, capsys):
    save = tmp_path / 'run'
    model = ['--api', 'gluoncv', '--model', 'resnet18_v1b', '--ratio', '0.25']
    assert train_imagenet.main(model + [
        '--rec-train', digits60 + '_train.rec', '--rec-val', digits60 + '_val.rec',
        '--save-dir', str(save), '--input-size', '32', '--batch-size', '8', '--num-epochs', '2',
        '--lr', '0.02', '--warmup-epochs', '0', '--quiet', '-j', '1']) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = json.loads((save / 'run.json').read_text())
    assert (run['api'], run['model'], run['ratio']) == (
        'gluoncv', 'resnet18_v1b', 0.25)
    # scored from its records alone: the same model, the last validation's figures
    assert score.main(['--params', str(save / 'model.params'), '--rec-val',
                       digits60 + '_val.rec', '--quiet', '--batch-size', '4']) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (scored['api'], scored['network'], scored['ratio']) == ('gluoncv', 'resnet18_v1b',
                                                                   0.25)
    assert (scored['top1'], scored['top5']) == (trained['top1'], trained['top5'])
    assert score.main(['--params', str(save / 'model.params'), '--rec-val',
                       digits60 + '_val.rec', '--quiet', '--batch-size', '4', '--dtype',
                       'int8', '--calib-batches', '2', '--calib-mode', 'naive']) == 0
    int8 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (int8['dtype'], int8['calib_batches'], int8['calib_mode'], int8['images']) == (
        'int8', 2, 'naive', scored['images'])
    # and scores what float32 scores, within two of the 20 images
    assert abs(int8['top1'] - scored['top1']) <= 0.1 and abs(int8['top5'] - scored['top5']) <= 0.1
    assert flops_report.main(model + ['--json']) == 0
    octave = json.loads(capsys.readouterr().out)
    assert flops_report.main(model[:-1] + ['0', '--json']) == 0
    assert octave['flops'] < json.loads(capsys.readouterr().out)['flops']
    assert summary.main(model + ['--input-size', '64']) == 0
    assert 'resnetv1b_layers1_conv0_fwd-h2l' in capsys.readouterr().out
    assert bench.main(model[:-2] + ['--ratios', '0.25', '--input-size', '64', '--batch-sizes',
                                    '1', '--repeats', '1', '--warmup', '1', '--inner', '1',
                                    '--train-batch', '0', '--variants', 'as-built']) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith('{')]
    assert [(r['api'], r['model'], r['ratio']) for r in rows] == [
        ('gluoncv', 'resnet18_v1b', 0.), ('gluoncv', 'resnet18_v1b', 0.25)]
    assert rows[1]['flop_ratio'] < 0.85


def test_a_network_octavize_cannot_convert_is_exit_2_naming_why(tmp_path, capsys):
    assert flops_report.main(['--api', 'gluoncv', '--model', 'senet_154']) == 2
    assert 'groups=64 do not divide' in capsys.readouterr().err
    assert train_imagenet.main(['--api', 'gluoncv', '--model', 'resnet50_v1b_gn', '--save-dir',
                                str(tmp_path / 'run'), '--num-epochs', '1', '--quiet']) == 2
    assert 'cannot be traced' in capsys.readouterr().err


def test_the_docs_detection_backbone_trains_one_ssd_step(capsys):
    page = (pathlib.Path(__file__).parent.parent / 'docs' / 'octavize.md').read_text()
    code = page.split('## A detection backbone', 1)[1].split('```python', 1)[1]
    exec(compile(code.split('```', 1)[0], 'docs/octavize.md', 'exec'), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith('loss per image: [')
    losses = json.loads(printed.split(': ', 1)[1])
    assert len(losses) == 2 and all(np.isfinite(losses)) and min(losses) > 0
