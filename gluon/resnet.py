"""Octave ResNet / ResNeXt in Gluon: v1b, v1e, v1f (post-activation) and v2b (pre-activation).

Variants (GluonCV naming): ``v1b`` strides in the 3x3 convolution; ``v1e``
adds a deep stem (three 3x3 convolutions) and strides in the last 1x1
convolution; ``v1f`` is ``v1e`` with the max-pool replaced by a big-little
bottleneck. The last stage always runs at ratio 0. Units are named
``L<stage>_B<index>`` as in the released checkpoints.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.octave import activation, sum_pairs
from . import nn as octave
from .base import OctaveModel, batchnorm_kwargs, global_pool, octave_channels, refuse_options

__all__ = ['BottleneckV1', 'BottleneckV2', 'BigLittleStem', 'ResNetV1', 'ResNetV2',
           'resnet50_v1b', 'resnext50_32x4d_v1b', 'resnet152_v1e', 'resnet152_v1f',
           'resnet50_v2b', 'resnext50_32x4d_v2b']

MIDS = (64, 128, 256, 512)
OUTS = (256, 512, 1024, 2048)


def _add_bottleneck_convs(block, in_planes, mid_planes, out_planes, groups, strides, down_pos):
    """conv1 1x1, conv2 3x3 (grouped), conv3 1x1 of a bottleneck; the unit's stride goes to
    conv ``down_pos`` (0, 1 or 2). Call inside the block's name scope."""
    if down_pos not in (0, 1, 2):
        raise ValueError('down_pos must be 0, 1 or 2 (which convolution strides), got %r'
                         % down_pos)
    s1, s2, s3 = (strides if i == down_pos else 1 for i in range(3))
    block.conv1 = octave.Conv2D(mid_planes, 1, strides=s1, in_channels=in_planes,
                                use_bias=False, prefix='conv1')
    block.conv2 = octave.Conv2D(mid_planes, 3, strides=s2, padding=1, groups=groups,
                                in_channels=mid_planes, use_bias=False, prefix='conv2')
    block.conv3 = octave.Conv2D(out_planes, 1, strides=s3, in_channels=mid_planes,
                                use_bias=False, prefix='conv3')


def _add_se_and_relus(block, in_planes, out_planes, strides, use_se, se_planes):
    """``se_block`` (or None), ``relu1``..``relu3`` and the ``project`` flag (a projection
    shortcut when the stride or channels change) of a bottleneck. Call inside its name scope."""
    block.se_block = (octave.SE(se_planes, in_channels=out_planes, prefix='se')
                      if use_se else None)
    block.relu1 = octave.Activation('relu', prefix='relu1')
    block.relu2 = octave.Activation('relu', prefix='relu2')
    block.relu3 = octave.Activation('relu', prefix='relu3')
    block.project = strides != 1 or tuple(in_planes) != tuple(out_planes)


