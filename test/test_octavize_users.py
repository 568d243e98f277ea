"""octavize on the networks users write: each converted network computes what it claims at
every input size its original takes, or the conversion says no, naming the layer."""
import json

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gluoncv_model
from mxnet.gluon import nn

import octconv.symbol as S
from octconv.gluon import octavize
from octconv.utils.flops import count_block, trace_block
from octconv.utils.octavize import rewrite

EVERY_CONV = lambda layer: 0. if layer.kind == 'stem' or layer.stride == float('inf') \
    else 0.25                                                               # noqa: E731


def stack(make=lambda: [], head=True):
    """A HybridSequential named ``net_``: a stem convolution, the layers ``make()`` returns
    (made in its name scope: ``net_conv1``...), global pooling and 10 classes."""
    net = nn.HybridSequential(prefix='net_')
    with net.name_scope():
        net.add(nn.Conv2D(16, 3, padding=1), nn.BatchNorm(), nn.Activation('relu'), *make())
        if head:
            net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


def shapes(net, size, channels=3):
    """The output shape of every node of ``net``'s graph for a (1, channels, size, size)
    input: ``{output name: shape}``."""
    internals = trace_block(net)[0].get_internals()
    _, out, _ = internals.infer_shape(data=(1, channels, size, size))
    return dict(zip(internals.list_outputs(), out))


def convolutions(net):
    return [name for name in trace_block(net)[0].get_internals().list_outputs()
            if name.endswith('_fwd_output') and 'conv' in name]


def initialised(net, size=32):
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, size, size)))
    return net


# -- convolutions that change the map's size ----------------------------------------------------
def convnext_downsampling():
    """ConvNeXt's downsampling (a 2x2 convolution of stride 2) between stages, a 4x4 one of
    stride 2 with padding 1, a 3x3 after each, two stages more."""
    return stack(lambda: [nn.Conv2D(32, 3, padding=1), nn.Activation('relu'),
                          nn.Conv2D(48, 2, strides=2), nn.Activation('relu'),
                          nn.Conv2D(48, 3, padding=1), nn.Activation('relu'),
                          nn.Conv2D(64, 4, strides=2, padding=1), nn.Activation('relu'),
                          nn.Conv2D(64, 3, padding=1), nn.Activation('relu'),
                          nn.Conv2D(96, 3, strides=2, padding=1), nn.Activation('relu')])


def unpadded():
    """Inception's stem: unpadded 3x3 convolutions, of stride 1 and 2."""
    return stack(lambda: [nn.Conv2D(32, 3), nn.Activation('relu'), nn.Conv2D(32, 3, strides=2),
                          nn.Activation('relu'), nn.Conv2D(48, 3), nn.Activation('relu'),
                          nn.Conv2D(64, 3, strides=2, padding=1)])


@pytest.mark.parametrize('build', [convnext_downsampling, unpadded])
def test_every_converted_layer_keeps_the_original_size_at_every_input_size(build):
    net = initialised(build(), 64)
    octave = octavize(net, 0.25, data_shape=(1, 3, 64, 64), policy=EVERY_CONV)
    layers = convolutions(net)
    split = [name for name in layers
             if any(n.startswith(name[:-len('_output')] + '-h2l') for n in
                    trace_block(octave)[0].get_internals().list_outputs())]
    assert len(split) == len(layers) - 1            # all but the stem are octave
    probe = octavize(net, 0.25, data_shape=(1, 3, 64, 64), policy=EVERY_CONV,
                     outputs=[name[:-len('_output')] for name in layers])
    probe.initialize(mx.init.Xavier())
    octave.initialize(mx.init.Xavier())
    for size in list(range(octave.smallest_input, 40)) + [63, 64, 65]:
        want = shapes(net, size)
        got = probe(mx.nd.zeros((1, 3, size, size)))
        assert [g.shape for g in got] == [want[name] for name in layers], size
        assert octave(mx.nd.zeros((2, 3, size, size))).shape == (2, 10)


