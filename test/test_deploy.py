"""Inference rewrites and ONNX exports: the same outputs, fewer or faster operators."""
import warnings

import mxnet as mx
import numpy as np
import pytest

from conftest import ops_of, small_model, small_octave_cnn
from octconv.symbol import get_linear
from octconv.train.models import build_model
from octconv.utils.deploy import (drop_noop_crops, fold_batchnorm, for_inference,
                                  merge_summed_convolutions, pooling_as_convolution,
                                  upsampling_as_deconvolution, upsampling_first)
from octconv.utils.onnx_export import export_onnx, int8_graph, onnx_weights_as_constants


def _randomised(params, seed=0):
    """Random BatchNorm statistics, scales and shifts, so that folding has work to do."""
    rng = np.random.RandomState(seed)
    out = {}
    for name, value in params.items():
        if name.endswith(('running_var', 'moving_var')):
            value = rng.uniform(0.5, 1.5, value.shape)
        elif name.endswith(('running_mean', 'moving_mean', 'beta')):
            value = rng.uniform(-0.2, 0.2, value.shape)
        elif name.endswith('gamma'):
            value = rng.uniform(0.5, 1.5, value.shape)
        else:
            value = value.asnumpy()
        out[name] = mx.nd.array(value)
    return out


def _exported(name, data_shape, tmp_path, **kwargs):
    net = small_model(name, ratio=0.25, classes=10, **kwargs)
    net.initialize(mx.init.Xavier())
    prefix = str(tmp_path / name)
    net.export(prefix, data_shape=data_shape)
    params = {k.split(':', 1)[1]: v for k, v in mx.nd.load(prefix + '-0000.params').items()}
    return mx.sym.load(prefix + '-symbol.json'), _randomised(params)


def _run(symbol, params, x):
    net = mx.gluon.SymbolBlock(symbol, mx.sym.var('data'))
    for name, param in net.collect_params().items():
        param._load_init(params[name], mx.cpu())
    return net(x).asnumpy()


def _assert_close(got, want):
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), np.abs(got - want).max()


@pytest.mark.parametrize('name,size', [('resnet50_v1b', (64, 64)), ('resnet50_v1b', (45, 51)),
                                       ('resnet152_v1f', (64, 64)), ('mobilenet_v2_100', (45, 51)),
                                       ('densenet121', (64, 64))])
def test_folded_gluon_models_give_the_same_outputs(name, size, tmp_path):
    shape = (2, 3) + size
    symbol, params = _exported(name, shape, tmp_path)
    x = mx.nd.random.uniform(-1, 1, shape=shape)
    want = _run(symbol, params, x)
    folded, folded_params, names = fold_batchnorm(symbol, params)
    batchnorms = ops_of(symbol).count('BatchNorm')
    assert names and ops_of(folded).count('BatchNorm') == batchnorms - len(names)
    if name.startswith('resnet'):            # post-activation: every BatchNorm follows convs
        assert ops_of(folded).count('BatchNorm') == 0
    assert set(folded_params) == set(folded.list_arguments() +
                                     folded.list_auxiliary_states()) - {'data'}
    _assert_close(_run(folded, folded_params, x), want)
    rewritten, rewritten_params, names = upsampling_as_deconvolution(folded, folded_params)
    assert len(names) == ops_of(folded).count('UpSampling') > 0
    assert 'UpSampling' not in ops_of(rewritten)
    _assert_close(_run(rewritten, rewritten_params, x), want)
    moved_symbol, moved_params, moved = upsampling_first(rewritten, rewritten_params)
    np.testing.assert_array_equal(_run(moved_symbol, moved_params, x),
                                  _run(rewritten, rewritten_params, x))
    merged_symbol, merged_params, merged = merge_summed_convolutions(
        moved_symbol, moved_params, shape)
    adds = ops_of(moved_symbol).count('elemwise_add')
    assert ops_of(merged_symbol).count('elemwise_add') == adds - len(merged)
    assert ops_of(merged_symbol).count('Concat') - ops_of(moved_symbol).count('Concat') \
        == len(merged)
    if name.startswith('resnet'):
        # ratio 0.25: every bottleneck's last low-to-high path (16 in, 48 out at the
        # first stage) moves its upsampling; every sum of two paths merges
        assert moved and all(n.endswith('conv3-l2h') for n in moved)
        assert len(merged) > 2 * len(moved)
    _assert_close(_run(merged_symbol, merged_params, x), want)
    _assert_close(for_inference(symbol, params, shape)(x).asnumpy(), want)


