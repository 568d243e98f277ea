"""The models inside GluonCV: model zoo, export_block, ImageNet presets, feature extraction."""
import pathlib

import mxnet as mx
import numpy as np
import pytest
from gluoncv import model_zoo
from gluoncv.data.transforms.presets import imagenet
from gluoncv.nn.feature import FeatureExpander, FeatureExtractor
from gluoncv.utils import export_block

from octconv.gluon import Backbone, get_model_list, register_gluoncv, released_models
from octconv.gluon.gluoncv_video import video_models
from octconv.gluon.gluoncv_zoo import NOT_CONVERTED, convertible_classifiers, gluoncv_classifiers
from octconv.gluon.released import MODELS

HAND_BUILT = ['oct_' + name for name in get_model_list()] + list(released_models())


def test_registration_is_explicit_and_complete():
    added = register_gluoncv()
    converted = ['oct_' + name for name in convertible_classifiers()
                 if 'oct_' + name not in HAND_BUILT]
    videos = ['oct_' + name for name in video_models()]
    assert added == HAND_BUILT + converted + videos
    assert 'oct_resnet18_v1b' in converted and 'oct_densenet121' not in converted
    assert set(NOT_CONVERTED) <= set(gluoncv_classifiers())          # each refused by name
    assert not {'oct_' + name for name in NOT_CONVERTED} & set(added)
    assert set(added) <= set(model_zoo.get_model_list())
    assert register_gluoncv() == added          # a second call changes nothing
    net = model_zoo.get_model('oct_resnet50_v1b', ratio=0.5, classes=10)
    assert net.model_name == 'resnet50_v1b' and net.ratio == 0.5     # a given ratio wins


@pytest.mark.parametrize('name', HAND_BUILT)
def test_every_hand_built_name_builds_the_octave_network_it_names(name):
    """GluonCV's scripts pass only the name and ``classes``: each name is an octave network at
    its paper ratio (table B), or 0.25 where the paper has none."""
    net = model_zoo.get_model(name, classes=10)
    params = net.collect_params()
    if name in released_models():
        model, ratio, use_se = released_models()[name]
    else:
        model, use_se = name[len('oct_'):], False
        ratio = {row.model: row.ratio for row in MODELS}.get(model, 0.25)
    assert (net.model_name, net.ratio) == (model, ratio)
    assert any('_se-' in p for p in params) == use_se
    assert any(p.endswith(('-h2l_weight', '-l2l_weight')) for p in params)   # octave paths
    assert [p.shape[0] for n, p in params.items() if n.endswith('classifier_weight')] == [10]


