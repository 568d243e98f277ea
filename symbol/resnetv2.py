"""Pre-activation ResNet (v2) on ImageNet, vanilla (ratio 0) or octave.

The last stage always runs at ratio 0: a 3x3 convolution on a 3.5x3.5 low map
makes no sense. ``get_linear`` returns logits (N, num_classes); ``get_symbol``
adds the ``softmax`` output used for training.
"""
from ..utils.octave import OPTIMIZED
from .blocks import BottleNeckV2
from .head import check_depth, classifier, data_input, float32_output, softmax_output
from .ops import block_ratio, plain, single

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol', 'variant']

# depth -> bottleneck units in stages 2, 3, 4, 5
STAGES = {26: (2, 2, 2, 2),
          50: (3, 4, 6, 3),
          101: (3, 4, 23, 3),
          152: (3, 8, 36, 3),
          200: (3, 24, 36, 3)}


def get_before_pool(depth, ratio=0, use_fp16=False, group=1, scaler=1., use_se=False,
                    network='resnetv2', graph=OPTIMIZED):
    """The body up to the last BN-relu: a single map (N, 2048, H/32, W/32); ``graph`` is the
    :class:`~octconv.utils.octave.Graph` to build."""
    ratio = block_ratio(ratio)
    units = check_depth(network, depth, STAGES)
    data = data_input(use_fp16)
    out = plain.Conv_BN_ACT(data, num_filter=64, kernel=(7, 7), pad=(3, 3), stride=(2, 2),
                            name='conv1')
    out = plain.Pooling(out, pool_type='max', kernel=(3, 3), pad=(1, 1), stride=(2, 2),
                        name='pool1')
    num_mid, num_out = int(64 * scaler), 256
    for stage, count in zip((2, 3, 4, 5), units):
        stage_ratio = min(ratio, 0.) if stage == 5 else ratio
        for unit in range(1, count + 1):
            out = BottleNeckV2(out, num_mid=num_mid, num_out=num_out,
                               name='L%d_B%02d' % (stage, unit), first_block=unit == 1,
                               stride=(2, 2) if unit == 1 and stage > 2 else (1, 1),
                               num_group=group, use_se=use_se, ratio=stage_ratio, graph=graph)
        num_mid, num_out = 2 * num_mid, 2 * num_out
    out = plain.BN_ACT(single(out, 'the tail of %s' % network), name='tail')
    return float32_output(out, use_fp16)


def get_linear(num_classes, depth, ratio=0, dropout=0., use_fp16=False, group=1, scaler=1.,
               use_se=False, network='resnetv2', graph=OPTIMIZED):
    """Logits (N, num_classes) for input ``data`` (N, 3, H, W), any H, W >= 32."""
    body = get_before_pool(depth, ratio, use_fp16, group=group, scaler=scaler, use_se=use_se,
                           network=network, graph=graph)
    return classifier(body, num_classes, dropout)


def get_symbol(num_classes, depth, ratio=0, dropout=0., use_fp16=False, group=1, scaler=1.,
               use_se=False, network='resnetv2', graph=OPTIMIZED):
    """The training symbol: :func:`get_linear` followed by ``SoftmaxOutput``."""
    return softmax_output(get_linear(num_classes, depth, ratio, dropout, use_fp16, group=group,
                                     scaler=scaler, use_se=use_se, network=network,
                                     graph=graph))


def variant(**fixed):
    """``(get_before_pool, get_linear, get_symbol)`` of a ResNet v2 variant whose ``fixed``
    options (``use_se``, ``group``, ``scaler``, ``network``) are set, with the
    signatures every network module has."""
    def variant_before_pool(depth, ratio=0, use_fp16=False, graph=OPTIMIZED):
        """See :func:`octconv.symbol.resnetv2.get_before_pool`."""
        return get_before_pool(depth, ratio, use_fp16, graph=graph, **fixed)

    def variant_linear(num_classes, depth, ratio=0, dropout=0., use_fp16=False,
                       graph=OPTIMIZED):
        """Logits (N, num_classes); see :func:`octconv.symbol.resnetv2.get_linear`."""
        return get_linear(num_classes, depth, ratio, dropout, use_fp16, graph=graph, **fixed)

    def variant_symbol(num_classes, depth, ratio=0, dropout=0., use_fp16=False,
                       graph=OPTIMIZED):
        """The training symbol with ``softmax`` output."""
        return get_symbol(num_classes, depth, ratio, dropout, use_fp16, graph=graph, **fixed)
    return variant_before_pool, variant_linear, variant_symbol