def test_for_inference_keeps_the_fastest_of_its_graphs(tmp_path):
    shape = (1, 3, 45, 51)
    symbol, params = _exported('resnet50_v1b', shape, tmp_path)
    x = mx.nd.random.uniform(-1, 1, shape=shape)
    want = _run(symbol, params, x)
    auto = for_inference(symbol, params, shape)
    times = auto.inference_times
    assert set(times) == {'unmerged', 'upsampling-first', 'merged'}
    assert auto.inference_graph == min(times, key=times.get) and min(times.values()) > 0
    _assert_close(auto(x).asnumpy(), want)
    for merge, graph in ((False, 'unmerged'), (True, 'merged')):
        net = for_inference(symbol, params, shape, merge=merge)
        assert net.inference_graph == graph and net.inference_times == {}
        _assert_close(net(x).asnumpy(), want)
    untimed = for_inference(symbol, params)       # no data_shape: nothing to time with
    assert untimed.inference_graph == 'unmerged' and untimed.inference_times == {}
    _assert_close(untimed(x).asnumpy(), want)
    with pytest.raises(ValueError, match='merge must be'):
        for_inference(symbol, params, shape, merge='yes')


def test_folding_a_symbol_network_keeps_its_pre_activation_batchnorms():
    shape = (2, 3, 64, 64)
    symbol = get_linear('resnetv2', 26, num_classes=10, ratio=0.5, data_shape=shape)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=shape)
    rng = np.random.RandomState(1)
    params = {n: mx.nd.array(rng.uniform(-0.1, 0.1, s)) for n, s in
              zip(symbol.list_arguments(), arg_shapes) if n != 'data'}
    params.update({n: mx.nd.array(rng.uniform(0.5, 1.5, s)) for n, s in
                   zip(symbol.list_auxiliary_states(), aux_shapes)})
    params = _randomised(params)
    x = mx.nd.random.uniform(-1, 1, shape=shape)
    folded, folded_params, names = fold_batchnorm(symbol, params)
    # Pre-activation: the BatchNorms before conv2 and conv3 follow convolutions and fold;
    # the one before conv1 reads the sum with the shortcut and stays.
    assert any(name.endswith('conv2_bn-h') for name in names)
    assert not any(name.endswith(('conv1_bn-h', 'conv1_bn-l')) for name in names)
    _assert_close(_run(folded, folded_params, x), _run(symbol, params, x))
    _assert_close(for_inference(symbol, params, shape)(x).asnumpy(), _run(symbol, params, x))


def test_a_convolution_read_elsewhere_is_not_folded():
    data = mx.sym.var('data')
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True,
                              name='c')
    bn = mx.sym.BatchNorm(conv, fix_gamma=False, name='bn')
    both = mx.sym.Group([bn, conv])               # the raw convolution is an output too
    params = _randomised({'c_weight': mx.nd.ones((4, 3, 3, 3)), 'bn_gamma': mx.nd.ones(4),
                          'bn_beta': mx.nd.zeros(4), 'bn_moving_mean': mx.nd.zeros(4),
                          'bn_moving_var': mx.nd.ones(4)})
    folded, _, names = fold_batchnorm(both, params)
    assert names == [] and ops_of(folded).count('BatchNorm') == 1
    alone, alone_params, names = fold_batchnorm(bn, params)
    assert names == ['bn'] and 'c_bias' in alone_params
    x = mx.nd.random.uniform(shape=(1, 3, 5, 5))
    _assert_close(_run(alone, alone_params, x), _run(bn, params, x))