class BottleneckV1(HybridBlock):
    """Post-activation bottleneck on (high, low) pairs.

    conv1 1x1 -> bn1 -> relu, conv2 3x3 (grouped) -> bn2 -> relu, conv3 1x1 ->
    bn3 (zero gamma with ``last_gamma``), optional SE, a projection shortcut
    (conv4, bn4) when the shape changes, sum, relu. ``extra_bn`` adds
    parameter-free BatchNorms ``bn1a`` / ``bn4a`` on the input (the reference's
    SE-ResNet-152). Channels are (high, low) pairs with -1 for an absent part.
    """

    def __init__(self, in_planes, mid_planes, out_planes, groups=1, strides=1, down_pos=0,
                 use_se=False, se_planes=0, extra_bn=False, last_gamma=False, norm_kwargs=None,
                 prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            if extra_bn:
                self.bn1a = octave.BatchNorm(in_planes, center=False, scale=False, prefix='bn1a',
                                             **norm_kwargs)
            _add_bottleneck_convs(self, in_planes, mid_planes, out_planes, groups, strides,
                                  down_pos)
            self.bn1 = octave.BatchNorm(mid_planes, prefix='bn1', **norm_kwargs)
            self.bn2 = octave.BatchNorm(mid_planes, prefix='bn2', **norm_kwargs)
            self.bn3 = octave.BatchNorm(out_planes, prefix='bn3',
                                        gamma_initializer='zeros' if last_gamma else 'ones',
                                        **norm_kwargs)
            _add_se_and_relus(self, in_planes, out_planes, strides, use_se, se_planes)
            if self.project:
                if extra_bn:
                    self.bn4a = octave.BatchNorm(in_planes, center=False, scale=False,
                                                 prefix='bn4a', **norm_kwargs)
                self.conv4 = octave.Conv2D(out_planes, 1, strides=strides, in_channels=in_planes,
                                           use_bias=False, prefix='conv4')
                self.bn4 = octave.BatchNorm(out_planes, prefix='bn4', **norm_kwargs)
        self.extra_bn = extra_bn

    def hybrid_forward(self, F, x_high, x_low=None):
        x = (x_high, x_low)
        out = self.bn1a(*x) if self.extra_bn else x
        out = self.relu1(*self.bn1(*self.conv1(*out)))
        out = self.relu2(*self.bn2(*self.conv2(*out)))
        out = self.bn3(*self.conv3(*out))
        if self.se_block is not None:
            out = self.se_block(*out)
        shortcut = x
        if self.project:
            shortcut = self.bn4a(*x) if self.extra_bn else x
            shortcut = self.bn4(*self.conv4(*shortcut))
        return self.relu3(*sum_pairs(out, shortcut))


class BottleneckV2(HybridBlock):
    """Pre-activation bottleneck on (high, low) pairs.

    bn1 -> relu -> conv1 1x1, bn2 -> relu -> conv2 3x3 (grouped), bn3 -> relu ->
    conv3 1x1, optional SE, a projection shortcut bn4 -> relu -> conv4 (with
    bias, as in the reference) when the shape changes, sum.
    """

    def __init__(self, in_planes, mid_planes, out_planes, groups=1, strides=1, down_pos=0,
                 use_se=False, se_planes=0, norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            _add_bottleneck_convs(self, in_planes, mid_planes, out_planes, groups, strides,
                                  down_pos)
            self.bn1 = octave.BatchNorm(in_planes, prefix='bn1', **norm_kwargs)
            self.bn2 = octave.BatchNorm(mid_planes, prefix='bn2', **norm_kwargs)
            self.bn3 = octave.BatchNorm(mid_planes, prefix='bn3', **norm_kwargs)
            _add_se_and_relus(self, in_planes, out_planes, strides, use_se, se_planes)
            if self.project:
                self.bn4 = octave.BatchNorm(in_planes, prefix='bn4', **norm_kwargs)
                self.relu4 = octave.Activation('relu', prefix='relu4')
                self.conv4 = octave.Conv2D(out_planes, 1, strides=strides, in_channels=in_planes,
                                           prefix='conv4')

    def hybrid_forward(self, F, x_high, x_low=None):
        x = (x_high, x_low)
        out = self.conv1(*self.relu1(*self.bn1(*x)))
        out = self.conv2(*self.relu2(*self.bn2(*out)))
        out = self.conv3(*self.relu3(*self.bn3(*out)))
        if self.se_block is not None:
            out = self.se_block(*out)
        shortcut = self.conv4(*self.relu4(*self.bn4(*x))) if self.project else x
        return sum_pairs(out, shortcut)


class BigLittleStem(octave.OctaveBlock):
    """Plain stride-2 bottleneck that replaces the max-pool in ``resnet152_v1f``.

    (N, in_planes, H, W) -> (N, out_planes, ceil(H/2), ceil(W/2)); from Big-Little Net.
    """

    def __init__(self, in_planes, mid_planes, out_planes, strides=2, last_gamma=False,
                 norm_kwargs=None, prefix=None):
        super().__init__(prefix=prefix)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            self.conv1 = nn.Conv2D(mid_planes, 1, in_channels=in_planes, use_bias=False,
                                   prefix='conv1_')
            self.bn1 = nn.BatchNorm(in_channels=mid_planes, prefix='bn1_', **norm_kwargs)
            self.conv2 = nn.Conv2D(mid_planes, 3, strides=strides, padding=1,
                                   in_channels=mid_planes, use_bias=False, prefix='conv2_')
            self.bn2 = nn.BatchNorm(in_channels=mid_planes, prefix='bn2_', **norm_kwargs)
            self.conv3 = nn.Conv2D(out_planes, 1, in_channels=mid_planes, use_bias=False,
                                   prefix='conv3_')
            self.bn3 = nn.BatchNorm(in_channels=out_planes, prefix='bn3_',
                                    gamma_initializer='zeros' if last_gamma else 'ones',
                                    **norm_kwargs)
            self.conv4 = nn.Conv2D(out_planes, 1, strides=strides, in_channels=in_planes,
                                   use_bias=False, prefix='conv4_')
            self.bn4 = nn.BatchNorm(in_channels=out_planes, prefix='bn4_', **norm_kwargs)

    def hybrid_forward(self, F, x):
        out = activation(F, self.bn1(self.conv1(x)), counted=False, graph=self.graph)
        out = activation(F, self.bn2(self.conv2(out)), counted=False, graph=self.graph)
        out = self.bn3(self.conv3(out))
        return activation(F, out + self.bn4(self.conv4(x)), counted=False, graph=self.graph)


def _stem(width, deep_stem, big_little, norm_kwargs):
    """The plain stem ``conv1``: 7x7/2 conv, or three 3x3 convs (deep), each BN-relu."""
    stem = nn.HybridSequential(prefix='')
    if not deep_stem:
        layers = [(width, 7, 3, 2, 'conv1_', 'bn1_')]
    else:
        first, s1, s2 = (8, 1, 2) if big_little else (32, 2, 1)
        layers = [(first, 3, 1, s1, 'stem_conv1_', 'stem_bn1_'),
                  (32, 3, 1, s2, 'stem_conv2_', 'stem_bn2_'),
                  (width, 3, 1, 1, 'stem_conv3_', 'stem_bn3_')]
    in_channels = 3
    for channels, kernel, pad, stride, conv_prefix, bn_prefix in layers:
        stem.add(nn.Conv2D(channels, kernel, strides=stride, padding=pad, use_bias=False,
                           in_channels=in_channels, prefix=conv_prefix))
        stem.add(nn.BatchNorm(in_channels=channels, prefix=bn_prefix, **norm_kwargs))
        stem.add(nn.Activation('relu'))
        in_channels = channels
    return stem


class _ResNet(OctaveModel):
    """Stem, four stages of bottlenecks at ratios (r, r, r, 0), head."""

    pre_activation = False

    def __init__(self, model_name, layers, ratio=0., groups=1, mids=MIDS, classes=1000,
                 use_se=False, down_pos=0, deep_stem=False, big_little=False, extra_bn=False,
                 last_gamma=False, final_drop=0., norm_kwargs=None, use_global_stats=False,
                 prefix=''):
        super().__init__(model_name, ratio, prefix)
        norm_kwargs = batchnorm_kwargs(norm_kwargs, use_global_stats)
        stage_ratios = (self.ratio, self.ratio, self.ratio, 0.)
        with self.name_scope():
            self.conv1 = _stem(64, deep_stem, big_little, norm_kwargs)
            if big_little:
                self.conv2 = BigLittleStem(64, 32, 64, last_gamma=last_gamma,
                                           norm_kwargs=norm_kwargs, prefix='stem2_')
            else:
                self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            in_planes = (64, -1)
            for stage, (count, mid, out, r) in enumerate(zip(layers, mids, OUTS, stage_ratios),
                                                         start=1):
                mid_planes, out_planes = octave_channels(mid, r), octave_channels(out, r)
                for index in range(count):
                    name = 'L%d_B%d' % (stage, index)
                    unit = dict(groups=groups, strides=2 if index == 0 and stage > 1 else 1,
                                down_pos=down_pos, use_se=use_se, se_planes=out // 16,
                                norm_kwargs=norm_kwargs, prefix=name + '_')
                    if self.pre_activation:
                        block = BottleneckV2(in_planes, mid_planes, out_planes, **unit)
                    else:
                        block = BottleneckV1(in_planes, mid_planes, out_planes,
                                             extra_bn=extra_bn, last_gamma=last_gamma, **unit)
                    self.add_unit(name, block)
                    in_planes = out_planes
            if self.pre_activation:
                self.tail = nn.HybridSequential(prefix='')
                self.tail.add(nn.BatchNorm(in_channels=OUTS[-1], prefix='tail-bn_',
                                           **norm_kwargs))
                self.tail.add(nn.Activation('relu'))
            self.make_head(OUTS[-1], classes, final_drop)
        self.big_little = big_little

    def stem(self, F, x):
        x = self.conv1(x)
        return (self.conv2(x) if self.big_little else self.maxpool(x)), None

    def head(self, F, x):
        high = self.tail(x[0]) if self.pre_activation else x[0]
        return self.classify(global_pool(F, high))


class ResNetV1(_ResNet):
    """Post-activation octave ResNet/ResNeXt. Input (N, 3, H, W) -> logits (N, classes)."""


class ResNetV2(_ResNet):
    """Pre-activation octave ResNet/ResNeXt. Input (N, 3, H, W) -> logits (N, classes)."""

    pre_activation = True

    def __init__(self, model_name, layers, last_gamma=False, **kwargs):
        refuse_options(model_name, last_gamma=last_gamma)   # no BatchNorm ends its units
        super().__init__(model_name, layers, **kwargs)


def resnet50_v1b(**kwargs):
    """Oct-ResNet-50 v1b (stride in the 3x3 convolution)."""
    return ResNetV1('resnet50_v1b', (3, 4, 6, 3), down_pos=1, prefix='R50_', **kwargs)


def resnext50_32x4d_v1b(**kwargs):
    """Oct-ResNeXt-50 32x4d v1b."""
    return ResNetV1('resnext50_32x4d_v1b', (3, 4, 6, 3), groups=32, mids=(128, 256, 512, 1024),
                    down_pos=1, prefix='RX50_', **kwargs)


def resnet152_v1e(use_se=False, **kwargs):
    """Oct-ResNet-152 v1e (deep stem, stride in the last 1x1); ``use_se`` adds SE blocks and
    the reference's parameter-free BatchNorms on each unit's input."""
    return ResNetV1('resnet152_v1e', (3, 8, 36, 3), deep_stem=True, down_pos=2, use_se=use_se,
                    extra_bn=use_se, prefix='R152_', **kwargs)


def resnet152_v1f(use_se=False, **kwargs):
    """Oct-ResNet-152 v1f: v1e with a big-little bottleneck in place of the max-pool."""
    return ResNetV1('resnet152_v1f', (3, 8, 36, 3), deep_stem=True, big_little=True,
                    down_pos=2, use_se=use_se, extra_bn=use_se, prefix='R152_', **kwargs)


def resnet50_v2b(**kwargs):
    """Pre-activation Oct-ResNet-50 v2b."""
    return ResNetV2('resnet50_v2b', (3, 4, 6, 3), down_pos=1, prefix='R50_', **kwargs)


def resnext50_32x4d_v2b(**kwargs):
    """Pre-activation Oct-ResNeXt-50 32x4d v2b."""
    return ResNetV2('resnext50_32x4d_v2b', (3, 4, 6, 3), groups=32, mids=(128, 256, 512, 1024),
                    down_pos=1, prefix='RX50_', **kwargs)
