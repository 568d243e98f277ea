"""Gluon blocks and models: released names, paper parameter counts, any size, export paths."""

import mxnet as mx
import numpy as np
import onnxruntime as ort
import pytest

import numpy_octave as ref
from conftest import manifests
from octconv.gluon import (Backbone, CheckpointMismatch, get_model, get_model_list, nn,
                           trainable_parameters)

GLUON_MANIFESTS = manifests('gluon')
MODELS = get_model_list()
# Depth and block variants of families that run here too: they run in the exhaustive run
# only (-m slow); every released model and one model of each family run in every run.
VARIANTS = {'resnext50_32x4d_v1b', 'resnet50_v2b', 'densenet161', 'densenet169', 'densenet201'}
EACH_MODEL = [pytest.param(name, marks=pytest.mark.slow) if name in VARIANTS else name
              for name in MODELS]


def _build(name, **kwargs):
    net = get_model(name, **kwargs)
    net.initialize(mx.init.Uniform(0.1))
    return net


def _randomise(net, seed=0):
    """Random weights and BatchNorm statistics, so outputs depend on every parameter."""
    rng = np.random.RandomState(seed)
    for param in net.collect_params().values():
        if param.name.endswith('running_var'):
            param.set_data(rng.uniform(0.5, 1.5, param.shape))
        else:
            param.set_data(rng.uniform(-0.1, 0.1, param.shape) + (
                1 if param.name.endswith('gamma') else 0))


def test_registry_lists_every_reference_model():
    assert MODELS == ['mobilenet_v1_075', 'mobilenet_v1_100', 'mobilenet_v2_100',
                      'mobilenet_v2_1125', 'resnet152_v1e', 'resnet152_v1f', 'resnet50_v1b',
                      'resnext50_32x4d_v1b', 'resnet50_v2b', 'resnext50_32x4d_v2b',
                      'densenet121', 'densenet161', 'densenet169', 'densenet201']


@pytest.mark.parametrize('name,manifest', GLUON_MANIFESTS, ids=[n for n, _ in GLUON_MANIFESTS])
def test_parameter_names_match_the_released_files(name, manifest):
    net = get_model(manifest['model'], ratio=manifest['ratio'], use_se=manifest['use_se'])
    structural = {k: list(p.shape) for k, p in net._collect_params_with_prefix().items()}
    prefixed = {k: list(p.shape) for k, p in net.collect_params().items()}
    assert structural == manifest['structural']
    assert prefixed == manifest['prefixed']


# paper table B: (model, ratio, use_se) -> #Params in millions
TABLE_B_PARAMS = [('mobilenet_v1_075', 0.375, False, 2.6), ('mobilenet_v1_100', 0.5, False, 4.2),
                  ('mobilenet_v2_100', 0.375, False, 3.5), ('mobilenet_v2_1125', 0.5, False, 4.2),
                  ('resnet152_v1f', 0.125, False, 60.2), ('resnet152_v1e', 0.125, True, 66.8)]


@pytest.mark.parametrize('name,ratio,use_se,millions', TABLE_B_PARAMS)
def test_trainable_parameters_equal_the_paper(name, ratio, use_se, millions):
    net = get_model(name, ratio=ratio, use_se=use_se)
    assert abs(trainable_parameters(net) / 1e6 - millions) <= 0.05


@pytest.mark.parametrize('name', EACH_MODEL)
def test_every_model_runs_at_224_and_at_an_odd_size(name):
    net = _build(name, ratio=0.25, classes=10)
    for shape in [(1, 3, 224, 224), (2, 3, 97, 131)]:
        out = net(mx.nd.random.uniform(shape=shape))
        assert out.shape == (shape[0], 10)
        assert np.isfinite(out.asnumpy()).all()


def test_hybridized_equals_imperative_at_an_odd_size():
    net = _build('densenet121', ratio=0.5, classes=7)
    _randomise(net)
    x = mx.nd.random.uniform(shape=(2, 3, 75, 93))
    imperative = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), imperative, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('size', [(8, 8), (9, 7)])