@pytest.mark.parametrize('scale', [2, 3])
def test_upsampling_as_deconvolution_repeats_each_pixel(scale):
    data = mx.sym.var('data')
    conv = mx.sym.Convolution(data, num_filter=5, kernel=(1, 1), name='c')
    up = mx.sym.UpSampling(conv, scale=scale, sample_type='nearest', num_args=1, name='up')
    rng = np.random.RandomState(scale)
    params = {'c_weight': mx.nd.array(rng.uniform(-1, 1, (5, 3, 1, 1))),
              'c_bias': mx.nd.array(rng.uniform(-1, 1, 5))}
    rewritten, new_params, names = upsampling_as_deconvolution(up, params)
    assert names == ['up']
    assert [op for op in ops_of(rewritten) if op != 'null'] == ['Convolution', 'Deconvolution']
    assert new_params['up_weight'].shape == (5, 1, scale, scale)
    x = mx.nd.random.uniform(shape=(2, 3, 4, 7))
    conv_out = _run(conv, params, x)
    want = conv_out.repeat(scale, axis=2).repeat(scale, axis=3)     # numpy nearest upsampling
    np.testing.assert_array_equal(_run(rewritten, new_params, x), want)


@pytest.mark.parametrize('size, dropped', [(32, True), (33, False)])
def test_crops_that_change_nothing_are_dropped(size, dropped):
    # a Symbol network built for every input size crops each upsampled map
    symbol = get_linear('resnetv2', 26, num_classes=10, ratio=0.25)
    shape = (2, 3, size, size)
    params = _random_params(symbol, shape)
    _, _, aux_shapes = symbol.infer_shape(data=shape)          # running means and variances
    params.update({n: mx.nd.array(np.random.RandomState(1).uniform(0.5, 1.5, s))
                   for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)})
    assert 'slice_like' in ops_of(symbol)
    cropped, cropped_params, names = drop_noop_crops(symbol, params, shape)
    assert bool(names) == dropped and ('slice_like' in ops_of(cropped)) != dropped
    x = mx.nd.array(np.random.RandomState(2).uniform(-1, 1, shape))
    np.testing.assert_array_equal(_run(cropped, cropped_params, x), _run(symbol, params, x))


