"""Octave MobileNet v1 and v2 in Gluon.

Units are numbered as in the released checkpoints: a unit with stride 2 starts
a new stage ``L<stage>_B0``, the others count on (the first unit is ``L1_B1``).
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from . import nn as octave
from ..utils.octave import sum_pairs
from .base import OctaveModel, batchnorm_kwargs, global_pool, octave_channels, refuse_options

__all__ = ['DepthwiseSeparable', 'InvertedResidual', 'MobileNetV1', 'MobileNetV2',
           'mobilenet_v1_075', 'mobilenet_v1_100', 'mobilenet_v2_100', 'mobilenet_v2_1125']


def _unit_names(strides):
    """``L<stage>_B<index>`` for a sequence of unit strides."""
    names, stage, index = [], 1, 0
    for stride in strides:
        stage, index = (stage + 1, 0) if stride > 1 else (stage, index + 1)
        names.append('L%d_B%d' % (stage, index))
    return names


def _total(channels):
    return sum(c for c in channels if c > 0)


class DepthwiseSeparable(HybridBlock):
    """Depthwise 3x3 (conv1, bn1, relu) then pointwise 1x1 (conv2, bn2, relu), on pairs."""

    def __init__(self, in_channels, channels, strides, norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            self.conv1 = octave.Conv2D(in_channels, 3, strides=strides, padding=1,
                                       groups=_total(in_channels), in_channels=in_channels,
                                       use_bias=False, prefix='conv1')
            self.bn1 = octave.BatchNorm(in_channels, prefix='bn1', **norm_kwargs)
            self.conv2 = octave.Conv2D(channels, 1, in_channels=in_channels, use_bias=False,
                                       prefix='conv2')
            self.bn2 = octave.BatchNorm(channels, prefix='bn2', **norm_kwargs)
            self.relu1 = octave.Activation('relu', prefix='relu1')
            self.relu2 = octave.Activation('relu', prefix='relu2')

    def hybrid_forward(self, F, x_high, x_low=None):
        out = self.relu1(*self.bn1(*self.conv1(x_high, x_low)))
        return self.relu2(*self.bn2(*self.conv2(*out)))


class InvertedResidual(HybridBlock):
    """MobileNet v2 unit: 1x1 expand (relu6), depthwise 3x3 (relu6), 1x1 project, + input.

    Only the expanded middle is an octave pair; input and output are single maps
    given as (C, -1). The shortcut is added when stride is 1 and shapes agree;
    ``last_gamma`` then zero-initialises the last BatchNorm's gamma.
    """

    def __init__(self, in_planes, mid_planes, out_planes, strides=1, last_gamma=False,
                 norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        self.use_shortcut = strides == 1 and tuple(in_planes) == tuple(out_planes)
        with self.name_scope():
            self.conv1 = octave.Conv2D(mid_planes, 1, in_channels=in_planes, use_bias=False,
                                       prefix='conv1')
            self.bn1 = octave.BatchNorm(mid_planes, prefix='bn1', **norm_kwargs)
            self.conv2 = octave.Conv2D(mid_planes, 3, strides=strides, padding=1,
                                       groups=_total(mid_planes), in_channels=mid_planes,
                                       use_bias=False, prefix='conv2')
            self.bn2 = octave.BatchNorm(mid_planes, prefix='bn2', **norm_kwargs)
            self.conv3 = octave.Conv2D(out_planes, 1, in_channels=mid_planes, use_bias=False,
                                       prefix='conv3')
            self.bn3 = octave.BatchNorm(out_planes, prefix='bn3',
                                        gamma_initializer='zeros' if last_gamma and
                                        self.use_shortcut else 'ones', **norm_kwargs)
            self.relu1 = octave.Activation('relu6', prefix='relu1')
            self.relu2 = octave.Activation('relu6', prefix='relu2')

    def hybrid_forward(self, F, x_high, x_low=None):
        x = (x_high, x_low)
        out = self.relu1(*self.bn1(*self.conv1(*x)))
        out = self.relu2(*self.bn2(*self.conv2(*out)))
        out = self.bn3(*self.conv3(*out))
        return sum_pairs(out, x) if self.use_shortcut else out


def _plain_stem(channels, activation, norm_kwargs):
    stem = nn.HybridSequential(prefix='')
    stem.add(nn.Conv2D(channels, 3, strides=2, padding=1, use_bias=False, in_channels=3,
                       prefix='conv1_'))
    stem.add(nn.BatchNorm(in_channels=channels, prefix='bn1_', **norm_kwargs))
    stem.add(activation)
    return stem


class _Relu6(HybridBlock):
    def hybrid_forward(self, F, x):
        return F.clip(x, 0, 6)


class MobileNetV1(OctaveModel):
    """Octave MobileNet v1 with width ``multiplier``: (N, 3, H, W) -> (N, classes).

    The first depthwise layer and the last three units run at ratio 0.
    """

    def __init__(self, model_name, multiplier, ratio=0., classes=1000, final_drop=0.,
                 norm_kwargs=None, use_global_stats=False, use_se=False, last_gamma=False,
                 prefix=''):
        refuse_options(model_name, use_se=use_se, last_gamma=last_gamma)
        super().__init__(model_name, ratio, prefix)
        norm_kwargs = batchnorm_kwargs(norm_kwargs, use_global_stats)
        width = lambda values: [int(v * multiplier) for v in values]
        dw_channels = width([32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024])
        pw_channels = width([64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2)
        strides = [1, 2] * 3 + [1] * 5 + [2, 1]
        dw_ratios = [0.] + [self.ratio] * 10 + [0.] * 2
        pw_ratios = [self.ratio] * 10 + [0.] * 3
        with self.name_scope():
            self.conv1 = _plain_stem(int(32 * multiplier), nn.Activation('relu'), norm_kwargs)
            for name, dwc, pwc, stride, dr, pr in zip(_unit_names(strides), dw_channels,
                                                      pw_channels, strides, dw_ratios, pw_ratios):
                self.add_unit(name, DepthwiseSeparable(octave_channels(dwc, dr),
                                                       octave_channels(pwc, pr), stride,
                                                       norm_kwargs=norm_kwargs,
                                                       prefix=name + '_'))
            self.make_head(pw_channels[-1], classes, final_drop)

    first_stride = 2

    def stem(self, F, x):
        return self.conv1(x), None

    def head(self, F, x):
        pooled = [global_pool(F, part) for part in x if part is not None]
        return self.classify(pooled[0] if len(pooled) == 1 else F.concat(*pooled, dim=1))


class MobileNetV2(OctaveModel):
    """Octave MobileNet v2 with width ``multiplier``: (N, 3, H, W) -> (N, classes).

    The expanded middle of the first 13 units is split at ``ratio``; the last
    four units run at ratio 0.
    """

    def __init__(self, model_name, multiplier, ratio=0., classes=1000, final_drop=0.,
                 last_gamma=False, norm_kwargs=None, use_global_stats=False, use_se=False,
                 prefix=''):
        refuse_options(model_name, use_se=use_se)
        super().__init__(model_name, ratio, prefix)
        norm_kwargs = batchnorm_kwargs(norm_kwargs, use_global_stats)
        in_channels = [int(multiplier * c) for c in
                       [32] + [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3]
        mid_channels = [t * c for t, c in zip([1] + [6] * 16, in_channels)]
        out_channels = [int(multiplier * c) for c in
                        [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]]
        strides = [1, 2] * 2 + [1, 1, 2] + [1] * 6 + [2] + [1] * 3
        ratios = [self.ratio] * 13 + [0.] * 4
        last_channels = int(1280 * multiplier) if multiplier > 1.0 else 1280
        with self.name_scope():
            self.conv1 = _plain_stem(int(32 * multiplier), _Relu6(prefix='relu6_'), norm_kwargs)
            for name, cin, mid, cout, stride, r in zip(_unit_names(strides), in_channels,
                                                       mid_channels, out_channels, strides,
                                                       ratios):
                self.add_unit(name, InvertedResidual((cin, -1), octave_channels(mid, r),
                                                     (cout, -1), strides=stride,
                                                     last_gamma=last_gamma,
                                                     norm_kwargs=norm_kwargs, prefix=name + '_'))
            self.tail = nn.HybridSequential(prefix='')
            self.tail.add(nn.Conv2D(last_channels, 1, in_channels=out_channels[-1],
                                    use_bias=False, prefix='tail-conv_'))
            self.tail.add(nn.BatchNorm(in_channels=last_channels, prefix='tail-bn_',
                                       **norm_kwargs))
            self.tail.add(_Relu6(prefix='tail-relu6_'))
            self.make_head(last_channels, classes, final_drop)

    first_stride = 2

    def stem(self, F, x):
        return self.conv1(x), None

    def head(self, F, x):
        return self.classify(global_pool(F, self.tail(x[0])))


def mobilenet_v1_075(**kwargs):
    """0.75 Oct-MobileNet (v1)."""
    return MobileNetV1('mobilenet_v1_075', 0.75, prefix='M075_', **kwargs)


def mobilenet_v1_100(**kwargs):
    """1.0 Oct-MobileNet (v1)."""
    return MobileNetV1('mobilenet_v1_100', 1.0, prefix='M100_', **kwargs)


def mobilenet_v2_100(**kwargs):
    """1.0 Oct-MobileNet (v2)."""
    return MobileNetV2('mobilenet_v2_100', 1.0, prefix='M100_', **kwargs)


def mobilenet_v2_1125(**kwargs):
    """1.125 Oct-MobileNet (v2)."""
    return MobileNetV2('mobilenet_v2_1125', 1.125, prefix='M1125_', **kwargs)
