"""Octave video and signal networks: GluonCV's I3D, C2D and non-local I3D converted (FLOPs
against the paper's Table 8), inflation from 2-D networks, 1-D networks, the embedded demo
clips, and GluonCV's train_recognizer.py calling the registered names."""
import json
import re

import mxnet as mx
import numpy as np
import pytest
from gluoncv import model_zoo

from octconv import symbol as S
from octconv.gluon import get_model, inflate, octavize, register_gluoncv
from octconv.gluon.gluoncv_video import (TABLE_8, VIDEO_NOT_CONVERTED, c2d_resnet50_v1,
                                         clip_shape, octave_video_model, video_models)
from octconv.train import flops_report, summary
from octconv.utils.demo_clips import demo_clips
from octconv.utils.flops import count_block, count_symbol
from octconv.utils.paper import table1_flop_factor

CLIP = (1, 3, 32, 224, 224)                 # the paper's clip: 32 frames of 224x224


def gluoncv_video(name, classes=10):
    """GluonCV's vanilla video network ``name`` (C2D: octconv's), initialised."""
    if name.startswith('c2d'):
        return c2d_resnet50_v1(nclass=classes)
    options = {} if name.startswith('c3d') else {'pretrained_base': False}
    return model_zoo.get_model(name, nclass=classes, pretrained=False, **options)


def randomised(net):
    """``net`` with random BatchNorm statistics and affine values (so that copying them
    matters), after one batch has given every parameter its shape."""
    rng = np.random.RandomState(7)
    for name, param in net.collect_params().items():
        if name.endswith(('running_mean', 'beta')):
            param.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, param.shape)))
        elif name.endswith(('running_var', 'gamma')):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, param.shape)))
    return net


# -- the paper's Table 8 -----------------------------------------------------------------
@pytest.fixture(scope='module')
def vanilla_flops():
    return {name: count_block(gluoncv_video(name, 400), CLIP).flops
            for name in {row.model for row in TABLE_8}}


@pytest.mark.parametrize('row', [row for row in TABLE_8 if row.ratio < 0.3],
                         ids=lambda row: '%s-%g' % (row.label, row.ratio))
def test_flop_ratios_are_the_papers_within_003(row, vanilla_flops):
    octave = octave_video_model(row.model, row.ratio, nclass=400)      # 'all-layers'
    ratio = count_block(octave, CLIP).flops / vanilla_flops[row.model]
    assert abs(ratio - row.octave_gflops / row.vanilla_gflops) < 0.03, ratio


def test_the_03_row_is_below_what_any_placement_gives_at_03(vanilla_flops):
    row = next(row for row in TABLE_8 if row.ratio == 0.3)
    paper = row.octave_gflops / row.vanilla_gflops
    assert paper < table1_flop_factor(0.3)      # below even every layer octave at 0.3
    every_layer = count_block(octave_video_model(row.model, 0.3, nclass=400), CLIP).flops
    assert every_layer / vanilla_flops[row.model] > table1_flop_factor(0.3) > paper


def test_octconv_flops_prints_table_8(capsys, monkeypatch):
    rows = [{'label': 'I3D', 'model': 'm', 'ratio': 0.1, 'placement': 'all-layers',
             'vanilla_flops': 2e9, 'flops': 1.8e9, 'flop_ratio': 0.9,
             'paper_vanilla_flops': 28.1e9, 'paper_flops': 25.6e9, 'paper_ratio': 0.911,
             'ratio_diff': -0.011}]
    monkeypatch.setattr(flops_report, 'video_rows', lambda: iter(rows))
    assert flops_report.main(['--paper-video']) == 0
    assert '0.900   0.911  -0.011' in capsys.readouterr().out


# -- the tools ----------------------------------------------------------------------------
def test_the_tools_take_video_models_and_refuse_frames_for_images(capsys):
    assert flops_report.main(['--api', 'gluoncv', '--model', 'c3d_kinetics400', '--classes',
                              '400', '--input-size', '112', '--json']) == 0
    out = capsys.readouterr().out
    assert '"input": [1, 3, 16, 112, 112]' in out and 'ratio 0.1' in out   # its clip, 0.1
    assert summary.main(['--api', 'gluoncv', '--model', 'c2d_resnet50_v1_kinetics400',
                         '--frames', '8', '--input-size', '64', '--ratio', '0.25']) == 0
    assert 'ratio 0.25, input 1x3x8x64x64' in capsys.readouterr().out
    assert flops_report.main(['--api', 'gluoncv', '--model', 'resnet18_v1b',
                              '--frames', '8']) == 2
    assert '--frames: resnet18_v1b is not a video model' in capsys.readouterr().err


