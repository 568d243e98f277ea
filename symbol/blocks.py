"""Residual, squeeze-excitation and dense blocks, each written once for both op sets.

Every block takes ``ratio``: -1 builds the vanilla block on single symbols,
``ratio`` in [0, 1) the octave block on ``(high, low)`` tuples (high at HxW,
low at ceil(H/2) x ceil(W/2)), with every channel count split by
:func:`~octconv.symbol.ops.channels_for`. Names match the released checkpoints.
"""
from ..utils.octave import OPTIMIZED
from .ops import block_ops, channels_for

__all__ = ['BottleNeckV2', 'SE_Block', 'DenseBlock', 'Connector']


def SE_Block(sym, data, num_out, name):
    """Squeeze-and-excitation on ``data`` with ``num_out`` channels (int or (high, low)).

    Global average pooling, FC to ``sum(num_out) // 16`` (high part only) with
    relu, FC back to ``num_out`` with sigmoid, then a per-channel rescale.
    """
    num_mid = (sum(num_out) // 16, 0) if sym.is_octave else num_out // 16
    out = sym.Pooling(data, pool_type='avg', kernel=(1, 1), global_pool=True, stride=(1, 1),
                      name='%s_pool' % name)
    out = sym.FullyConnected(out, num_hidden=num_mid, no_bias=False, name='%s_fc1' % name)
    out = sym.Activation(out, act_type='relu', name='%s_relu' % name)
    out = sym.FullyConnected(out, num_hidden=num_out, no_bias=False, name='%s_fc2' % name)
    out = sym.Activation(out, act_type='sigmoid', name='%s_sigmoid' % name)
    out = sym.expand_dims(out, axis=2, name='%s_expend1' % name)
    out = sym.expand_dims(out, axis=3, name='%s_expend2' % name)
    return sym.broadcast_mul(data, out, name='%s_mul' % name)


def BottleNeckV2(data, num_mid, num_out, name, first_block=False, stride=(1, 1), num_group=1,
                 use_se=False, ratio=-1, graph=OPTIMIZED):
    """Pre-activation bottleneck (ResNet v2): BN-relu-conv x3 (1x1, 3x3, 1x1), add.

    ``first_block`` adds the projection shortcut ``<name>_conv4`` (BN-relu-conv).
    """
    sym = block_ops(ratio, graph)
    num_mid, num_out = channels_for(num_mid, ratio), channels_for(num_out, ratio)
    out = sym.BN_ACT_Conv(data, num_filter=num_mid, kernel=(1, 1), name='%s_conv1' % name)
    out = sym.BN_ACT_Conv(out, num_filter=num_mid, kernel=(3, 3), pad=(1, 1), stride=stride,
                          num_group=num_group, name='%s_conv2' % name)
    out = sym.BN_ACT_Conv(out, num_filter=num_out, kernel=(1, 1), name='%s_conv3' % name)
    if use_se:
        out = SE_Block(sym, out, num_out, name='%s_se' % name)
    if first_block:
        data = sym.BN_ACT_Conv(data, num_filter=num_out, kernel=(1, 1), stride=stride,
                               name='%s_conv4' % name)
    return sym.ElementWiseSum(data, out, name='%s_sum' % name)


def DenseBlock(data, num_mid, num_out, name, ratio=-1, graph=OPTIMIZED):
    """DenseNet layer: BN-relu-conv 1x1 to ``num_mid``, BN-relu-conv 3x3 to ``num_out``,
    concatenated to its input along channels (high with high, low with low)."""
    sym = block_ops(ratio, graph)
    num_mid, num_out = channels_for(num_mid, ratio), channels_for(num_out, ratio)
    out = sym.BN_ACT_Conv(data, num_filter=num_mid, kernel=(1, 1), name='%s_conv1' % name)
    out = sym.BN_ACT_Conv(out, num_filter=num_out, kernel=(3, 3), pad=(1, 1),
                          name='%s_conv2' % name)
    return sym.Concat(data, out, name='%s_concat' % name)


def Connector(data, num_out, name, ratio=-1, graph=OPTIMIZED):
    """DenseNet transition: BN-relu-conv 1x1 to ``num_out`` then 2x2 average pooling."""
    sym = block_ops(ratio, graph)
    num_out = channels_for(num_out, ratio)
    out = sym.BN_ACT_Conv(data, num_filter=num_out, kernel=(1, 1), name='%s_conv' % name)
    return sym.Pooling(out, pool_type='avg', kernel=(2, 2), stride=(2, 2), name='%s_pool' % name)
