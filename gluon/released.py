"""The released Gluon checkpoints (paper table B), one :class:`Released` record each.

Names are the released parameter files' (``resnet152_v1f_alpha-0.125.params``);
each is scored with the ``gluon`` normalisation at 224 px. Label smoothing and
mixup are what the table says each was trained with.
"""
from ..utils.released import Released

__all__ = ['MODELS']

MODELS = [
    Released('mobilenet_v1_075_alpha-0.375', '0.75 MobileNet (v1)', 'B', 'gluon',
             'mobilenet_v1_075', None, .375, False, 70.5, 89.5, earlier_top1=70.6,
             params_m=2.6, gflops=0.213),
    Released('mobilenet_v1_100_alpha-0.5', '1.0 MobileNet (v1)', 'B', 'gluon',
             'mobilenet_v1_100', None, .5, False, 72.5, 90.6, earlier_top1=72.4,
             params_m=4.2, gflops=0.321),
    Released('mobilenet_v2_100_alpha-0.375', '1.0 MobileNet (v2)', 'B', 'gluon',
             'mobilenet_v2_100', None, .375, False, 72.0, 90.7, params_m=3.5, gflops=0.256,
             label_smoothing=True),
    Released('mobilenet_v2_1125_alpha-0.5', '1.125 MobileNet (v2)', 'B', 'gluon',
             'mobilenet_v2_1125', None, .5, False, 73.0, 91.2, params_m=4.2, gflops=0.295,
             label_smoothing=True),
    Released('resnet152_v1f_alpha-0.125', 'Oct-ResNet-152', 'B', 'gluon', 'resnet152_v1f',
             None, .125, False, 81.4, 95.4, params_m=60.2, gflops=10.9,
             label_smoothing=True, mixup=True),
    Released('se-resnet152_v1e_alpha-0.125', 'Oct-ResNet-152 + SE', 'B', 'gluon',
             'resnet152_v1e', None, .125, True, 81.6, 95.7, params_m=66.8, gflops=10.9,
             label_smoothing=True, mixup=True),
]