@pytest.mark.parametrize('size', [2, 3])
def test_pooling_as_convolution_averages_each_window(size):
    data = mx.sym.var('data')
    pooled = mx.sym.Pooling(data, kernel=(size, size), stride=(size, size), pool_type='avg',
                            pooling_convention='full', name='pool')
    shape = (2, 5, 6, 12)
    rewritten, params, names = pooling_as_convolution(pooled, {}, shape)
    assert names == ['pool'] and ops_of(rewritten).count('Convolution') == 1
    assert params['pool_weight'].shape == (5, 1, size, size)
    x = np.random.RandomState(size).uniform(-1, 1, shape)
    # numpy: the mean of each size x size window
    want = x.reshape(2, 5, 6 // size, size, 12 // size, size).mean(axis=(3, 5))
    np.testing.assert_allclose(_run_on(rewritten, params, x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', ['odd side', 'padded', 'max', 'global', 'stride 1'])
def test_pooling_that_is_not_a_whole_window_average_stays(case):
    kwargs = dict(kernel=(2, 2), stride=(2, 2), pool_type='avg', pooling_convention='full')
    kwargs.update({'padded': dict(pad=(1, 1)), 'max': dict(pool_type='max'),
                   'global': dict(global_pool=True), 'stride 1': dict(stride=(1, 1))}.get(case, {}))
    pooled = mx.sym.Pooling(mx.sym.var('data'), name='pool', **kwargs)
    shape = (1, 3, 7 if case == 'odd side' else 8, 8)
    rewritten, _, names = pooling_as_convolution(pooled, {}, shape)
    assert names == [] and ops_of(rewritten).count('Pooling') == 1


def _conv(data, name, num_filter=4, kernel=(3, 3), pad=(1, 1), stride=(1, 1)):
    return mx.sym.Convolution(data, num_filter=num_filter, kernel=kernel, pad=pad,
                              stride=stride, name=name)


def _random_params(symbol, data_shape, seed=0):
    arg_shapes, _, _ = symbol.infer_shape(data=data_shape)
    rng = np.random.RandomState(seed)
    return {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(symbol.list_arguments(), arg_shapes) if n != 'data'}


def _run_on(symbol, params, x):
    args = dict(params, data=mx.nd.array(x))
    return symbol.bind(mx.cpu(), args).forward()[0].asnumpy()


def test_merged_convolutions_compute_the_sum_of_both():
    data = mx.sym.var('data')
    total = mx.sym.elemwise_add(_conv(data, 'ca'), _conv(mx.sym.Activation(data, act_type='relu'),
                                                        'cb'), name='total')
    shape = (2, 3, 6, 5)
    params = _random_params(total, shape)
    x = np.random.RandomState(1).uniform(-1, 1, shape)
    merged, merged_params, names = merge_summed_convolutions(total, params, shape)
    assert names == ['total']
    assert [op for op in ops_of(merged) if op != 'null'] == ['Activation', 'Concat', 'Convolution']
    assert merged_params['total_weight'].shape == (4, 6, 3, 3)
    # numpy: both convolutions' outputs, by the definition of a 3x3 convolution, summed
    want = 0
    for name, inputs in (('ca', x), ('cb', np.maximum(x, 0))):
        padded = np.pad(inputs, ((0, 0), (0, 0), (1, 1), (1, 1)))
        weight = params[name + '_weight'].asnumpy()
        out = np.zeros((2, 4, 6, 5))
        for i in range(3):
            for j in range(3):
                out += np.einsum('nchw,oc->nohw', padded[:, :, i:i + 6, j:j + 5],
                                 weight[:, :, i, j])
        want = want + out + params[name + '_bias'].asnumpy()[None, :, None, None]
    np.testing.assert_allclose(_run_on(merged, merged_params, x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case', ['other kernel', 'read elsewhere',
                                  'other input size', 'read by a BatchNorm'])
def test_convolutions_that_differ_are_not_merged(case):
    data = mx.sym.var('data')
    shape = (1, 3, 8, 8)
    other = mx.sym.Activation(data, act_type='relu')
    first, second = _conv(data, 'ca'), _conv(other, 'cb')
    if case == 'other kernel':                  # 3x3 padded and 1x1: both 8x8
        second = _conv(other, 'cb', kernel=(1, 1), pad=(0, 0))
    elif case == 'other input size':            # stride 2 on 8x8 and on 7x7: both 4x4
        first = _conv(data, 'ca', stride=(2, 2))
        cropped = mx.sym.slice(other, begin=(None, None, 0, 0), end=(None, None, 7, 7))
        second = _conv(cropped, 'cb', stride=(2, 2))
    total = mx.sym.elemwise_add(first, second, name='total')
    if case == 'read elsewhere':
        total = mx.sym.Group([total, second])
    if case == 'read by a BatchNorm':
        total = mx.sym.BatchNorm(total, name='bn')
    params = _random_params(total, shape)
    _, _, names = merge_summed_convolutions(total, params, shape)
    assert names == []
    if case == 'other input size':              # the same pair on inputs of one size merges
        same = mx.sym.elemwise_add(first, _conv(other, 'cb', stride=(2, 2)), name='total')
        assert merge_summed_convolutions(same, _random_params(same, shape), shape)[2] == ['total']


def test_merging_needs_shapes_that_follow_from_the_data():
    data, other = mx.sym.var('data'), mx.sym.var('other')
    total = mx.sym.elemwise_add(_conv(data, 'ca'), _conv(other, 'cb'), name='total')
    params = {n: mx.nd.ones((4, 3, 3, 3)) if n.endswith('weight') else mx.nd.zeros(4)
              for n in ('ca_weight', 'ca_bias', 'cb_weight', 'cb_bias')}
    with pytest.raises(ValueError, match='does not follow from data of shape'):
        merge_summed_convolutions(total, params, (1, 3, 8, 8))


@pytest.mark.parametrize('form', ['UpSampling', 'Deconvolution'])
@pytest.mark.parametrize('channels,moved', [(2, True), (12, False)])
def test_upsampling_moves_in_front_of_a_pointwise_convolution(channels, moved, form):
    data = mx.sym.var('data')
    conv = mx.sym.Convolution(data, num_filter=16, kernel=(1, 1), name='c')
    up = mx.sym.UpSampling(conv, scale=2, sample_type='nearest', num_args=1, name='up')
    shape = (2, channels, 3, 5)
    params = _random_params(conv, shape)
    if form == 'Deconvolution':
        up, params, _ = upsampling_as_deconvolution(up, params)
    out, out_params, names = upsampling_first(up, params)
    ops = [op for op in ops_of(out) if op != 'null']
    x = np.random.RandomState(2).uniform(-1, 1, shape)
    want = _run_on(conv, params, x).repeat(2, axis=2).repeat(2, axis=3)
    if moved:                                   # 2 / 16 <= 0.25
        assert names == ['c'] and ops == [form, 'Convolution']
        if form == 'Deconvolution':
            assert out_params['up_in_weight'].shape == (channels, 1, 2, 2)
    else:                                       # 12 / 16 > 0.25: left as it was
        assert names == [] and ops == ['Convolution', form]
    np.testing.assert_allclose(_run_on(out, out_params, x), want, rtol=1e-6, atol=1e-6)


def _onnx_session(path, optimized=None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if optimized:
        options.optimized_model_filepath = optimized
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('size', [(64, 64), (45, 51)])
def test_export_onnx_runs_in_onnxruntime_with_the_same_outputs(size, tmp_path):
    import onnx
    shape = (1, 3) + size
    symbol, params = _exported('resnet50_v1b', shape, tmp_path)
    path = export_onnx(symbol, params, shape, str(tmp_path / 'm.onnx'))
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == ['data']
    assert [o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] == [13]
    assert not [n for n in model.graph.node if n.op_type == 'BatchNormalization']   # folded
    resizes = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
               for n in model.graph.node if n.op_type == 'Resize']
    assert resizes and all(r['coordinate_transformation_mode'] == b'asymmetric' and
                           r['nearest_mode'] == b'floor' for r in resizes)
    x = np.random.RandomState(0).uniform(-1, 1, shape).astype('float32')
    optimized = str(tmp_path / 'optimized.onnx')
    got = _onnx_session(path, optimized).run(None, {'data': x})[0]
    _assert_close(got, _run(symbol, params, mx.nd.array(x)))
    nodes = onnx.load(optimized).graph.node
    if size == (64, 64):
        # onnxruntime runs the convolutions in its blocked layout (NCHWc: CPUs with AVX2 and
        # up, every CPU here), and the upsamplings in it too
        assert any(n.domain == 'com.microsoft.nchwc' for n in nodes)
        assert not [n for n in nodes if n.op_type == 'Resize']
        assert len([n for n in nodes if n.op_type == 'Upsample']) == len(resizes)


def test_export_onnx_reads_in_openvino_with_the_same_outputs(tmp_path):
    from octconv.utils.openvino_model import import_openvino
    openvino = import_openvino()
    shape = (2, 3, 64, 64)
    symbol, params = _exported('resnet50_v1b', shape, tmp_path)
    path = export_onnx(symbol, params, shape, str(tmp_path / 'm.onnx'))
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(path), 'CPU',
                                  {'INFERENCE_PRECISION_HINT': 'f32'})
    x = np.random.RandomState(1).uniform(-1, 1, shape).astype('float32')
    _assert_close(compiled.create_infer_request().infer({0: x})[0],
                  _run(symbol, params, mx.nd.array(x)))


def test_onnx_weights_become_constants_with_the_same_outputs(tmp_path):
    import onnx
    shape = (1, 3, 64, 64)
    symbol, params = _exported('resnet50_v1b', shape, tmp_path)
    mx.nd.save(str(tmp_path / 'r-0000.params'), {'arg:' + k: v for k, v in params.items()})
    symbol.save(str(tmp_path / 'r-symbol.json'))
    path = mx.onnx.export_model(str(tmp_path / 'r-symbol.json'), str(tmp_path / 'r-0000.params'),
                                [shape], [np.float32], str(tmp_path / 'r.onnx'))
    x = np.random.RandomState(0).uniform(-1, 1, shape).astype('float32')

    def run():
        return _onnx_session(path).run(None, {'data': x})[0]
    before = run()
    assert len(onnx.load(path).graph.input) > 1
    onnx_weights_as_constants(path)
    assert [i.name for i in onnx.load(path).graph.input] == ['data']
    _assert_close(run(), before)
    _assert_close(before, _run(symbol, params, mx.nd.array(x)))


@pytest.fixture(scope='module')
def int8_case(tmp_path_factory):
    """Oct-ResNet-50 at ratio 0.25, its float32 graph for 4 images of 64 px, and 4
    calibration batches of demo digits."""
    from octconv.utils import demo_data
    shape = (4, 3, 64, 64)
    symbol, params = _exported('resnet50_v1b', shape, tmp_path_factory.mktemp('int8'))
    images, _ = demo_data.load_digits()
    digits = np.kron(images[:16] / 255., np.ones((8, 8)))[:, None].repeat(3, axis=1)
    return symbol, params, shape, [digits[i:i + 4].astype(np.float32) for i in range(0, 16, 4)]


@pytest.fixture(scope='module')
def int8_onnx(int8_case, tmp_path_factory):
    """The INT8 ONNX file of ``int8_case``, calibrated (naive, the default) on its batches."""
    symbol, params, shape, batches = int8_case
    return export_onnx(symbol, params, shape, str(tmp_path_factory.mktemp('onnx') / 'int8.onnx'),
                       quantize='int8', calib_data=batches)


def _small_octave_case():
    """A five-convolution network octavized at 0.25 (MXNet's entropy calibration takes
    about half a second per layer), its float32 graph for 4 images of 32 px, and 2
    calibration batches."""
    shape = (4, 3, 32, 32)
    octave = small_octave_cnn((1, 1, 2, 1, 2), shape, seed=1)
    octave(mx.nd.zeros(shape))
    params = {name: p.data() for name, p in octave.collect_params().items()}
    batches = [np.random.RandomState(i).uniform(size=shape).astype(np.float32) for i in (0, 1)]
    return octave(mx.sym.var('data')), params, shape, batches


def _assert_int8_close(symbol, params, shape, batches, calib_mode, convolutions):
    float32 = for_inference(symbol, params, shape, merge=False)
    int8 = for_inference(symbol, params, shape, dtype='int8', calib_data=batches,
                         calib_mode=calib_mode, merge=True)
    assert (int8.inference_graph, int8.calib_mode) == ('merged', calib_mode)
    ops = ops_of(int8(mx.sym.var('data')))
    assert '_contrib_quantize_v2' in ops and ops.count('_sg_mkldnn_conv') >= convolutions
    for batch in batches:
        want = float32(mx.nd.array(batch)).asnumpy()
        got = int8(mx.nd.array(batch)).asnumpy()
        cosine = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
        assert cosine.min() > 0.98, cosine


def test_int8_for_inference_stays_close_to_float32(int8_case):
    _assert_int8_close(*int8_case, 'naive', convolutions=53)


def test_int8_entropy_calibration_stays_close_to_float32():
    _assert_int8_close(*_small_octave_case(), 'entropy', convolutions=5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(), 'INT8 needs calib_data'),
    (dict(calib_data=[]), 'calib_data holds no batch'),
    (dict(calib_data=[np.zeros((4, 3, 64, 64)), np.zeros((2, 3, 64, 64))]),
     'calibration batch 1 has shape (2, 3, 64, 64); data_shape is (4, 3, 64, 64)'),
    (dict(calib_data=[np.zeros((4, 3, 64, 64))], calib_mode='kl'), "calib_mode must be"),
    (dict(calib_data=[np.zeros((4, 3, 64, 64))], ctx=mx.gpu(0)), 'INT8 runs on the CPU'),
])
def test_int8_refuses_what_it_cannot_calibrate_with(int8_case, kwargs, message):
    symbol, params, shape, _ = int8_case
    with pytest.raises(ValueError) as err:
        for_inference(symbol, params, shape, dtype='int8', **kwargs)
    assert message in str(err.value)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'int8'"):
        for_inference(symbol, params, shape, dtype='float16')


