"""DenseNet (BC) on ImageNet, vanilla (ratio 0) or octave.

The last transition and dense stage always run at ratio 0.
"""
from ..utils.octave import OPTIMIZED
from ..utils.stages import DENSENET_STAGES
from .blocks import Connector, DenseBlock
from .head import check_depth, classifier, data_input, float32_output, softmax_output
from .ops import as_pair, block_ratio, plain, single

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol']

STAGES = DENSENET_STAGES


def get_before_pool(depth, ratio=0, use_fp16=False, graph=OPTIMIZED):
    """The body up to the last BN-relu: a single map (N, C, H/32, W/32)."""
    ratio = block_ratio(ratio)
    width, growth, units = check_depth('densenet', depth, STAGES)
    data = data_input(use_fp16)
    out = plain.Conv_BN_ACT(data, num_filter=width, kernel=(7, 7), pad=(3, 3), stride=(2, 2),
                            name='conv1')
    out = plain.Pooling(out, pool_type='max', kernel=(3, 3), pad=(1, 1), stride=(2, 2),
                        name='pool1')
    if ratio >= 0:
        out = as_pair(out)
    for stage, count in zip((2, 3, 4, 5), units):
        stage_ratio = min(ratio, 0.) if stage == 5 else ratio
        if stage > 2:
            width //= 2
            out = Connector(out, width, 'L%d_Trans' % stage, ratio=stage_ratio, graph=graph)
        for unit in range(1, count + 1):
            out = DenseBlock(out, 4 * growth, growth, 'L%d_B%02d' % (stage, unit),
                             ratio=stage_ratio, graph=graph)
            width += growth
    out = plain.BN_ACT(single(out, 'the tail of densenet'), name='tail')
    return float32_output(out, use_fp16)


def get_linear(num_classes, depth, ratio=0, dropout=0., use_fp16=False, graph=OPTIMIZED):
    """Logits (N, num_classes) for input ``data`` (N, 3, H, W), any H, W >= 32."""
    return classifier(get_before_pool(depth, ratio, use_fp16, graph), num_classes, dropout)


def get_symbol(num_classes, depth, ratio=0, dropout=0., use_fp16=False, graph=OPTIMIZED):
    """The training symbol: :func:`get_linear` followed by ``SoftmaxOutput``."""
    return softmax_output(get_linear(num_classes, depth, ratio, dropout, use_fp16, graph))