@pytest.mark.parametrize('stride', [1, 2])
def test_conv2d_block_matches_eq4(size, stride):
    conv = nn.Conv2D((5, 3), 3, strides=stride, padding=1, in_channels=(4, 2), use_bias=True)
    conv.initialize(mx.init.Uniform(1.0))
    x_h = np.random.RandomState(1).randn(1, 4, *size)
    x_l = np.random.RandomState(2).randn(1, 2, -(-size[0] // 2), -(-size[1] // 2))
    got = conv(mx.nd.array(x_h), mx.nd.array(x_l))
    weights = {p: conv._children['conv_' + p].weight.data().asnumpy() for p in conv.spec.paths}
    biases = {p: conv._children['conv_' + p].bias.data().asnumpy() for p in ('h2h', 'h2l')}
    want = ref.octave_conv(x_h, x_l, weights, biases, pad=1, stride=stride)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.asnumpy(), w, rtol=1e-4, atol=1e-4)


def test_conv2d_names_follow_the_checkpoints():
    conv = nn.Conv2D((6, 2), 1, in_channels=(6, -1), use_bias=False, prefix='conv1')
    assert sorted(conv._collect_params_with_prefix()) == ['conv_h2h.weight', 'conv_h2l.weight']
    assert sorted(conv.collect_params()) == ['conv1-h2h_weight', 'conv1-h2l_weight']


def test_blocks_on_pairs():
    x_h, x_l = mx.nd.array(np.random.randn(1, 4, 7, 7)), mx.nd.array(np.random.randn(1, 2, 4, 4))
    bn = nn.BatchNorm((4, 2), prefix='bn')
    bn.initialize()
    assert [o.shape for o in bn(x_h, x_l)] == [(1, 4, 7, 7), (1, 2, 4, 4)]
    h, l = nn.Activation('relu6')(x_h * 10, x_l * 10)
    assert h.max().asscalar() <= 6 and l.min().asscalar() >= 0
    h, l = nn.MaxPool2D(3, strides=2, padding=1)(x_h, x_l)
    assert (h.shape[2], l.shape[2]) == (4, 2)
    merged = nn.Adapter()(x_h, x_l)
    assert merged.shape == (1, 6, 7, 7)
    np.testing.assert_allclose(merged[:, 4:, ::2, ::2].asnumpy(), x_l.asnumpy())
    se = nn.SE(3, in_channels=(4, 2), prefix='se')
    se.initialize()
    gated = se(x_h, x_l)
    ratio = (gated[0] / x_h).asnumpy()
    assert np.all((ratio > 0) & (ratio < 1))          # sigmoid gates in (0, 1)
    np.testing.assert_allclose(ratio, ratio[:, :, :1, :1] * np.ones_like(ratio), rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    net = _build('mobilenet_v2_100', ratio=0.375)
    _randomise(net, seed=3)
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    path = str(tmp_path / 'm.params')
    net.save_parameters(path)
    other = get_model('mobilenet_v2_100', ratio=0.375)
    other.load_parameters(path)
    np.testing.assert_allclose(other(x).asnumpy(), net(x).asnumpy(), rtol=1e-6)


def test_loading_another_models_file_names_model_ratio_and_parameter(tmp_path):
    path = str(tmp_path / 'r50.params')
    _build('resnet50_v1b', ratio=0.25).save_parameters(path)
    with pytest.raises(CheckpointMismatch) as err:
        get_model('resnet50_v1b', ratio=0.5).load_parameters(path)
    message = str(err.value)
    assert 'resnet50_v1b (ratio 0.5)' in message and 'L1_B0.bn1.bn_h.beta' in message
    assert 'shape (48,)' in message
    mobilenet = str(tmp_path / 'm.params')
    _build('mobilenet_v1_075', ratio=0.25).save_parameters(mobilenet)
    with pytest.raises(CheckpointMismatch, match=r'resnet50_v1b \(ratio 0.25\) cannot load .*m'
                                                 r'.params: parameter L1_B0.bn1.bn_h.beta is '
                                                 'missing from the file'):
        get_model('resnet50_v1b', ratio=0.25).load_parameters(mobilenet)


def test_pretrained_loads_the_released_file_from_root(tmp_path):
    source = _build('mobilenet_v1_075', ratio=0.375)
    _randomise(source, seed=5)
    source.save_parameters(str(tmp_path / 'mobilenet_v1_075_alpha-0.375.params'))
    net = get_model('mobilenet_v1_075', ratio=0.375, pretrained=True, root=str(tmp_path))
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    np.testing.assert_allclose(net(x).asnumpy(), source(x).asnumpy(), rtol=1e-6)


def test_pretrained_without_the_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        get_model('resnet152_v1e', ratio=0.125, use_se=True, pretrained=True, root=str(tmp_path))
    assert 'se-resnet152_v1e_alpha-0.125.params' in str(err.value)
    assert 'https://dl.fbaipublicfiles.com/octconv/others/se-resnet152_v1e_alpha-0.125.params' \
        in str(err.value)
    with pytest.raises(ValueError, match='no released parameters for resnet50_v1b'):
        get_model('resnet50_v1b', ratio=0.25, pretrained=True, root=str(tmp_path))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet51'; valid models: mobilenet"):
        get_model('resnet51')
    with pytest.raises(ValueError, match=r'resnet50_v1b: ratio must be in \[0, 1\)'):
        get_model('resnet50_v1b', ratio=1.5)
    with pytest.raises(ValueError, match=r'resnet50_v2b has no zero-init last BatchNorm '
                                         r'variant \(last_gamma=True\)'):
        get_model('resnet50_v2b', last_gamma=True)
    with pytest.raises(ValueError, match=r'mobilenet_v1_075 has no squeeze-excitation variant'):
        get_model('mobilenet_v1_075', use_se=True)
    with pytest.raises(ValueError, match='groups=32 do not divide'):
        get_model('resnext50_32x4d_v1b', ratio=0.125)


@pytest.mark.parametrize('name', EACH_MODEL)
def test_every_model_takes_the_same_keyword_arguments(name):
    net = get_model(name, ratio=0.25, classes=7, final_drop=0.3, use_se=False, last_gamma=False,
                    norm_kwargs={'momentum': 0.8}, use_global_stats=True)
    assert net.ratio == 0.25
    blocks = []
    net.apply(blocks.append)
    norms = [b for b in blocks if isinstance(b, mx.gluon.nn.BatchNorm)]
    assert norms and all(b._kwargs['momentum'] == 0.8 and b._kwargs['use_global_stats']
                         for b in norms)
    assert [b._rate for b in blocks if isinstance(b, mx.gluon.nn.Dropout)] == [0.3]
    net.initialize()
    assert net(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 7)


def test_ratio_minus_one_is_the_vanilla_network():
    vanilla = get_model('resnet50_v1b', ratio=-1)
    assert vanilla.ratio == 0
    assert sorted(vanilla.collect_params()) == sorted(get_model('resnet50_v1b').collect_params())


def test_export_and_symbolblock_import_give_the_same_outputs(tmp_path):
    net = _build('resnet152_v1e', ratio=0.125, use_se=True, classes=10)
    _randomise(net, seed=7)
    net.hybridize()
    x = mx.nd.random.uniform(shape=(1, 3, 96, 80))
    want = net(x).asnumpy()
    prefix = str(tmp_path / 'se152')
    net.export(prefix)
    imported = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                            prefix + '-0000.params')
    np.testing.assert_allclose(imported(x).asnumpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,size', [('resnet50_v1b', (64, 64)), ('densenet121', (65, 71)),
                                       ('mobilenet_v1_075', (64, 64))])
def test_onnx_export_runs_in_onnxruntime_with_the_same_outputs(tmp_path, name, size):
    net = _build(name, ratio=0.25, classes=10)
    _randomise(net, seed=11)
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3) + size)
    want = net(x).asnumpy()
    prefix = str(tmp_path / name)
    net.export(prefix)
    onnx_file = mx.onnx.export_model(prefix + '-symbol.json', prefix + '-0000.params',
                                     [x.shape], [np.float32], prefix + '.onnx')
    session = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    # float32 through another runtime's kernels: 1e-4 of the logits' scale
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_backbone_gives_single_tensor_features_at_strides_8_16_32():
    net = _build('resnet50_v1b', ratio=0.25)
    x = mx.nd.random.uniform(shape=(1, 3, 225, 225))
    features = Backbone(net)(x)
    assert [f.shape for f in features] == [(1, 512, 29, 29), (1, 1024, 15, 15),
                                           (1, 2048, 8, 8)]
    with pytest.raises(ValueError, match='no stage with output stride 64'):
        Backbone(net, strides=(64,))