def _cosines(want, got):
    """Cosine similarity of each row of ``want`` with the same row of ``got``."""
    return (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)


def test_int8_onnx_runs_in_int8_close_to_float32_and_to_mxnet_int8(int8_case, int8_onnx,
                                                                   tmp_path):
    import onnx
    symbol, params, shape, batches = int8_case
    rewritten, rewritten_params = int8_graph(symbol, params, shape)   # same function
    x = mx.nd.array(batches[0])
    _assert_close(_run(rewritten, rewritten_params, x), _run(symbol, params, x))
    # every 2x2 average pooling became a convolution: the stem's max and the global remain
    assert ops_of(symbol).count('Pooling') > 2 and ops_of(rewritten).count('Pooling') == 2
    optimized = str(tmp_path / 'optimized.onnx')
    session = _onnx_session(int8_onnx, optimized)
    ops = [(n.domain, n.op_type) for n in onnx.load(optimized).graph.node]
    # onnxruntime quantizes the input once, runs every operator in INT8, dequantizes once
    assert ops.count(('', 'QuantizeLinear')) == ops.count(('', 'DequantizeLinear')) == 1
    assert ops.count(('com.microsoft', 'QLinearConv')) >= 53 and ('', 'Conv') not in ops
    assert not {op for _, op in ops} & {'AveragePool', 'QLinearAveragePool', 'Add', 'Concat'}
    mxnet_int8 = for_inference(symbol, params, shape, dtype='int8', calib_data=batches,
                               calib_mode='naive', merge=True)
    for batch in batches:
        want = _run(symbol, params, mx.nd.array(batch))
        got = session.run(None, {'data': batch})[0]
        assert _cosines(want, got).min() > 0.98
        assert _cosines(mxnet_int8(mx.nd.array(batch)).asnumpy(), got).min() > 0.98


