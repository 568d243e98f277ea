"""Symbol networks: released-checkpoint names and shapes, any input size, clear errors."""
import json

import mxnet as mx
import numpy as np
import pytest

import octconv.symbol as S
from conftest import manifests
from octconv.symbol import ops
from octconv.utils.octave import OPTIMIZED, graph_options

SYMBOL_MANIFESTS = manifests('symbol')


# The published cells of the paper's table A (ratio -1 = baseline).
TABLE_A = {('densenet', 121): (-1, 0.125, 0.25),
           ('resnetv2', 26): (-1, 0.125, 0.25, 0.5, 0.75),
           ('resnetv2', 50): (-1, 0.125, 0.25, 0.5, 0.75),
           ('seresnetv2', 50): (-1, 0.125, 0.25, 0.5, 0.75),
           ('resnextv2_32x4d', 50): (-1, 0.25, 0.5, 0.75),
           ('resnetv2', 101): (-1, 0.125, 0.25, 0.5),
           ('resnextv2_32x4d', 101): (-1, 0.25, 0.5),
           ('resnetv2', 200): (-1, 0.125, 0.25, 0.5)}


def test_manifests_cover_every_cell_of_table_a():
    cells = {(m['builder'], m['depth'], m['ratio']) for _, m in SYMBOL_MANIFESTS}
    assert cells == {(net, depth, r) for (net, depth), ratios in TABLE_A.items() for r in ratios}


@pytest.mark.parametrize('name,manifest', SYMBOL_MANIFESTS, ids=[n for n, _ in SYMBOL_MANIFESTS])
def test_parameter_names_and_shapes_match_the_released_checkpoint(name, manifest):
    # the released baselines are "ratio -1" in the reference; octconv's vanilla is ratio 0
    for ratio in (manifest['ratio'],) + ((0,) if manifest['ratio'] == -1 else ()):
        net = S.get_symbol(manifest['builder'], manifest['depth'], ratio=ratio)
        arg_shapes, _, aux_shapes = net.infer_shape(data=(1, 3, 224, 224))
        args = {k: list(v) for k, v in zip(net.list_arguments(), arg_shapes)
                if k not in ('data', 'softmax_label')}
        aux = {k: list(v) for k, v in zip(net.list_auxiliary_states(), aux_shapes)}
        assert args == manifest['arg'], ratio
        assert aux == manifest['aux'], ratio


ALL_DEPTHS = [(net, depth) for net, depths in S.list_networks().items() for depth in depths]


@pytest.mark.parametrize('network,depth', ALL_DEPTHS, ids=['%s-%d' % nd for nd in ALL_DEPTHS])
@pytest.mark.parametrize('ratio', [0, 0.25])
def test_every_network_infers_any_input_size(network, depth, ratio):
    net = S.get_linear(network, depth, num_classes=7, ratio=ratio)
    for shape in [(2, 3, 224, 224), (1, 3, 225, 225), (1, 3, 200, 320), (1, 3, 33, 47)]:
        _, out_shapes, _ = net.infer_shape(data=shape)
        assert out_shapes == [(shape[0], 7)]


@pytest.mark.parametrize('size', [(225, 225), (200, 320), (97, 130)])
def test_odd_sized_octave_network_runs_forward_and_backward(size):
    net = S.get_symbol('resnetv2', 26, num_classes=5, ratio=0.5)
    exe = net.simple_bind(mx.cpu(), data=(2, 3) + size, grad_req='write')
    for name, arr in exe.arg_dict.items():
        arr[:] = np.random.RandomState(len(name)).uniform(-0.1, 0.1, arr.shape)
    exe.arg_dict['softmax_label'][:] = [1, 3]
    probs = exe.forward(is_train=True)[0].asnumpy()
    exe.backward()
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    grad = exe.grad_dict['L2_B01_conv2_conv-l2h_weight'].asnumpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_last_stage_runs_at_ratio_zero():
    args = S.get_linear('resnetv2', 50, ratio=0.5).list_arguments()
    assert 'L4_B06_conv3_conv-l2l_weight' in args
    assert not [a for a in args if a.startswith('L5_') and ('-h2l' in a or '-l2l' in a)]