def test_a_2x2_stride_2_convolution_keeps_its_high_path_as_written():
    """Its h2h path is the original convolution on the high channels: with the low part of
    its input zero, the octave layer's high output is the original's on those channels."""
    net = stack(lambda: [nn.Conv2D(32, 3, padding=1), nn.Conv2D(48, 2, strides=2),
                         nn.Activation('relu'), nn.Conv2D(64, 3, strides=2, padding=1)],
                head=False)
    initialised(net, 64)
    octave = octavize(net, 0.25, data_shape=(1, 3, 64, 64), copy_weights=True,
                      outputs='net_conv2_fwd', policy=EVERY_CONV)
    params = octave.collect_params()
    for name in ('net_conv1_h2l_weight', 'net_conv1_h2l_bias'):  # conv1's low output: zero
        params[name].set_data(params[name].data() * 0)
    x = mx.nd.random.uniform(shape=(1, 3, 63, 65))
    # conv1's 32 channels at 0.25: 24 high, 8 low; conv2's 48: 36 high, 12 low (sliced in
    # numpy: MXNet 1.9's MKLDNN slice of an array in its blocked layout can crash when the
    # slice cuts a block)
    high = mx.nd.array(net[:4](x).asnumpy()[:, :24])
    weight, bias = net[4].weight.data().asnumpy(), net[4].bias.data().asnumpy()
    want = mx.nd.Convolution(high, mx.nd.array(weight[:36, :24]), mx.nd.array(bias[:36]),
                             kernel=(2, 2), stride=(2, 2), num_filter=36)
    got = octave(x)
    assert got.shape[2:] == want.shape[2:] == (31, 32)
    np.testing.assert_allclose(got[:, :36].asnumpy(), want.asnumpy(), rtol=1e-4, atol=1e-5)


# -- copy_weights, channel by channel ------------------------------------------------------------
class DenseUnit(nn.HybridBlock):
    """DenseNet's join: x and a 1x1 convolution of x, concatenated."""

    def __init__(self, growth, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(growth, 1)

    def hybrid_forward(self, F, x):
        return F.concat(x, self.conv(x), dim=1)


class Residual(nn.HybridBlock):
    """x + BatchNorm(1x1 convolution(x))."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv, self.bn = nn.Conv2D(channels, 1), nn.BatchNorm()

    def hybrid_forward(self, F, x):
        return x + self.bn(self.conv(x))


class LayerScale(nn.HybridBlock):
    """A learnt scale per channel, the block's own parameter in a broadcast product."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.gamma = self.params.get('gamma', shape=(1, channels, 1, 1),
                                     init=mx.init.Uniform(1.))

    def hybrid_forward(self, F, x, gamma):
        return F.broadcast_mul(x, gamma)


def pointwise_network():
    """1x1 convolutions with a DenseNet concat, a residual add, a depthwise convolution,
    BatchNorm, PReLU and LayerScale: on a spatially constant image an octave version with
    the original's weights computes the original's numbers exactly."""
    net = nn.HybridSequential(prefix='pw_')
    with net.name_scope():
        net.add(nn.Conv2D(16, 1), nn.BatchNorm(), nn.Activation('relu'),
                nn.Conv2D(20, 1), DenseUnit(12), nn.BatchNorm(), DenseUnit(12),
                nn.Conv2D(44, 1, groups=44), Residual(44), nn.PReLU(in_channels=44),
                LayerScale(44), nn.Conv2D(24, 1), nn.BatchNorm(), nn.Activation('relu'),
                nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


def randomise_statistics(net, seed):
    rng = np.random.RandomState(seed)
    for name, param in net.collect_params().items():
        if name.endswith(('running_mean', 'beta', 'gamma', 'alpha')):
            param.set_data(mx.nd.array(rng.uniform(-1, 1, param.shape)))
        if name.endswith('running_var'):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2, param.shape)))


