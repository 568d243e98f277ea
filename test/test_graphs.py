"""The optimized graph computes what the straightforward one does, on every network.

For every Gluon model and every Symbol network, at a size where every map is
even (the optimized graph drops its crops there) and at an odd size (crops
kept): inference outputs in float32 (MKLDNN kernels) agree element by element,
and the gradients of a training step (batch statistics) with respect to the
input and to every parameter agree in float64. Float64 runs MXNet's reference
kernels, so the comparison checks the graphs' arithmetic, not rounding: in
float32, with batch statistics over 2 images of 2x2 pixels in the last stage,
rounding alone moves some gradients by 10% in either graph.
"""
import mxnet as mx
import numpy as np
import pytest

from conftest import ops_of, small_model
from octconv.gluon import get_model, get_model_list
from octconv.symbol import get_linear, list_networks
from octconv.train.fit import default_initializers
from octconv.utils import flops
from octconv.utils.octave import Graph, crops_are_noops

EVEN, ODD = (64, 64), (45, 51)
RTOL, ATOL = 1e-5, 1e-6
GRAD_RTOL = 1e-9


def _initialise(net, x, seed):
    """Xavier weights, random BatchNorm scales, shifts and statistics (after a first pass
    has settled the shapes), so that every parameter matters and values stay O(1)."""
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(magnitude=2))
    net(x)
    rng = np.random.RandomState(seed)
    for name, param in sorted(net.collect_params().items()):
        if name.endswith(('running_var', 'moving_var')):
            param.set_data(rng.uniform(0.5, 1.5, param.shape))
        elif name.endswith(('running_mean', 'moving_mean', 'beta', 'bias')):
            param.set_data(rng.uniform(-0.1, 0.1, param.shape))
        elif name.endswith('gamma'):
            param.set_data(rng.uniform(0.8, 1.2, param.shape))


def _in_graph(net, graph):
    """A Gluon model set to build ``graph`` (a SymbolBlock's graph is fixed when built)."""
    if hasattr(net, 'set_graph'):
        net.set_graph(graph)
    return net


def _infer(net, x, graph):
    return _in_graph(net, graph)(x).asnumpy()


def _gradients(net, x, graph):
    """(input gradient, {parameter: gradient}) of a training step, ``net`` cast to float64."""
    _in_graph(net, graph).cast('float64')
    x = x.astype('float64')
    x.attach_grad()
    with mx.autograd.record():
        out = net(x)
        weights = mx.nd.arange(out.size, dtype=out.dtype).reshape(out.shape) / out.size
        loss = (out * weights).sum()
    loss.backward()
    grads = {name: p.grad().asnumpy() for name, p in net.collect_params().items()
             if p.grad_req != 'null'}
    net.cast('float32')
    return x.grad.asnumpy(), grads


def _close(got, want):
    """Largest difference relative to the largest value of ``want``."""
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def _assert_same(optimized, straightforward, what):
    """Each is (float32 inference output, float64 input gradient, {parameter: gradient})."""
    np.testing.assert_allclose(optimized[0], straightforward[0], RTOL, ATOL,
                               err_msg='%s: outputs differ' % what)
    assert _close(optimized[1], straightforward[1]) < GRAD_RTOL, \
        '%s: input gradients differ by %g' % (what, _close(optimized[1], straightforward[1]))
    assert optimized[2].keys() == straightforward[2].keys()
    worst = max((_close(optimized[2][k], straightforward[2][k]), k) for k in optimized[2])
    assert worst[0] < GRAD_RTOL, '%s: gradients of %s differ by %g' % (what, worst[1], worst[0])


def _smallest_of_each_family():
    """One model per family: the members of a family (DenseNet-121..201, MobileNet widths)
    share their code and differ only in depth or width; the first name is the smallest."""
    families = {}
    for name in sorted(get_model_list()):
        family = ('densenet' if name.startswith('densenet') else
                  name.rsplit('_', 1)[0] if name.startswith('mobilenet') else name)
        families.setdefault(family, name)
    return sorted(families.values())


@pytest.mark.parametrize('name', _smallest_of_each_family())
def test_gluon_optimized_graph_equals_the_straightforward_one(name):
    net = small_model(name, ratio=0.25, classes=10)
    _initialise(net, mx.nd.zeros((1, 3) + EVEN), seed=len(name))
    net.hybridize()
    # DenseNet's stem max-pool (3x3, stride 2, pad 1) halves its low part exactly: no crop
    for size, crop_free in ((EVEN, True), (ODD, False)):
        x = mx.nd.random.uniform(-1, 1, shape=(2, 3) + size)
        optimized = [_infer(net, x, 'optimized')]
        assert net._graph == Graph('optimized', crop_free), (name, size)
        straightforward = [_infer(net, x, 'straightforward')]
        assert net._graph == Graph('straightforward', False)
        optimized += _gradients(net, x, 'optimized')
        straightforward += _gradients(net, x, 'straightforward')
        _assert_same(optimized, straightforward, '%s at %s' % (name, size))


def _symbol_networks():
    return [(network, min(depths)) for network, depths in sorted(list_networks().items())]