def test_batchnorm_uses_the_reference_settings():
    graph = json.loads(S.get_linear('resnetv2', 26, ratio=0.25).tojson())
    bns = [node for node in graph['nodes'] if node['op'] == 'BatchNorm']
    assert bns and all(float(bn['attrs']['momentum']) == 0.92 for bn in bns)
    assert all(float(bn['attrs']['eps']) == 1e-4 for bn in bns)
    assert all(bn['attrs']['fix_gamma'] == 'False' for bn in bns)


def test_zero_init_gamma_initialises_gamma_to_zero():
    data = mx.sym.var('data', shape=(1, 4, 8, 8))
    out = ops.octave.Conv_BN((data, None), num_filter=(4, 4), kernel=(1, 1), name='u',
                             zero_init_gamma=True)
    mod = mx.mod.Module(mx.sym.Group(list(out)), data_names=['data'], label_names=None)
    mod.bind(data_shapes=[('data', (1, 4, 8, 8))], for_training=False)
    mod.init_params(mx.init.Normal(1.))
    arg, _ = mod.get_params()
    assert np.all(arg['u_bn-h_gamma'].asnumpy() == 0) and np.all(arg['u_bn-l_gamma'].asnumpy() == 0)
    assert np.any(arg['u_conv-h2l_weight'].asnumpy() != 0)


def test_plain_and_octave_op_sets_share_their_names():
    public = [n for n in dir(ops.PlainOps) if not n.startswith('_') and n != 'is_octave']
    assert {'Convolution', 'BatchNorm', 'Activation', 'Pooling', 'ElementWiseSum', 'Concat',
            'broadcast_mul', 'expand_dims', 'FullyConnected', 'BN_ACT', 'BN_ACT_Conv',
            'Conv_BN', 'Conv_BN_ACT'} <= set(public)
    vanilla, octave = ops.ops_for(-1), ops.ops_for(0.25, graph_options('straightforward'))
    assert type(vanilla) is ops.PlainOps and type(octave) is ops.OctaveOps
    assert (vanilla.graph, octave.graph) == (OPTIMIZED, graph_options('straightforward'))


def test_float16_body_returns_float32_logits():
    net = S.get_linear('resnetv2', 26, num_classes=10, ratio=0.25, use_fp16=True)
    _, out_types, _ = net.infer_type(data=np.float32)
    assert out_types == [np.float32]
    internals = net.get_internals()
    conv = internals['L2_B01_conv2_conv-h2h_output']
    assert conv.infer_type(data=np.float32)[1] == [np.float16]


@pytest.mark.parametrize('build,message', [
    (lambda: S.get_symbol('resnextv2_32x4d', 50, ratio=0.125),
     r'layer L2_B01_conv2_conv, path h2h: groups=32 do not divide its channels \(in 112'),
    (lambda: S.get_symbol('resnetv2', 51), 'resnetv2 has no depth 51; valid depths: 26, 50'),
    (lambda: S.get_symbol('densenet', 50), 'densenet has no depth 50; valid depths: 121'),
    (lambda: S.get_symbol('resnet', 50), "unknown network 'resnet'; valid networks: densenet"),
    (lambda: S.get_symbol('resnetv2', 50, ratio=1.0), r'ratio must be in \[0, 1\)'),
    (lambda: S.get_symbol('seresnetv2', 50, ratio=-0.25), r'ratio must be in \[0, 1\)'),
    (lambda: S.get_symbol('resnetv2', 50, num_classes=0), 'num_classes must be >= 1'),
])
def test_bad_input_raises_while_building(build, message):
    with pytest.raises(ValueError, match=message):
        build()