# -- conversion ---------------------------------------------------------------------------
def test_every_video_model_converts_or_is_refused_by_name():
    names = video_models()
    assert {'i3d_resnet50_v1_kinetics400', 'i3d_nl5_resnet50_v1_kinetics400',
            'c2d_resnet50_v1_kinetics400', 'c3d_kinetics400',
            'r2plus1d_resnet18_kinetics400'} <= set(names)
    assert not set(names) & set(VIDEO_NOT_CONVERTED)
    with pytest.raises(ValueError, match='p3d_resnet50_kinetics400'):
        octave_video_model('p3d_resnet50_kinetics400')


def test_a_2d_action_model_converts_as_the_image_network_it_is():
    # A TSN: an image network on each of its segments' frames, (N x segments, 3, H, W);
    # built from its class (GluonCV's builders download ImageNet weights whatever
    # pretrained_base says)
    from gluoncv.model_zoo.action_recognition.actionrec_resnetv1b import ActionRecResNetV1b
    tsn = ActionRecResNetV1b(depth=18, nclass=5, pretrained_base=False, num_segments=2)
    tsn.initialize()
    octave = octavize(tsn, 0.25, data_shape=(2, 3, 112, 112))
    octave.initialize()
    frames = mx.nd.random.uniform(shape=(4, 3, 112, 112))       # 2 clips of 2 segments
    assert octave(frames).shape == tsn(frames).shape == (2, 5)
    assert any(param.endswith('_h2l_weight') for param in octave.collect_params())


FAMILIES = ['c3d_kinetics400', 'i3d_inceptionv1_kinetics400', 'r2plus1d_resnet18_kinetics400',
            'slowfast_4x16_resnet50_kinetics400']


@pytest.mark.parametrize('name', FAMILIES)
def test_one_model_of_each_video_family_converts_at_its_clip(name):
    _converts_at_its_clip(name)


@pytest.mark.slow
@pytest.mark.parametrize('name', [n for n in video_models() if n not in FAMILIES])
def test_every_other_video_model_converts_at_its_clip(name):
    _converts_at_its_clip(name)


def _converts_at_its_clip(name):
    clip = clip_shape(name)
    octave = octave_video_model(name, nclass=7)
    assert any(param.endswith('_h2l_weight') for param in octave.collect_params())
    vanilla = count_block(gluoncv_video(name, 7), clip)
    counted = count_block(octave, clip)
    assert counted.flops < vanilla.flops
    assert counted.params == vanilla.params          # the same weights, split


def test_a_converted_i3d_keeps_every_frame_and_takes_odd_sizes():
    net = octave_video_model('i3d_resnet50_v1_kinetics400', 0.25, nclass=5)
    internals = net(mx.sym.var('data')).get_internals()
    pairs = [(internals[name], internals[name.replace('-h2l', '-h2h')])
             for name in internals.list_outputs() if name.endswith('conv0_fwd-h2l_output')]
    assert pairs
    for low, high in pairs:           # the low part: every frame, half the height and width
        _, (low_shape, high_shape), _ = mx.sym.Group([low, high]).infer_shape(data=CLIP)
        assert low_shape[2] == high_shape[2]
        assert low_shape[3:] == tuple((side + 1) // 2 for side in high_shape[3:])
    for clip in ((1, 3, 8, 64, 64), (2, 3, 9, 61, 47)):
        assert net(mx.nd.random.uniform(shape=clip)).shape == (clip[0], 5)


def test_a_small_3d_network_with_a_temporal_stride_converts():
    """Strides along time only and along every axis: the octave network runs on odd sizes
    and costs less."""
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv3D(8, 3, padding=1), mx.gluon.nn.BatchNorm(),
            mx.gluon.nn.Activation('relu'),
            mx.gluon.nn.Conv3D(8, (3, 1, 1), strides=(2, 1, 1), padding=(1, 0, 0)),
            mx.gluon.nn.Conv3D(8, 3, strides=2, padding=1), mx.gluon.nn.GlobalAvgPool3D(),
            mx.gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 5, 9, 11))
    net(x)
    octave = octavize(net, 0.5, data_shape=(1, 3, 8, 16, 16), policy='all-layers')
    octave.initialize(mx.init.Xavier())
    assert octave(x).shape == (2, 3)
    assert count_block(octave, (1, 3, 8, 16, 16)).flops < count_block(net, (1, 3, 8, 16, 16)).flops


