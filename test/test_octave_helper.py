"""The shared octave-op helper against the numpy implementation of paper Eq. 4."""
import mxnet as mx
import numpy as np
import pytest

import numpy_octave as ref
from octconv.utils.octave import (graph_options, octave_conv, octave_dense, octave_pool,
                                  plan_octave_conv, plan_octave_dense, split_channels)

RNG = np.random.RandomState(0)


def _random_params(spec):
    weights, biases, params = {}, {}, {}
    for path, p in spec.paths.items():
        weights[path] = RNG.randn(*spec.weight_shape(path))
        biases[path] = RNG.randn(p.channels) if p.use_bias else None
        params[path] = (mx.nd.array(weights[path], dtype='float64'),
                        None if biases[path] is None else mx.nd.array(biases[path], dtype='float64'))
    return weights, {k: v for k, v in biases.items() if v is not None}, params


def _inputs(in_channels, size, batch=2):
    h, w = size
    x_h = RNG.randn(batch, in_channels[0], h, w) if in_channels[0] else None
    x_l = RNG.randn(batch, in_channels[1], -(-h // 2), -(-w // 2)) if in_channels[1] else None
    return x_h, x_l


def _nd(x):
    return None if x is None else mx.nd.array(x, dtype='float64')


def _check(spec, size, pad, stride):
    x_h, x_l = _inputs(spec.in_channels, size)
    weights, biases, params = _random_params(spec)
    groups = {path: p.groups for path, p in spec.paths.items()}
    want_h, want_l = ref.octave_conv(x_h, x_l, weights, biases, pad=pad, stride=stride,
                                     groups=groups)
    got_h, got_l = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    for got, want in ((got_h, want_h), (got_l, want_l)):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-10, atol=1e-10)
    return got_h, got_l


@pytest.mark.parametrize('size', [(8, 8), (12, 16), (9, 9), (7, 11), (13, 6)])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('kernel,pad', [(1, 0), (3, 1)])
def test_all_four_paths_match_eq4(size, stride, kernel, pad):
    spec = plan_octave_conv('layer', (6, 2), (5, 3), kernel, stride=stride, pad=pad)
    assert set(spec.paths) == {'h2h', 'h2l', 'l2h', 'l2l'}
    y_h, y_l = _check(spec, size, pad, stride)
    h = size[0] if stride == 1 else -(-size[0] // 2)
    w = size[1] if stride == 1 else -(-size[1] // 2)
    assert y_h.shape == (2, 5, h, w)
    assert y_l.shape == (2, 3, -(-h // 2), -(-w // 2))


@pytest.mark.parametrize('stride', [1, 2])
def test_high_only_input_to_octave_output(stride):
    spec = plan_octave_conv('first', (8, 0), split_channels(8, 0.25), 3, stride=stride, pad=1)
    assert set(spec.paths) == {'h2h', 'h2l'}
    _check(spec, (11, 10), 1, stride)


@pytest.mark.parametrize('stride', [1, 2])
def test_octave_input_to_high_only_output(stride):
    spec = plan_octave_conv('last', (6, 2), (8, 0), 3, stride=stride, pad=1)
    assert set(spec.paths) == {'h2h', 'l2h'}
    _check(spec, (9, 14), 1, stride)


@pytest.mark.parametrize('stride', [1, 2])
def test_grouped_convolution_groups_every_path(stride):
    spec = plan_octave_conv('grouped', (8, 4), (8, 4), 3, stride=stride, pad=1, groups=4)
    assert {p: s.groups for p, s in spec.paths.items()} == {'h2h': 4, 'h2l': 4, 'l2h': 4,
                                                           'l2l': 4}
    assert spec.weight_shape('h2l') == (4, 2, 3, 3)
    _check(spec, (10, 9), 1, stride)


def test_groups_are_capped_by_the_output_part():
    # The reference uses min(groups, out part): 32 groups with an 8-channel low output.
    spec = plan_octave_conv('capped', (64, 32), (64, 8), 3, pad=1, groups=32)
    assert spec.paths['l2l'].groups == 8 and spec.paths['h2h'].groups == 32
    _check(spec, (6, 6), 1, 1)


@pytest.mark.parametrize('stride', [1, 2])
def test_depthwise_has_only_same_frequency_paths(stride):
    spec = plan_octave_conv('dw', (6, 2), (6, 2), 3, stride=stride, pad=1, groups=8)
    assert set(spec.paths) == {'h2h', 'l2l'}
    assert spec.paths['h2h'].groups == 6 and spec.paths['l2l'].groups == 2
    assert spec.weight_shape('h2h') == (6, 1, 3, 3)
    _check(spec, (9, 9), 1, stride)


def test_bias_sits_on_the_path_from_high():
    spec = plan_octave_conv('biased', (4, 4), (4, 4), 1, use_bias=True)
    assert {p: s.use_bias for p, s in spec.paths.items()} == {
        'h2h': True, 'h2l': True, 'l2h': False, 'l2l': False}
    _check(spec, (6, 6), 0, 1)
    only_low = plan_octave_conv('from_low', (0, 4), (4, 4), 1, use_bias=True)
    assert only_low.paths['l2h'].use_bias and only_low.paths['l2l'].use_bias


def test_disabled_cross_paths_are_left_out():
    spec = plan_octave_conv('no_cross', (4, 4), (4, 4), 3, pad=1, enable=('h2h', 'l2l'))
    assert set(spec.paths) == {'h2h', 'l2l'}
    _check(spec, (8, 8), 1, 1)


@pytest.mark.parametrize('stride', [1, 2])
def test_ratio_zero_equals_a_plain_convolution(stride):
    c_in, c_out = split_channels(8, 0.), split_channels(6, 0.)
    assert c_in == (8, 0) and c_out == (6, 0)
    spec = plan_octave_conv('r0', c_in, c_out, 3, stride=stride, pad=1)
    x = RNG.randn(2, 8, 10, 10)
    w = RNG.randn(6, 8, 3, 3)
    y_h, y_l = octave_conv(mx.nd, spec, _nd(x), None, {'h2h': (_nd(w), None)})
    assert y_l is None
    if stride == 1:
        plain = mx.nd.Convolution(_nd(x), _nd(w), kernel=(3, 3), pad=(1, 1), num_filter=6,
                                  no_bias=True)
    else:
        plain = mx.nd.Convolution(mx.nd.Pooling(_nd(x), kernel=(2, 2), stride=(2, 2),
                                                pool_type='avg'),
                                  _nd(w), kernel=(3, 3), pad=(1, 1), num_filter=6, no_bias=True)
    np.testing.assert_allclose(y_h.asnumpy(), plain.asnumpy(), rtol=1e-12)


def test_symbol_graph_equals_ndarray_graph():
    spec = plan_octave_conv('sym', (6, 2), (4, 4), 3, stride=1, pad=1, use_bias=True)
    x_h, x_l = _inputs(spec.in_channels, (9, 7))
    _, _, params = _random_params(spec)
    want = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    variables = {path: (mx.sym.var(path + '_w'), None if b is None else mx.sym.var(path + '_b'))
                 for path, (_, b) in params.items()}
    graph = mx.sym.Group(list(octave_conv(mx.sym, spec, mx.sym.var('xh'), mx.sym.var('xl'),
                                          variables)))
    feed = {'xh': _nd(x_h), 'xl': _nd(x_l)}
    for path, (w, b) in params.items():
        feed[path + '_w'] = w
        if b is not None:
            feed[path + '_b'] = b
    outs = graph.bind(mx.cpu(), feed).forward()
    for got, expected in zip(outs, want):
        np.testing.assert_allclose(got.asnumpy(), expected.asnumpy(), rtol=1e-12)


def test_numeric_gradient_of_an_octave_layer():
    spec = plan_octave_conv('grad', (3, 2), (2, 2), 3, stride=1, pad=1)
    variables = {path: (mx.sym.var(path + '_weight'), None) for path in spec.paths}
    y_h, y_l = octave_conv(mx.sym, spec, mx.sym.var('xh'), mx.sym.var('xl'), variables)
    loss = mx.sym.sum(y_h * y_h) + mx.sym.sum(mx.sym.sin(y_l))
    location = {'xh': RNG.randn(1, 3, 5, 5), 'xl': RNG.randn(1, 2, 3, 3)}
    for path in spec.paths:
        location[path + '_weight'] = RNG.randn(*spec.weight_shape(path))
    mx.test_utils.check_numeric_gradient(loss, location, numeric_eps=1e-4, rtol=1e-2,
                                         atol=1e-3, dtype=np.float64)


def test_octave_dense_matches_matrix_products():
    spec = plan_octave_dense('fc', (6, 2), (3, 0), use_bias=True)
    assert set(spec.paths) == {'h2h', 'l2h'}
    x_h, x_l = RNG.randn(4, 6, 1, 1), RNG.randn(4, 2, 1, 1)
    weights, biases, params = _random_params(spec)
    y_h, y_l = octave_dense(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    want = x_h[:, :, 0, 0] @ weights['h2h'].T + biases['h2h'] + x_l[:, :, 0, 0] @ weights['l2h'].T
    assert y_l is None
    np.testing.assert_allclose(y_h.asnumpy(), want, rtol=1e-12)


@pytest.mark.parametrize('size', [8, 9, 10, 11, 50, 51])
def test_octave_pool_keeps_low_at_half_of_high(size):
    x_h, x_l = RNG.randn(1, 2, size, size), RNG.randn(1, 2, -(-size // 2), -(-size // 2))
    y_h, y_l = octave_pool(mx.nd, _nd(x_h), _nd(x_l), kernel=(2, 2), stride=(2, 2),
                           pool_type='avg')
    assert y_h.shape[2] == size // 2
    assert y_l.shape[2] == -(-y_h.shape[2] // 2)
    # the low map pooled with whole or border windows, then cropped
    np.testing.assert_allclose(y_l.asnumpy(), ref.avgpool2(x_l)[:, :, :y_l.shape[2], :y_l.shape[3]],
                               rtol=1e-12)


def _maxpool3_full(x):
    """3x3 stride-2 max pooling, no padding, ceil ('full') convention, windows cut at the
    edge: (N, C, H, W) -> (N, C, ceil((H - 3) / 2) + 1, ...)."""
    out_h, out_w = -(-(x.shape[2] - 3) // 2) + 1, -(-(x.shape[3] - 3) // 2) + 1
    out = np.empty(x.shape[:2] + (out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(2, 3))
    return out


@pytest.mark.parametrize('size', [27, 28, 29, 30, 31, 50, 51])
def test_an_unpadded_3x3_pooling_keeps_low_at_half_of_high(size):
    """SqueezeNet's pooling (3x3, stride 2, no padding, ceil): the low map, edge-extended by
    one row and column, comes out at half the high map on every size."""
    x_h, x_l = RNG.randn(1, 2, size, size), RNG.randn(1, 2, -(-size // 2), -(-size // 2))
    y_h, y_l = octave_pool(mx.nd, _nd(x_h), _nd(x_l), kernel=(3, 3), stride=(2, 2),
                           pool_type='max', pooling_convention='full')
    np.testing.assert_allclose(y_h.asnumpy(), _maxpool3_full(x_h), rtol=1e-12)
    assert y_l.shape[2:] == (-(-y_h.shape[2] // 2),) * 2
    extended = np.pad(x_l, ((0, 0), (0, 0), (0, 1), (0, 1)), mode='edge')
    np.testing.assert_allclose(y_l.asnumpy(),
                               _maxpool3_full(extended)[:, :, :y_l.shape[2], :y_l.shape[3]],
                               rtol=1e-12)


# Layers that change the map's size, and the geometry of their other paths worked out by hand
# (padding, first pixel kept): positions in high-input pixels, the low input starting at 1/2
# with spacing 2; each path starts where the output part it adds to starts, to the nearest
# pixel (a tie rounds up).
GENERAL = [
    # unpadded 3x3: the output starts at pixel 1; the low output at 1.5 (spacing 2)
    ((3, 1, 0), {'l2h': (1, 1), 'h2l': (1, 1), 'l2l': (1, 1)}),
    # ConvNeXt's 2x2, stride 2: the output starts at 0.5 (spacing 2), its low part at 1.5
    # (spacing 4); an even kernel padded by 1 starts half a window early
    ((2, 2, 0), {'l2h': (1, 1), 'h2l': (1, 1), 'l2l': (1, 1)}),
    ((4, 2, 1), {'l2h': (2, 1), 'h2l': (2, 1), 'l2l': (2, 1)}),
    # Inception's unpadded 3x3, stride 2: output at 1 (spacing 2), its paths at 0.5
    ((3, 2, 0), {'l2h': (1, 0), 'h2l': (1, 0), 'l2l': (1, 0)}),
    ((5, 1, 0), {'l2h': (2, 2), 'h2l': (2, 1), 'l2l': (2, 1)}),
]


@pytest.mark.parametrize('layer, geometry', GENERAL)
@pytest.mark.parametrize('size', [(9, 9), (12, 16), (7, 11), (13, 6)])
def test_a_layer_that_changes_the_size_matches_the_general_form(layer, geometry, size):
    kernel, stride, pad = layer
    spec = plan_octave_conv('downsample', (6, 2), (5, 3), kernel, stride=stride, pad=pad)
    assert {path: (g.pad[0], g.begin[0]) for path, g in spec.geometry.items()} == geometry
    x_h, x_l = _inputs(spec.in_channels, size)
    weights, _, params = _random_params(spec)
    want_h, want_l = ref.octave_conv_general(x_h, x_l, weights, stride, pad, geometry)
    got_h, got_l = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    # the plain convolution's output size, and its low part at half of it
    assert got_h.shape[2:] == tuple((s + 2 * pad - kernel) // stride + 1 for s in size)
    np.testing.assert_allclose(got_h.asnumpy(), want_h, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_l.asnumpy(), want_l, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('stride', [1, 2])
def test_the_one_pixel_graph_halves_a_pixel_and_equals_the_other_elsewhere(stride):
    spec = plan_octave_conv('tiny', (6, 2), (5, 3), 3, stride=stride, pad=1)
    _, _, params = _random_params(spec)
    one_pixel = graph_options(one_pixel_maps=True)
    for size in [(1, 1), (1, 3), (2, 2), (5, 8), (7, 9)]:
        x_h, x_l = _inputs(spec.in_channels, size)
        got = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params, graph=one_pixel)
        if min(size) > 2:     # where no map is 1 pixel, the first graph's numbers
            for part, want in zip(got, octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)):
                np.testing.assert_allclose(part.asnumpy(), want.asnumpy(), rtol=1e-12)
        else:         # a 1-pixel side halves to itself: the paper's numpy form says the same
            want = ref.octave_conv(x_h, x_l, {p: w.asnumpy() for p, (w, _) in params.items()},
                                   pad=1, stride=stride,
                                   groups={p: s.groups for p, s in spec.paths.items()})
            for part, expected in zip(got, want):
                np.testing.assert_allclose(part.asnumpy(), expected, rtol=1e-10)


@pytest.mark.parametrize('kwargs,message', [
    (dict(in_channels=(112, 16), channels=(112, 16), kernel=3, groups=32), 'path h2h: groups=32'),
    (dict(in_channels=(4, 4), channels=(4, 4), kernel=3, stride=3), 'stride 1 or 2'),
    (dict(in_channels=(4, 4), channels=(2, 2), kernel=3, groups=8), 'depthwise'),
    (dict(in_channels=(0, 0), channels=(2, 2), kernel=1), 'no input channels'),
    (dict(in_channels=(4, 4), channels=(4, 4), kernel=1, enable=('x2y',)), 'unknown paths'),
])
def test_bad_layers_raise_value_errors_naming_the_layer(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        plan_octave_conv('stage3_unit1', **kwargs)
    assert 'stage3_unit1' in str(err.value)


def test_missing_input_part_is_reported():
    spec = plan_octave_conv('needs_low', (4, 4), (4, 4), 1)
    with pytest.raises(ValueError, match='needs_low: the low input is missing'):
        octave_conv(mx.nd, spec, mx.nd.ones((1, 4, 4, 4)), None, {})


@pytest.mark.parametrize('ratio', [1.0, 1.5, -0.5, '0.5', True])
def test_split_rejects_bad_ratios(ratio):
    with pytest.raises(ValueError, match='ratio'):
        split_channels(64, ratio)


def test_split_follows_the_paper():
    assert split_channels(64, np.float32(0.25)) == (48, 16)          # numpy's numbers too
    assert split_channels(64, 0.125) == (56, 8)
    assert split_channels(64, 0.5) == (32, 32)
    assert split_channels(100, 0.375) == (63, 37)
    assert split_channels(64, -1) == (64, 0)


# Video (3-D: time, height, width; the low part keeps every frame) and signals (1-D).
ND_LAYERS = [((3, 3, 3), (1, 1, 1), (1, 1, 1)), ((3, 3, 3), (1, 1, 1), (1, 2, 2)),
             ((3, 1, 1), (1, 0, 0), (2, 1, 1)), ((1, 3, 3), (0, 1, 1), (2, 2, 2)),
             ((3,), (1,), (1,)), ((3,), (1,), (2,)), ((1,), (0,), (2,))]


@pytest.mark.parametrize('kernel, pad, stride', ND_LAYERS)
@pytest.mark.parametrize('odd', [False, True])
def test_video_and_signal_layers_match_eq4(kernel, pad, stride, odd):
    dims = len(kernel)
    axes = (1, 2) if dims == 3 else (0,)
    spatial = (5, 8 + odd, 7 + odd) if dims == 3 else (12 + odd,)
    low = tuple(-(-n // 2) if a in axes else n for a, n in enumerate(spatial))
    spec = plan_octave_conv('video', (6, 2), (5, 3), kernel, stride=stride, pad=pad)
    assert set(spec.paths) == {'h2h', 'h2l', 'l2h', 'l2l'} and spec.geometry is None
    x_h, x_l = RNG.randn(2, 6, *spatial), RNG.randn(2, 2, *low)
    weights, _, params = _random_params(spec)
    want_h, want_l = ref.octave_conv_nd(x_h, x_l, weights, pad, stride, axes)
    got_h, got_l = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    np.testing.assert_allclose(got_h.asnumpy(), want_h, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_l.asnumpy(), want_l, rtol=1e-10, atol=1e-10)
    # every frame in both parts; the low part at half the high part where it halves
    high = got_h.shape[2:]
    assert got_l.shape[2:] == tuple(-(-n // 2) if a in axes else n for a, n in enumerate(high))


def test_a_video_layer_that_changes_the_size_keeps_its_time_axis():
    spec = plan_octave_conv('stem', (6, 2), (4, 4), (3, 3, 3), stride=(1, 1, 1), pad=(1, 0, 0))
    assert spec.geometry['l2h'].pad[0] == 1 and spec.geometry['l2h'].begin[0] == 0
    x_h, x_l = RNG.randn(1, 6, 4, 9, 9), RNG.randn(1, 2, 4, 5, 5)
    _, _, params = _random_params(spec)
    got_h, got_l = octave_conv(mx.nd, spec, _nd(x_h), _nd(x_l), params)
    assert got_h.shape[2:] == (4, 7, 7) and got_l.shape[2:] == (4, 4, 4)