@pytest.mark.parametrize('seed', [0, 1])
def test_copy_weights_puts_each_channel_where_it_went(seed):
    mx.random.seed(seed)
    net = initialised(pointwise_network(), 8)
    randomise_statistics(net, seed)
    octave = octavize(net, 0.25, data_shape=(1, 3, 8, 8), policy=EVERY_CONV,
                      copy_weights=True)
    assert sum(name.endswith('_l_gamma') for name in octave.collect_params()) >= 3
    colours = np.random.RandomState(seed).uniform(-1, 1, (2, 3, 1, 1))
    image = mx.nd.array(np.broadcast_to(colours, (2, 3, 12, 10)).copy())
    want = net(image).asnumpy()
    np.testing.assert_allclose(octave(image).asnumpy(), want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
    # a concatenation's merged map has the original's channel order
    inner = octavize(net, 0.25, data_shape=(1, 3, 8, 8), policy=EVERY_CONV, copy_weights=True,
                     outputs='pw_denseunit1_concat0')
    np.testing.assert_allclose(inner(image).asnumpy(), net[:7](image).asnumpy(), rtol=1e-5,
                               atol=1e-5)


def test_without_copy_weights_the_slices_are_not_copied():
    net = initialised(pointwise_network(), 8)
    octave = octavize(net, 0.25, data_shape=(1, 3, 8, 8), policy=EVERY_CONV)
    octave.initialize(mx.init.Zero())
    octave(mx.nd.zeros((1, 3, 8, 8)))
    params = octave.collect_params()
    assert params['pw_conv1_h2h_weight'].data().abs().sum().asscalar() == 0


# -- a block's own parameters, squeeze-excitation, heads ---------------------------------------
def test_a_blocks_own_parameter_converts_in_both_apis():
    net = stack(lambda: [nn.Conv2D(32, 3, padding=1), LayerScale(32, prefix='scale0_'),
                         nn.Conv2D(64, 3, strides=2, padding=1),
                         nn.Conv2D(64, 3, strides=2, padding=1)])
    initialised(net)
    octave = octavize(net, 0.25, data_shape=(1, 3, 32, 32))
    params = octave.collect_params()
    assert 'net_scale0_gamma' in params                    # shared by both parts, copied
    np.testing.assert_array_equal(params['net_scale0_gamma'].data().asnumpy(),
                                  net[4].gamma.data().asnumpy())
    octave.initialize(mx.init.Xavier())
    assert octave(mx.nd.zeros((1, 3, 33, 31))).shape == (1, 10)
    symbol = S.octavize(trace_block(net)[0], 0.25, (1, 3, 32, 32))
    assert 'net_scale0_gamma' in symbol.list_arguments() and any(
        'h2l' in name for name in symbol.list_arguments())


class SqueezeExcitation(nn.HybridBlock):
    """SE with its global pooling written as ``F.mean`` over H and W."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.down, self.up = nn.Conv2D(channels // 4, 1), nn.Conv2D(channels, 1)

    def hybrid_forward(self, F, x):
        scale = F.mean(x, axis=(2, 3), keepdims=True)
        return F.broadcast_mul(x, F.sigmoid(self.up(F.relu(self.down(scale)))))


def se_network():
    return stack(lambda: [nn.Conv2D(32, 3, padding=1), SqueezeExcitation(32),
                          nn.Conv2D(64, 3, strides=2, padding=1), SqueezeExcitation(64),
                          nn.Conv2D(96, 3, strides=2, padding=1), SqueezeExcitation(96)])


def test_mean_over_h_and_w_is_global_pooling_for_the_placement():
    seen = []

    def policy(layer):
        seen.append(layer)
        return EVERY_CONV(layer)
    rewrite(trace_block(se_network())[0], 0.25, (1, 3, 64, 64), policy=policy)
    excitations = [layer for layer in seen if 'squeezeexcitation' in layer.name]
    assert len(excitations) == 6 and all(layer.stride == float('inf') and layer.last_stage
                                         for layer in excitations)
    stages = {layer.name: layer for layer in seen if 'squeezeexcitation' not in layer.name}
    assert [(layer.stride, layer.last_stage) for layer in stages.values()] == [
        (1, False), (1, False), (2, True), (4, True)]     # (2: the last downsampling's input)
    # the paper's placement: the SE convolutions and the last stage stay vanilla
    octave = octavize(initialised(se_network()), 0.25, data_shape=(1, 3, 64, 64))
    names = list(octave.collect_params())
    assert any('conv1_h2l' in name for name in names)
    assert not any('squeezeexcitation' in name and '_h2' in name for name in names)
    assert count_block(octave, (1, 3, 64, 64)).flops < count_block(se_network(),
                                                                   (1, 3, 64, 64)).flops
    symbol = S.octavize(trace_block(se_network())[0], 0.25, (1, 3, 64, 64))   # the Symbol API
    assert [name for name in symbol.list_arguments() if '_h2l_' in name] == [
        name for name in names if '_h2l_' in name]


def test_a_policy_that_splits_a_1_pixel_map_is_refused_naming_the_layer():
    with pytest.raises(ValueError, match=r'net_squeezeexcitation0_conv0_fwd is 0.25, but that '
                                         r'layer works after global pooling'):
        octavize(se_network(), 0.25, data_shape=(1, 3, 64, 64), policy=lambda layer: 0.25)


def test_a_fixed_window_head_runs_wherever_the_original_runs():
    net = stack(lambda: [nn.Conv2D(32, 3, strides=2, padding=1),
                         nn.Conv2D(32, 3, strides=2, padding=1),
                         nn.Conv2D(32, 3, strides=2, padding=1), nn.AvgPool2D(8), nn.Flatten(),
                         nn.Dense(10)], head=False)
    initialised(net, 64)
    octave = octavize(net, 0.25, data_shape=(1, 3, 64, 64), policy=EVERY_CONV)
    assert 'net_conv3_h2l_weight' in octave.collect_params()             # last stage too
    octave.initialize(mx.init.Xavier())
    for size in (64, 65, 71, 96, 120):       # where 8x8 windows give one value per channel
        x = mx.nd.zeros((1, 3, size, size))
        assert octave(x).shape == net(x).shape == (1, 10)


# -- tiny inputs ---------------------------------------------------------------------------------
def test_a_converted_resnet_runs_on_every_size_the_original_runs():
    net = initialised(gluoncv_model('resnet18_v1b', classes=10))
    octave = octavize(net, 0.25)
    octave.initialize(mx.init.Xavier())
    assert octave.smallest_input == 1 < octave.graph_from
    for size in (1, 2, 3, 4, 7, 16, 17, 31):
        assert octave(mx.nd.zeros((1, 3, size, size))).shape == (1, 10), size
    # both graphs give the same numbers where both run
    x = mx.nd.random.uniform(shape=(2, 3, 40, 37))
    small = octave._alternatives.blocks['small'](x).asnumpy()
    np.testing.assert_allclose(octave(x).asnumpy(), small, rtol=1e-5, atol=1e-6)
    octave.hybridize()
    assert octave(mx.nd.zeros((1, 3, 2, 2))).shape == (1, 10)


def test_even_sizes_run_a_graph_without_crops_and_the_same_numbers():
    net = initialised(gluoncv_model('resnet18_v1b', classes=10))
    octave = octavize(net, 0.25, policy='all-layers')
    octave.initialize(mx.init.Xavier())
    even, odd = mx.nd.random.uniform(shape=(2, 3, 64, 64)), mx.nd.zeros((1, 3, 65, 64))
    assert octave._graph_for(even.shape) is octave._alternatives.blocks['even']
    assert octave._graph_for(odd.shape) is None
    first = mx.gluon.SymbolBlock.forward(octave, even).asnumpy()       # with the crops
    np.testing.assert_allclose(octave(even).asnumpy(), first, rtol=1e-5, atol=1e-6)
    even_graph = octave._alternatives.blocks['even'](mx.sym.var('data'))
    assert 'slice_like' not in {node['op'] for node in json.loads(even_graph.tojson())['nodes']}


# -- the user's network stays as it was ----------------------------------------------------------
def state(net):
    """Each parameter's shape, whether it waits for its first batch, and its values."""
    out = {}
    for name, param in net.collect_params().items():
        values = None if param._deferred_init or param._data is None else \
            param.data().asnumpy().copy()
        out[name] = (param.shape, bool(param._deferred_init), values)
    return out


def same_state(a, b):
    return a.keys() == b.keys() and all(
        a[k][:2] == b[k][:2] and (a[k][2] is None) == (b[k][2] is None) and
        (a[k][2] is None or np.array_equal(a[k][2], b[k][2])) for k in a)


def test_a_deferred_network_is_left_as_it_was():
    net = stack(lambda: [nn.Conv2D(32, 3, strides=2, padding=1),
                         nn.Conv2D(32, 3, strides=2, padding=1)])
    net.initialize(mx.init.Xavier())
    before = state(net)
    octave = octavize(net, 0.25, data_shape=(1, 1, 64, 64))
    assert same_state(before, state(net))
    assert net(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 10)       # 3 channels still fit
    assert octave(mx.nd.zeros((1, 1, 32, 32))).shape == (1, 10)    # initialised on its batch
    waiting = stack(lambda: [nn.Conv2D(32, 3, strides=2, padding=1)])
    waiting.initialize()
    with pytest.raises(ValueError, match='net_conv0_weight has no values yet'):
        octavize(waiting, 0.25, data_shape=(1, 3, 64, 64), copy_weights=True)


@pytest.mark.parametrize('copy_weights', [False, True])
def test_an_initialised_network_is_left_as_it_was(copy_weights):
    net = initialised(convnext_downsampling())
    before = state(net)
    octavize(net, 0.25, data_shape=(1, 3, 64, 64), copy_weights=copy_weights)
    assert same_state(before, state(net))


# -- arguments -----------------------------------------------------------------------------------
def test_numpy_numbers_are_ratios():
    net = initialised(convnext_downsampling())
    octave = octavize(net, np.float32(0.25), policy=lambda layer: np.float32(0.5) * (
        layer.kind != 'stem' and layer.stride != float('inf')))
    assert any('h2l' in name for name in octave.collect_params())


def test_outputs_takes_one_name_or_a_list():
    net = initialised(gluoncv_model('resnet18_v1b', classes=10))
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    one = octavize(net, 0.25, outputs='resnetv1b_layers2_relu3_fwd', copy_weights=True)
    listed = octavize(net, 0.25, outputs=['resnetv1b_layers2_relu3_fwd'], copy_weights=True)
    assert one(x).shape == (1, 128, 8, 8)
    np.testing.assert_array_equal(one(x).asnumpy(), listed(x).asnumpy())


def renamed_input():
    x = mx.sym.var('image')
    for k, stride in enumerate((1, 1, 2, 2)):
        x = mx.sym.Convolution(x, kernel=(3, 3), pad=(1, 1), stride=(stride, stride),
                               num_filter=16, name='c%d' % k)
    return x


def test_a_symbol_reading_another_input_name_converts_with_data_name():
    with pytest.raises(ValueError, match=r"no input 'data' \(its inputs: image\); pass "
                                         r"data_name="):
        S.octavize(renamed_input(), 0.25, (1, 3, 32, 32))
    octave = S.octavize(renamed_input(), 0.25, (1, 3, 32, 32), data_name='image')
    assert 'c1_h2l_weight' in octave.list_arguments()


@pytest.mark.parametrize('call, error, message', [
    (lambda: octavize(stack(), 0.25, data_shape=64), TypeError,
     'data_shape must be a tuple (N, C, H, W), got 64'),
    (lambda: octavize(stack(), 0.25, data_shape=(1, 3, 0, 32)), ValueError,
     'positive integers'),
    (lambda: S.octavize(stack(), 0.25), TypeError, 'for a Gluon block use octconv.gluon.octavize'),
    (lambda: octavize(renamed_input(), 0.25), TypeError, 'for a Symbol use octconv.symbol'),
    (lambda: octavize(stack(), '0.25'), ValueError, "ratio must be a number in [0, 1), got '0.25'"),
    (lambda: octavize(stack(), 0.25, outputs=[3]), TypeError, 'outputs names nodes'),
    (lambda: octavize(stack(lambda: [nn.Conv2D(8, 3, padding=2, dilation=2)]), 0.25,
                      policy=EVERY_CONV), ValueError, 'without dilation'),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error) as err:
        call()
    assert message in str(err.value)


def test_prelu_acts_on_each_part_with_its_own_slopes():
    net = stack(lambda: [nn.Conv2D(32, 3, padding=1), nn.PReLU(in_channels=32),
                         nn.Conv2D(32, 3, strides=2, padding=1), nn.PReLU(),
                         nn.Conv2D(64, 3, strides=2, padding=1)])
    initialised(net)
    octave = octavize(net, 0.25, data_shape=(1, 3, 32, 32), copy_weights=True)
    octave.initialize(mx.init.Xavier())
    params = octave.collect_params()
    alpha = net[4].alpha.data().asnumpy()
    np.testing.assert_array_equal(params['net_prelu0_h_alpha'].data().asnumpy(),
                                  alpha[:24])
    np.testing.assert_array_equal(params['net_prelu0_l_alpha'].data().asnumpy(),
                                  alpha[24:])
    assert 'net_prelu1_alpha' in params            # one slope: shared
    assert octave(mx.nd.zeros((1, 3, 29, 32))).shape == (1, 10)