def test_both_apis_convert_a_video_network_alike():
    net = gluoncv_video('i3d_resnet50_v1_kinetics400', 400)
    gluon = octavize(net, 0.1, data_shape=CLIP, policy='all-layers')
    symbol = S.octavize(net(mx.sym.var('data')), 0.1, CLIP, policy='all-layers')
    assert count_symbol(symbol, CLIP).flops == count_block(gluon, CLIP).flops
    assert sorted(symbol.list_arguments()[1:]) == sorted(
        name for name in gluon.collect_params() if not name.endswith(('_mean', '_var')))


def test_a_signal_network_converts_and_trains():
    """1-D: the low part at half the length; odd lengths run; the loss falls."""
    mx.random.seed(0)
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv1D(16, 5, padding=2), mx.gluon.nn.BatchNorm(),
            mx.gluon.nn.Activation('relu'), mx.gluon.nn.MaxPool1D(3, 2, 1),
            mx.gluon.nn.Conv1D(16, 3, padding=1), mx.gluon.nn.BatchNorm(),
            mx.gluon.nn.Activation('relu'), mx.gluon.nn.Conv1D(32, 3, strides=2, padding=1),
            mx.gluon.nn.GlobalAvgPool1D(), mx.gluon.nn.Dense(2))
    net.initialize(mx.init.Xavier())
    octave = octavize(net, 0.25, data_shape=(1, 1, 64), policy='all-layers')
    octave.initialize(mx.init.Xavier())
    assert any(name.endswith('_h2l_weight') for name in octave.collect_params())
    for length in (64, 65, 7):
        assert octave(mx.nd.zeros((1, 1, length))).shape == (1, 2)
    symbol = S.octavize(net(mx.sym.var('data')), 0.25, (1, 1, 64), policy='all-layers')
    assert count_symbol(symbol, (1, 1, 64)).flops == count_block(octave, (1, 1, 64)).flops \
        < count_block(net, (1, 1, 64)).flops                           # the Symbol API alike
    rng = np.random.RandomState(0)
    t = np.arange(64)
    x = np.stack([np.sin(t * (0.2 if k % 2 else 0.9) + rng.uniform(0, 6)) for k in range(16)])
    x = mx.nd.array(x[:, None] + rng.normal(0, 0.1, (16, 1, 64)))
    y = mx.nd.array(np.arange(16) % 2)
    trainer = mx.gluon.Trainer(octave.collect_params(), 'adam', {'learning_rate': 1e-2})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(15):
        with mx.autograd.record():
            loss = loss_fn(octave(x), y).mean()
        loss.backward()
        trainer.step(1)
        losses.append(loss.asscalar())
    assert losses[-1] < 0.5 * losses[0], losses


# -- inflation -----------------------------------------------------------------------------
@pytest.fixture(scope='module')
def resnet50():
    """GluonCV's ResNet-50 v1b, 10 classes, and its octave network at 0.125 (every layer
    split, the video networks' placement) with random values, run once."""
    mx.random.seed(3)
    net = model_zoo.get_model('resnet50_v1b', classes=10)
    net.initialize(mx.init.Xavier())
    octave = octavize(net, 0.125, policy='all-layers')
    octave.initialize(mx.init.Xavier())
    octave(mx.nd.zeros((1, 3, 32, 32)))
    return net, randomised(octave)


@pytest.fixture(scope='module')
def octave_resnet50(resnet50):
    return resnet50[1]


