"""The ablation models (paper table A), one :class:`Released` record each.

Symbol API, pre-activation networks, trained and scored with the ``symbol``
normalisation (mean 124/117/104, scale 0.0167, bicubic) at 224 px. Names are the
released files' (``a03_resnet-50_alpha-0.250.tar``); the baselines, named the same way
(``alpha-0.000``), were published as figures only: the reference README links no file.
"""
from ..utils.released import Released

__all__ = ['ABLATION', 'RESNET50_GFLOPS']

# Paper table 2: GFLOPs of the ResNet-50 ablation network at each ratio (0 = baseline).
RESNET50_GFLOPS = {0: 4.1, .125: 3.6, .25: 3.1, .5: 2.4, .75: 1.9}

_CELLS = [  # file prefix, label, network, depth, {ratio: (top1, top5)}
    ('a01_densenet-121', 'DenseNet-121', 'densenet', 121,
     {0: (75.4, 92.7), .125: (76.1, 93.0), .25: (75.9, 93.1)}),
    ('a02_resnet-26', 'ResNet-26', 'resnetv2', 26,
     {0: (73.2, 91.3), .125: (75.8, 92.6), .25: (76.1, 92.6), .5: (75.5, 92.5),
      .75: (74.6, 92.1)}),
    ('a03_resnet-50', 'ResNet-50', 'resnetv2', 50,
     {0: (77.0, 93.4), .125: (78.2, 93.9), .25: (78.0, 93.8), .5: (77.4, 93.6),
      .75: (76.7, 93.0)}),
    ('a05_se-resnet-50', 'SE-ResNet-50', 'seresnetv2', 50,
     {0: (77.6, 93.6), .125: (78.7, 94.1), .25: (78.4, 94.0), .5: (77.9, 93.8),
      .75: (77.4, 93.5)}),
    ('a04_resnext-50_32x4d', 'ResNeXt-50 (32x4d)', 'resnextv2_32x4d', 50,
     {0: (78.4, 94.0), .25: (78.8, 94.2), .5: (78.4, 94.0), .75: (77.5, 93.6)}),
    ('a06_resnet-101', 'ResNet-101', 'resnetv2', 101,
     {0: (78.5, 94.1), .125: (79.2, 94.4), .25: (79.2, 94.4), .5: (78.7, 94.1)}),
    ('a07_resnext-101_32x4d', 'ResNeXt-101 (32x4d)', 'resnextv2_32x4d', 101,
     {0: (79.4, 94.6), .25: (79.6, 94.5), .5: (78.9, 94.4)}),
    ('a08_resnet-200', 'ResNet-200', 'resnetv2', 200,
     {0: (79.6, 94.7), .125: (80.0, 94.9), .25: (79.8, 94.8), .5: (79.5, 94.7)}),
]

ABLATION = [Released('%s_alpha-%.3f' % (prefix, ratio), label, 'A', 'symbol', network, depth,
                     ratio, False, top1, top5,
                     gflops=RESNET50_GFLOPS[ratio] if (network, depth) == ('resnetv2', 50)
                     else None, convention='symbol', released=ratio != 0)
            for prefix, label, network, depth, cells in _CELLS
            for ratio, (top1, top5) in cells.items()]