@pytest.mark.parametrize('network,depth', _symbol_networks())
def test_symbol_optimized_graph_equals_the_straightforward_one(network, depth):
    for size in (EVEN, ODD):
        shape = (2, 3) + size
        plain = get_linear(network, depth, num_classes=10, ratio=0.25, graph='straightforward')
        fast = get_linear(network, depth, num_classes=10, ratio=0.25, data_shape=shape)
        assert ('slice_like' in ops_of(fast)) == (size == ODD), (network, size)
        assert 'slice_like' in ops_of(plain)
        assert sorted(plain.list_arguments()) == sorted(fast.list_arguments())
        assert plain.list_auxiliary_states() == fast.list_auxiliary_states()
        x = mx.nd.random.uniform(-1, 1, shape=shape)
        results, values = [], None
        for symbol, graph in ((fast, 'optimized'), (plain, 'straightforward')):
            net = mx.gluon.SymbolBlock(symbol, mx.sym.var('data'))
            default_initializers(net)
            _initialise(net, x, seed=depth)
            if values is None:
                values = {k: p.data().copy() for k, p in net.collect_params().items()}
            else:                                # the same values, whatever the order
                for k, p in net.collect_params().items():
                    p.set_data(values[k])
            results.append([_infer(net, x, graph)] + list(_gradients(net, x, graph)))
        _assert_same(results[0], results[1], '%s-%d at %s' % (network, depth, size))


def test_graph_modes_count_the_same_flops():
    shape = (1, 3, 224, 224)
    for name in ('resnet152_v1f', 'mobilenet_v2_100'):
        counts = []
        for graph in ('optimized', 'straightforward'):
            counts.append(flops.count_block(_in_graph(get_model(name, ratio=0.125), graph),
                                            shape))
        assert counts[0].flops == counts[1].flops and counts[0].params == counts[1].params
    plain = flops.count_symbol(get_linear('resnetv2', 50, ratio=0.25, graph='straightforward'),
                               shape)
    fast = flops.count_symbol(get_linear('resnetv2', 50, ratio=0.25, data_shape=shape), shape)
    assert fast.flops == plain.flops


def test_optimized_graph_uses_mkldnn_friendly_operators():
    plain = ops_of(get_linear('resnetv2', 26, ratio=0.5, graph='straightforward'))
    fast = ops_of(get_linear('resnetv2', 26, ratio=0.5, data_shape=(1, 3, 224, 224)))
    assert 'add_n' in plain and 'add_n' not in fast and 'elemwise_add' in fast
    assert plain.count('slice_like') > 0 and fast.count('slice_like') == 0
    net = get_model('resnet50_v1b', ratio=0.5)
    net.initialize()
    traced = ops_of(net(mx.sym.var('data')))
    assert 'relu' not in traced and 'Activation' in traced
    net.set_graph('straightforward')
    assert 'relu' in ops_of(net(mx.sym.var('data')))


def test_crops_are_noops_follows_the_sizes():
    symbol = get_linear('resnetv2', 26, ratio=0.5)
    assert crops_are_noops(symbol, (1, 3, 224, 224))
    assert not crops_are_noops(symbol, (1, 3, 225, 224))
    assert not crops_are_noops(symbol, (1, 3, 96, 200))      # 200 / 4 / 2 / 2 / 2 is odd
    assert crops_are_noops(mx.sym.Convolution(mx.sym.var('data'), num_filter=2, kernel=(1, 1)),
                           (1, 3, 5, 5))


def test_export_keeps_crops_unless_given_a_size(tmp_path):
    net = get_model('resnet50_v1b', ratio=0.25, classes=5)
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 3) + EVEN))                          # cached graph without crops
    net.export(str(tmp_path / 'any'))
    net.export(str(tmp_path / 'even'), data_shape=(1, 3) + EVEN)
    general = mx.sym.load(str(tmp_path / 'any-symbol.json'))
    special = mx.sym.load(str(tmp_path / 'even-symbol.json'))
    assert 'slice_like' in ops_of(general) and 'slice_like' not in ops_of(special)
    x = mx.nd.random.uniform(shape=(1, 3) + ODD)
    imported = mx.gluon.SymbolBlock.imports(str(tmp_path / 'any-symbol.json'), ['data'],
                                            str(tmp_path / 'any-0000.params'))
    np.testing.assert_allclose(imported(x).asnumpy(), net(x).asnumpy(), RTOL, ATOL)


def test_unknown_graph_modes_are_refused_and_nothing_else_changes_a_build():
    with pytest.raises(ValueError, match='graph must be one of optimized, straightforward'):
        get_model('resnet50_v1b', ratio=0.25).set_graph('fast')
    with pytest.raises(ValueError, match='graph must be one of optimized, straightforward'):
        get_linear('resnetv2', 26, ratio=0.25, graph='fast')
    # the graph is an argument: a straightforward build leaves the next build optimized
    get_linear('resnetv2', 26, ratio=0.25, graph='straightforward')
    assert 'elemwise_add' in ops_of(get_linear('resnetv2', 26, ratio=0.25))


@pytest.mark.parametrize('name', ['densenet121', 'symbol densenet-121'])
def test_hybridized_float32_training_step_of_densenets(name):
    """MKLDNN's backward of a 4-d channel concat fails on octave channel counts ("could not
    construct a sub-memory"); the concatenation in ``concat_channels`` avoids it."""
    if name.startswith('symbol'):
        net = mx.gluon.SymbolBlock(get_linear('densenet', 121, num_classes=10, ratio=0.25),
                                   mx.sym.var('data'))
        default_initializers(net)
    else:
        net = get_model(name, ratio=0.25, classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    x.attach_grad()
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()
    assert np.isfinite(x.grad.asnumpy()).all() and np.abs(x.grad.asnumpy()).max() > 0
