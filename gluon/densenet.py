"""Octave DenseNet-BC in Gluon (121, 161, 169, 201).

Unlike the ResNets, the stem convolution and max-pool are octave layers too.
Stage ``s`` > 1 starts with a transition ``L<s>_B0``; dense layers follow. The
last stage runs at ratio 0.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.octave import concat_pairs
from ..utils.stages import DENSENET_STAGES as STAGES
from . import nn as octave
from .base import OctaveModel, batchnorm_kwargs, global_pool, octave_channels, refuse_options

__all__ = ['DenseLayer', 'Transition', 'DenseNet', 'densenet121', 'densenet161', 'densenet169',
           'densenet201']


class DenseLayer(HybridBlock):
    """bn1-relu-conv1 1x1 to ``bn_size`` x growth, bn2-relu-conv2 3x3 to growth,
    concatenated to the input part by part."""

    def __init__(self, in_channels, growth, bn_size=4, norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        mid = tuple(bn_size * c if c > 0 else -1 for c in growth)
        with self.name_scope():
            self.bn1 = octave.BatchNorm(in_channels, prefix='bn1', **norm_kwargs)
            self.conv1 = octave.Conv2D(mid, 1, in_channels=in_channels, use_bias=False,
                                       prefix='conv1')
            self.bn2 = octave.BatchNorm(mid, prefix='bn2', **norm_kwargs)
            self.conv2 = octave.Conv2D(growth, 3, padding=1, in_channels=mid, use_bias=False,
                                       prefix='conv2')
            self.relu1 = octave.Activation('relu', prefix='relu1')
            self.relu2 = octave.Activation('relu', prefix='relu2')

    def hybrid_forward(self, F, x_high, x_low=None):
        x = (x_high, x_low)
        out = self.conv1(*self.relu1(*self.bn1(*x)))
        out = self.conv2(*self.relu2(*self.bn2(*out)))
        return concat_pairs(F, x, out)


class Transition(HybridBlock):
    """bn-relu-conv 1x1 then 2x2 average pooling, on pairs."""

    def __init__(self, in_channels, channels, norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            self.bn = octave.BatchNorm(in_channels, prefix='bn', **norm_kwargs)
            self.conv = octave.Conv2D(channels, 1, in_channels=in_channels, use_bias=False,
                                      prefix='conv')
            self.relu = octave.Activation('relu', prefix='relu')
            self.pool = octave.AvgPool2D(2, strides=2, prefix='pool')

    def hybrid_forward(self, F, x_high, x_low=None):
        return self.pool(*self.conv(*self.relu(*self.bn(x_high, x_low))))


class DenseNet(OctaveModel):
    """Octave DenseNet-BC of ``depth`` 121, 161, 169 or 201: (N, 3, H, W) -> (N, classes)."""

    def __init__(self, model_name, depth, ratio=0., classes=1000, final_drop=0.,
                 norm_kwargs=None, use_global_stats=False, use_se=False, last_gamma=False,
                 prefix=''):
        refuse_options(model_name, use_se=use_se, last_gamma=last_gamma)
        super().__init__(model_name, ratio, prefix)
        norm_kwargs = batchnorm_kwargs(norm_kwargs, use_global_stats)
        width, growth, units = STAGES[depth]
        ratios = (self.ratio, self.ratio, self.ratio, 0.)
        with self.name_scope():
            stem = octave_channels(width, ratios[0])
            self.conv1 = octave.Conv2D(stem, 7, strides=2, padding=3, in_channels=(3, -1),
                                       use_bias=False, prefix='conv1')
            self.bn1 = octave.BatchNorm(stem, prefix='bn1', **norm_kwargs)
            self.relu1 = octave.Activation('relu', prefix='relu1')
            self.maxpool = octave.MaxPool2D(3, strides=2, padding=1, prefix='pool1')
            for stage, (count, r) in enumerate(zip(units, ratios), start=1):
                index = 0
                if stage > 1:
                    name = 'L%d_B0' % stage
                    self.add_unit(name, Transition(octave_channels(width, ratios[stage - 2]),
                                                   octave_channels(width // 2, r),
                                                   norm_kwargs=norm_kwargs, prefix=name + '_'))
                    width //= 2
                    index = 1
                for _ in range(count):
                    name = 'L%d_B%d' % (stage, index)
                    self.add_unit(name, DenseLayer(octave_channels(width, r),
                                                   octave_channels(growth, r),
                                                   norm_kwargs=norm_kwargs, prefix=name + '_'))
                    width += growth
                    index += 1
            self.tail = nn.HybridSequential(prefix='')
            self.tail.add(nn.BatchNorm(in_channels=width, prefix='tail-bn_', **norm_kwargs))
            self.tail.add(nn.Activation('relu'))
            self.make_head(width, classes, final_drop)

    def stem(self, F, x):
        return self.maxpool(*self.relu1(*self.bn1(*self.conv1(x))))

    def head(self, F, x):
        return self.classify(global_pool(F, self.tail(x[0])))


def densenet121(**kwargs):
    """Oct-DenseNet-121."""
    return DenseNet('densenet121', 121, prefix='D121_', **kwargs)


def densenet161(**kwargs):
    """Oct-DenseNet-161."""
    return DenseNet('densenet161', 161, prefix='D161_', **kwargs)


def densenet169(**kwargs):
    """Oct-DenseNet-169."""
    return DenseNet('densenet169', 169, prefix='D169_', **kwargs)


def densenet201(**kwargs):
    """Oct-DenseNet-201."""
    return DenseNet('densenet201', 201, prefix='D201_', **kwargs)