def test_imagenet_preset_and_export_block(tmp_path):
    register_gluoncv()
    net = model_zoo.get_model('oct_mobilenet_v1_075', ratio=0.375, classes=10)
    net.initialize(mx.init.Uniform(0.1))
    image = mx.nd.array(np.random.RandomState(0).randint(0, 256, (300, 260, 3)), dtype='uint8')
    batch = imagenet.transform_eval(image)          # resize 256, center crop 224, normalise
    assert batch.shape == (1, 3, 224, 224)
    want = net(batch).asnumpy()
    prefix = str(tmp_path / 'oct_mobilenet')
    export_block(prefix, net, preprocess=None, layout='CHW')
    imported = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                            prefix + '-0000.params')
    np.testing.assert_allclose(imported(batch).asnumpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', ['resnet50_v1b', 'densenet121', 'mobilenet_v2_100'])
def test_feature_extractor_on_an_octave_backbone(name):
    register_gluoncv()
    net = model_zoo.get_model('oct_' + name, ratio=0.25)
    net.initialize(mx.init.Uniform(0.1))
    backbone = Backbone(net)
    x = mx.nd.random.uniform(shape=(1, 3, 128, 160))
    want = backbone(x)
    extractor = FeatureExtractor(backbone, ['stride8', 'stride16', 'stride32'])
    got = extractor(x)
    assert [g.shape[2:] for g in got] == [(16, 20), (8, 10), (4, 5)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-5, atol=1e-6)


def test_feature_expander_adds_layers_after_the_backbone():
    register_gluoncv()
    net = model_zoo.get_model('oct_resnet50_v1b', ratio=0.25)
    net.initialize(mx.init.Uniform(0.1))
    expander = FeatureExpander(Backbone(net, strides=(16, 32)), ['stride16', 'stride32'],
                               num_filters=[256, 128])
    expander.collect_params('expand_.*').initialize()    # the layers FeatureExpander adds
    shapes = [o.shape for o in expander(mx.nd.random.uniform(shape=(1, 3, 225, 225)))]
    assert shapes == [(1, 1024, 15, 15), (1, 2048, 8, 8), (1, 256, 4, 4), (1, 128, 2, 2)]


def test_the_docs_gluoncv_example_prints_what_it_says(tmp_path, monkeypatch, capsys):
    page = (pathlib.Path(__file__).parent.parent / 'docs' / 'models.md').read_text()
    code = page.split('### In GluonCV', 1)[1].split('```python', 1)[1]
    code = code.split('```', 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, 'README.md', 'exec'), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == '(1, 10)'
    assert printed[1] == '[(1, 512, 28, 28), (1, 1024, 14, 14), (1, 2048, 7, 7)]'
    assert (tmp_path / 'oct_resnet50-symbol.json').exists()
    assert (tmp_path / 'oct_resnet50-0000.params').exists()


def test_a_converted_name_builds_and_trains_as_gluoncvs_train_imagenet_calls_it():
    """GluonCV's train_imagenet.py: get_model(name, ctx=..., pretrained=False, classes=...,
    last_gamma=...), cast, initialize with MSRAPrelu, hybridize, train."""
    register_gluoncv()
    ctx = [mx.cpu()]
    net = model_zoo.get_model('oct_resnet50_v1d', ctx=ctx, pretrained=False, classes=10,
                              last_gamma=True)
    params = net.collect_params()
    assert any(n.endswith('_h2l_weight') for n in params)            # at ratio 0.25
    net.cast('float32')
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(params, 'nag', {'learning_rate': 0.01, 'momentum': 0.9})
    x = mx.nd.random.uniform(shape=(4, 3, 64, 64))
    with mx.autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([0, 1, 2, 3]))
    loss.backward()
    trainer.step(4)
    assert np.isfinite(loss.asnumpy()).all()
    vanilla = model_zoo.get_model('oct_resnet50_v1d', ratio=0, classes=10)
    assert not any('_h2l_' in n for n in vanilla.collect_params())
    with pytest.raises(ValueError, match='no pretrained parameters'):
        model_zoo.get_model('oct_resnet18_v1b', pretrained=True)


@pytest.mark.parametrize('name', ['oct_resnet50_v1b', 'oct_resnet18_v1b'])
def test_gluoncvs_calibration_path_writes_a_model_that_loads_and_scores(name, tmp_path):
    """verify_pretrained.py --calibration: get_model, hybridize, quantize_net (naive,
    'flatten' excluded), export. Its export comes before any forward pass of the quantized
    SymbolBlock, and MXNet 1.9.1's export writes the parameters the first forward pass
    collected: none (a 32-byte file, for every model). One forward pass first, and the
    file holds the model."""
    from mxnet.contrib.quantization import quantize_net
    register_gluoncv()
    net = model_zoo.get_model(name, pretrained=False, classes=10)    # hand-built, converted
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = np.random.RandomState(0).uniform(-1, 1, (8, 3, 64, 64)).astype(np.float32)
    float32 = net(mx.nd.array(x[:4])).asnumpy()
    quantized = quantize_net(net, quantized_dtype='auto', exclude_layers=[],
                             exclude_layers_match=['flatten'],
                             calib_data=mx.io.NDArrayIter(x, batch_size=4), calib_mode='naive',
                             num_calib_examples=8, ctx=mx.cpu(), logger=None)
    prefix = str(tmp_path / 'quantized')
    quantized.export(prefix)                                   # as the script does
    assert len(mx.nd.load(prefix + '-0000.params')) == 0           # nothing saved
    int8 = quantized(mx.nd.array(x[:4])).asnumpy()             # the working path
    quantized.export(prefix)
    loaded = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                          prefix + '-0000.params')
    np.testing.assert_array_equal(loaded(mx.nd.array(x[:4])).asnumpy(), int8)
    cosine = (float32 * int8).sum(1) / np.linalg.norm(float32, axis=1) / np.linalg.norm(int8,
                                                                                       axis=1)
    assert cosine.min() > 0.98, cosine