def test_int8_onnx_reads_in_openvino(int8_case, int8_onnx):
    from octconv.utils.openvino_model import import_openvino
    batches = int8_case[3]
    core = import_openvino().Core()
    request = core.compile_model(core.read_model(int8_onnx), 'CPU').create_infer_request()
    got = request.infer({0: batches[1]})[0]
    want = _onnx_session(int8_onnx).run(None, {'data': batches[1]})[0]
    assert _cosines(want, got).min() > 0.98


@pytest.mark.parametrize('kwargs, message', [
    (dict(quantize='int4'), "quantize must be None or 'int8'"),
    (dict(quantize='int8'), 'export_onnx: INT8 needs calib_data'),
    (dict(quantize='int8', calib_data=[np.zeros((1, 3, 64, 64))]),
     'export_onnx: calibration batch 0 has shape (1, 3, 64, 64); data_shape is (4, 3, 64, 64)'),
    (dict(quantize='int8', calib_data=[np.zeros((4, 3, 64, 64))], calib_mode='minmax'),
     "calib_mode must be 'naive' or 'entropy'"),
])
def test_int8_onnx_refuses_what_it_cannot_calibrate_with(int8_case, kwargs, message, tmp_path):
    symbol, params, shape, _ = int8_case
    with pytest.raises(ValueError) as err:
        export_onnx(symbol, params, shape, str(tmp_path / 'm.onnx'), **kwargs)
    assert message in str(err.value)
    assert not list(tmp_path.iterdir())             # nothing written