def test_an_inflated_c2d_gives_the_2d_networks_output_on_a_static_clip(octave_resnet50):
    c2d = octave_video_model('c2d_resnet50_v1_kinetics400', 0.125, nclass=10)
    report = inflate(octave_resnet50, c2d)
    assert {how for _, _, how in report} == {'copied', 'inflated'}
    assert len(report) == len(list(octave_resnet50.collect_params()))
    frames = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    clip = mx.nd.repeat(frames.expand_dims(2), 8, axis=2)
    want = octave_resnet50(frames).asnumpy()
    np.testing.assert_allclose(c2d(clip).asnumpy(), want, rtol=1e-4, atol=1e-4)


def test_an_inflated_i3d_gives_the_2d_maps_away_from_the_clips_ends(resnet50):
    """Each kernel repeated over its kt frames and divided by kt: on a static clip every
    time position the zero padding does not reach is the 2-D map."""
    net_2d, octave_resnet50 = resnet50
    last_2d = octavize(net_2d, 0.125, policy='all-layers',
                       outputs=net_2d.prefix + 'layers4_relu8_fwd')     # the last maps
    last_2d.initialize()
    last_2d(mx.nd.zeros((1, 3, 32, 32)))
    for name, param in last_2d.collect_params().items():
        param.set_data(octave_resnet50.collect_params()[name].data())
    i3d = octavize(gluoncv_video('i3d_resnet50_v1_kinetics400'), 0.125, data_shape=CLIP,
                   policy='all-layers', outputs='layer4_bottleneck2_activation0')
    i3d.initialize()
    report = inflate(last_2d, i3d)
    assert sum(how == 'inflated' for _, _, how in report) > 50
    frame = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    want = last_2d(frame).asnumpy()
    got = i3d(mx.nd.repeat(frame.expand_dims(2), 128, axis=2)).asnumpy()     # 16 positions
    assert got.shape[2] == 16
    middle = got[:, :, 6:10]
    np.testing.assert_allclose(middle, np.repeat(want[:, :, None], 4, axis=2),
                               rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert np.abs(got[:, :, 0] - want).max() > 1e-2 * np.abs(want).max()   # the ends differ


def test_inflation_skips_non_local_blocks_and_keeps_another_classifier(octave_resnet50):
    nl = octave_video_model('i3d_nl5_resnet50_v1_kinetics400', 0.125, nclass=400)
    report = inflate(octave_resnet50, nl)
    hows = {}
    for name, source, how in report:
        hows.setdefault(how, []).append((name, source))
    assert all('nonlocal' in name for name, _ in hows['skipped'])
    kept = sorted(name for name, _ in hows['kept'])            # the classifier
    assert len(kept) == 2 and kept[0].endswith('_bias') and kept[1].endswith('_weight')
    assert kept[0].startswith('dense')
    sources = [source for _, source, _ in report if source is not None]
    assert sorted(sources) == sorted(octave_resnet50.collect_params())   # each used once


def test_inflation_refuses_a_network_that_computes_differently():
    """The hand-built ResNet-50 average-pools then convolves where GluonCV's I3D has a stride:
    no weights make those the same network."""
    hand_built = get_model('resnet50_v1b', ratio=0.125, classes=10)
    hand_built.initialize()
    c2d = octave_video_model('c2d_resnet50_v1_kinetics400', 0.125, nclass=10, policy='paper')
    with pytest.raises(ValueError, match='compute differently: .*stride'):
        inflate(hand_built, c2d)


# -- the embedded clips and training ------------------------------------------------------
def test_demo_clips_are_moving_digits():
    clips, labels = demo_clips(per_class=2, frames=6, size=32)
    assert clips.shape == (20, 3, 6, 32, 32) and clips.dtype == np.float32
    assert list(labels) == [d for d in range(10) for _ in range(2)]
    assert 0 <= clips.min() and clips.max() <= 1
    assert (clips[:, 0] == clips[:, 2]).all()                         # grey
    moved = [not np.array_equal(clip[0, 0], clip[0, -1]) for clip in clips]
    assert sum(moved) >= 15
    again, _ = demo_clips(per_class=2, frames=6, size=32)
    np.testing.assert_array_equal(clips, again)
    with pytest.raises(ValueError, match='size must be at least 8'):
        demo_clips(size=4)


def test_an_oct_i3d_trains_on_the_demo_clips():
    mx.random.seed(0)
    clips, labels = demo_clips(per_class=4, frames=8, size=32)
    net = octave_video_model('i3d_resnet50_v1_kinetics400', nclass=10, dropout_ratio=0.)
    net.hybridize(static_alloc=True)
    trainer = mx.gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-4})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x_all, y_all = mx.nd.array(clips), mx.nd.array(labels)

    def loss_on_all():
        with mx.autograd.train_mode():
            return loss_fn(net(x_all), y_all).mean().asscalar()
    before = loss_on_all()
    order = np.random.RandomState(0).permutation(len(labels))
    for _ in range(2):
        for start in range(0, len(order), 10):
            batch = order[start:start + 10]
            with mx.autograd.record():
                loss = loss_fn(net(x_all[batch]), y_all[batch])
            loss.backward()
            trainer.step(len(batch))
    after = loss_on_all()
    assert np.isfinite(after) and after < before - 0.2, (before, after)


