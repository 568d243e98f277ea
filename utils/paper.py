"""The published figures of the paper ("Drop an Octave", ICCV 2019), as data.

Table A: the ablation networks (Symbol API) at each published ratio, with
top-1 / top-5; GFLOPs were published for ResNet-50 only. Table B: the Gluon
models with their published parameters, FLOPs and accuracy.
"""
from collections import namedtuple

__all__ = ['AblationRow', 'GluonRow', 'TABLE_A', 'TABLE_B', 'RESNET50_GFLOPS',
           'table1_flop_factor']

AblationRow = namedtuple('AblationRow', ['label', 'network', 'depth', 'ratio', 'top1', 'top5'])
GluonRow = namedtuple('GluonRow', ['label', 'model', 'ratio', 'use_se', 'params_m', 'flops',
                                   'top1', 'top5'])

_A = [  # label, network, depth, {ratio: (top1, top5)}; ratio 0 = baseline (vanilla)
    ('DenseNet-121', 'densenet', 121, {0: (75.4, 92.7), .125: (76.1, 93.0), .25: (75.9, 93.1)}),
    ('ResNet-26', 'resnetv2', 26, {0: (73.2, 91.3), .125: (75.8, 92.6), .25: (76.1, 92.6),
                                   .5: (75.5, 92.5), .75: (74.6, 92.1)}),
    ('ResNet-50', 'resnetv2', 50, {0: (77.0, 93.4), .125: (78.2, 93.9), .25: (78.0, 93.8),
                                   .5: (77.4, 93.6), .75: (76.7, 93.0)}),
    ('SE-ResNet-50', 'seresnetv2', 50, {0: (77.6, 93.6), .125: (78.7, 94.1),
                                        .25: (78.4, 94.0), .5: (77.9, 93.8),
                                        .75: (77.4, 93.5)}),
    ('ResNeXt-50 (32x4d)', 'resnextv2_32x4d', 50, {0: (78.4, 94.0), .25: (78.8, 94.2),
                                                  .5: (78.4, 94.0), .75: (77.5, 93.6)}),
    ('ResNet-101', 'resnetv2', 101, {0: (78.5, 94.1), .125: (79.2, 94.4), .25: (79.2, 94.4),
                                     .5: (78.7, 94.1)}),
    ('ResNeXt-101 (32x4d)', 'resnextv2_32x4d', 101, {0: (79.4, 94.6), .25: (79.6, 94.5),
                                                    .5: (78.9, 94.4)}),
    ('ResNet-200', 'resnetv2', 200, {0: (79.6, 94.7), .125: (80.0, 94.9), .25: (79.8, 94.8),
                                     .5: (79.5, 94.7)}),
]
TABLE_A = [AblationRow(label, network, depth, ratio, top1, top5)
           for label, network, depth, cells in _A for ratio, (top1, top5) in cells.items()]

# Paper table 2: ResNet-50 GFLOPs at ratio 0 (baseline), .125, .25, .5, .75.
RESNET50_GFLOPS = {0: 4.1, .125: 3.6, .25: 3.1, .5: 2.4, .75: 1.9}

TABLE_B = [
    GluonRow('0.75 MobileNet (v1)', 'mobilenet_v1_075', .375, False, 2.6, 213e6, 70.5, 89.5),
    GluonRow('1.0 MobileNet (v1)', 'mobilenet_v1_100', .5, False, 4.2, 321e6, 72.5, 90.6),
    GluonRow('1.0 MobileNet (v2)', 'mobilenet_v2_100', .375, False, 3.5, 256e6, 72.0, 90.7),
    GluonRow('1.125 MobileNet (v2)', 'mobilenet_v2_1125', .5, False, 4.2, 295e6, 73.0, 91.2),
    GluonRow('Oct-ResNet-152', 'resnet152_v1f', .125, False, 60.2, 10.9e9, 81.4, 95.4),
    GluonRow('Oct-ResNet-152 + SE', 'resnet152_v1e', .125, True, 66.8, 10.9e9, 81.6, 95.7),
]


def table1_flop_factor(ratio):
    """Paper table 1: an octave layer's FLOPs relative to vanilla, 1 - 3/4 a (2 - a)."""
    return 1 - 0.75 * ratio * (2 - ratio)