def test_int8_onnx_without_onnxruntime_says_so(int8_case, tmp_path, monkeypatch):
    import sys
    import onnxruntime
    symbol, params, shape, batches = int8_case
    monkeypatch.delattr(onnxruntime, 'quantization', raising=False)
    monkeypatch.setitem(sys.modules, 'onnxruntime.quantization', None)   # import fails
    with pytest.raises(RuntimeError, match="onnxruntime's quantization.*octconv\\[onnx\\]"):
        export_onnx(symbol, params, shape, str(tmp_path / 'm.onnx'), quantize='int8',
                    calib_data=batches)


def _activation_scales(path):
    """The scales of the QuantizeLinear nodes of an INT8 ONNX file (the calibrated ranges)."""
    import onnx
    model = onnx.load(path)
    values = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    return sorted(float(values[n.input[1]]) for n in model.graph.node
                  if n.op_type == 'QuantizeLinear')


def test_int8_onnx_calibrates_naive_unless_told_and_entropy_when_told(tmp_path):
    symbol, params, shape, batches = _small_octave_case()
    scales = {mode: _activation_scales(export_onnx(
        symbol, params, shape, str(tmp_path / ('%s.onnx' % mode)), quantize='int8',
        calib_data=batches, **({} if mode == 'default' else {'calib_mode': mode})))
        for mode in ('default', 'entropy', 'naive')}
    assert scales['default'] == scales['naive'] != scales['entropy']
    # naive takes each tensor's whole range; entropy clips outliers: never a wider range
    assert all(e <= n * (1 + 1e-6) for e, n in zip(scales['entropy'], scales['naive']))