# -- GluonCV's train_recognizer.py ---------------------------------------------------------
def test_train_recognizer_trains_the_registered_names_as_it_calls_them():
    """The script's calls: get_model with its flags, cast, reset_ctx over the devices,
    split_and_load, a reshape of each part, a step, then hybridize for the test pass."""
    added = register_gluoncv()
    assert {'oct_' + name for name in video_models()} <= set(added)
    devices = [mx.cpu(0), mx.cpu(1)]
    net = model_zoo.get_model(name='oct_i3d_resnet50_v1_kinetics400', nclass=5,
                              pretrained=False, use_tsn=False, num_segments=1,
                              partial_bn=False, bn_frozen=False)
    net.cast('float32')
    net.collect_params().reset_ctx(devices)
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.01},
                               update_on_kvstore=False)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    clips = mx.nd.random.uniform(shape=(4, 1, 3, 8, 32, 32))     # (batch, segments, ...)
    data = mx.gluon.utils.split_and_load(clips, devices)
    label = mx.gluon.utils.split_and_load(mx.nd.array([1, 3, 0, 2]), devices)
    with mx.autograd.record():
        outputs = [net(x.reshape((-1,) + x.shape[2:])) for x in data]
        losses = [loss_fn(yhat, y) for yhat, y in zip(outputs, label)]
    mx.autograd.backward(losses)
    first = next(param for name, param in net.collect_params().items()
                 if name.endswith('_h2h_weight'))
    before = first.data(devices[0]).asnumpy()
    trainer.step(4)
    after = first.data(devices[1]).asnumpy()
    assert [o.shape for o in outputs] == [(2, 5), (2, 5)]
    assert not np.allclose(before, after)
    net.hybridize(static_alloc=True, static_shape=True)
    assert net(data[0].reshape((-1,) + data[0].shape[2:])).shape == (2, 5)
    with pytest.raises(ValueError, match='no pretrained parameters'):
        model_zoo.get_model('oct_i3d_resnet50_v1_kinetics400', nclass=5, pretrained=True)
    # bn_frozen: each BatchNorm part frozen where GluonCV freezes the layer it comes from
    frozen = model_zoo.get_model('oct_c2d_resnet50_v1_kinetics400', nclass=5, bn_frozen=True)
    vanilla = c2d_resnet50_v1(nclass=5, bn_frozen=True)
    assert _frozen_norms(frozen) == _frozen_norms(vanilla)
    assert ['True'] in _frozen_norms(vanilla)


def _frozen_norms(net):
    """The ``use_global_stats`` values of each BatchNorm layer of ``net``'s graph (an octave
    layer's parts, ``_h`` and ``_l``, together), sorted: which layer is which is not
    compared, as two networks built apart number their layers apart."""
    states = {}
    for node in json.loads(net(mx.sym.var('data')).tojson())['nodes']:
        if node['op'] == 'BatchNorm':
            layer = re.sub(r'_(h|l)$', '', node['name'])
            states.setdefault(layer, set()).add(node['attrs'].get('use_global_stats'))
    return sorted((sorted(state) for state in states.values()))