def test_a_failed_onnx_write_keeps_the_existing_file_whole(int8_case, tmp_path, monkeypatch):
    import errno
    from octconv.utils import onnx_export
    symbol, params, shape, _ = int8_case
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'the model deployed yesterday')

    def disk_full(source, target):
        with open(target, 'wb') as handle:
            handle.write(b'half a mod')
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(onnx_export.shutil, 'copyfile', disk_full)
    with pytest.raises(OSError, match='No space left'):
        export_onnx(symbol, params, shape, str(path))
    assert path.read_bytes() == b'the model deployed yesterday'
    assert [p.name for p in tmp_path.iterdir()] == ['model.onnx']      # no partial file left


def test_blocks_are_built_without_the_untyped_input_warning():
    symbol, params, shape, batches = _small_octave_case()

    def untyped_input_warnings(build):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            build()
        return [w for w in caught if 'Cannot decide type' in str(w.message)]
    # MXNet warns whenever a SymbolBlock is built of a symbol whose input has no type yet
    assert untyped_input_warnings(lambda: mx.gluon.SymbolBlock(symbol, mx.sym.var('data')))
    assert not untyped_input_warnings(lambda: for_inference(symbol, params, shape, merge=False))
    assert not untyped_input_warnings(lambda: for_inference(
        symbol, params, shape, dtype='int8', calib_data=batches[:1], merge=False))
    assert not untyped_input_warnings(lambda: build_model(
        'symbol', 'resnetv2', 26, 0.25, 10, data_shape=(1, 3, 32, 32)))


def test_int8_graph_refuses_a_pass_it_does_not_have():
    symbol, params, shape, _ = _small_octave_case()
    with pytest.raises(ValueError, match=r"unknown passes \['folded'\]"):
        int8_graph(symbol, params, shape, passes=('merged', 'folded'))
