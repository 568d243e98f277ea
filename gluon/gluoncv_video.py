"""GluonCV's video (action-recognition) models as octave networks, by name, and C2D.

:func:`octave_video_model` builds GluonCV's 3-D model without downloading anything and
converts it with :func:`~octconv.gluon.octavize.octavize` at its own clip
(:data:`CLIPS`): the low parts keep every frame and halve height and width. The paper's
video networks (its Table 8: I3D, C2D and I3D with non-local blocks, on ResNet-50) split
every convolution's output, the stem's and the last stage's too, and the FLOPs of that
placement, ``'all-layers'``, are the paper's (``docs/video.md``): it is the default here,
at ratio 0.1, the paper's video ratio. :func:`c2d_resnet50_v1` is the C2D network, which
GluonCV's zoo does not name: its I3D without any temporal convolution.

``register_gluoncv`` (:mod:`octconv.gluon.model_zoo`) adds each model that converts as
``oct_<name>``, built the way GluonCV's ``train_recognizer.py`` asks for it (``nclass``,
``pretrained``, ``num_segments``, ``partial_bn``...) and initialised, as GluonCV's own
models come; :data:`VIDEO_NOT_CONVERTED` names the others with what stops them.
"""
from collections import namedtuple

from .octavize import octavize

__all__ = ['VIDEO_RATIO', 'VIDEO_POLICY', 'CLIPS', 'VIDEO_NOT_CONVERTED', 'TABLE_8',
           'video_models', 'clip_shape', 'octave_video_model', 'c2d_resnet50_v1']

PaperVideoRow = namedtuple('PaperVideoRow', ['label', 'model', 'ratio', 'vanilla_gflops',
                                             'octave_gflops'])

# The paper's video networks: ratio 0.1 (Table 8's I3D, C2D and I3D + NL rows), every
# convolution split (the placement whose FLOPs are the table's).
VIDEO_RATIO = 0.1
VIDEO_POLICY = 'all-layers'
C2D = 'c2d_resnet50_v1_kinetics400'
# (frames, side) of each family's clip, GluonCV's training settings (SlowFast reads its
# fast and its slow pathway's frames, concatenated).
CLIPS = {'i3d': (32, 224), C2D: (32, 224), 'c3d': (16, 112), 'r2plus1d': (16, 112),
         'slowfast_4x16': (36, 224), 'slowfast_8x8': (40, 224), 'slowfast_16x8': (80, 224)}
# The paper's Table 8 (ResNet-50 on Kinetics-400, GFLOPs of a 32-frame 224x224 clip), with
# the GluonCV model each row's network is (C2D: :func:`c2d_resnet50_v1`; I3D + NL: five
# non-local blocks, GluonCV's i3d_nl5).
TABLE_8 = (
    PaperVideoRow('I3D', 'i3d_resnet50_v1_kinetics400', 0.1, 28.1, 25.6),
    PaperVideoRow('I3D', 'i3d_resnet50_v1_kinetics400', 0.2, 28.1, 22.1),
    PaperVideoRow('I3D', 'i3d_resnet50_v1_kinetics400', 0.3, 28.1, 15.3),
    PaperVideoRow('C2D', 'c2d_resnet50_v1_kinetics400', 0.1, 19.3, 17.4),
    PaperVideoRow('I3D + NL', 'i3d_nl5_resnet50_v1_kinetics400', 0.1, 33.3, 28.9))
_KINETICS = 'GluonCV builds it from its Kinetics-400 weights, downloaded'
# GluonCV's video models that are not offered, with what stops them.
VIDEO_NOT_CONVERTED = {
    'p3d_resnet50_kinetics400': 'its spatial convolutions run on frames folded into the '
                                'batch (2-D convolutions of a 3-D network), which have no '
                                'octave form here',
    'p3d_resnet101_kinetics400': 'the same as p3d_resnet50_kinetics400',
    'i3d_resnet50_v1_ucf101': _KINETICS, 'i3d_resnet50_v1_hmdb51': _KINETICS}
_FAMILIES = ('c3d', 'i3d_resnet', 'i3d_inceptionv1', 'i3d_inceptionv3', 'r2plus1d',
             'slowfast', 'p3d', 'actionrec_vgg16', 'actionrec_inceptionv1',
             'actionrec_inceptionv3', 'actionrec_resnetv1b')


def video_models():
    """The names of the video models that convert: GluonCV's 3-D ones, and C2D."""
    from gluoncv.model_zoo import model_zoo
    names = [name for name, build in model_zoo._models.items()
             if build.__module__.rpartition('.')[2] in _FAMILIES and not name.endswith('_int8')
             and not build.__module__.rpartition('.')[2].startswith('actionrec')
             and not name.endswith('_custom') and name not in VIDEO_NOT_CONVERTED]
    return sorted(names + [C2D])


def clip_shape(name, batch=1):
    """``(batch, 3, frames, side, side)``: the clip the video model ``name`` is made for."""
    key = next((family for family in CLIPS if name.startswith(family)), None)
    if key is None:
        raise ValueError('octconv knows no clip size for the video model %r' % name)
    frames, side = CLIPS[key]
    return (batch, 3, frames, side, side)


def c2d_resnet50_v1(nclass=400, pretrained=False, ctx=None, num_segments=1, num_crop=1,
                    partial_bn=False, bn_frozen=False, feat_ext=False, **kwargs):
    """C2D ResNet-50 (the non-local paper's baseline, the octave paper's C2D): GluonCV's I3D
    ResNet-50 with every temporal kernel 1 (2-D convolutions on each frame, and its
    temporal poolings). Initialised, without downloading anything. ValueError for
    ``pretrained``: no C2D weights were published."""
    import mxnet as mx
    from gluoncv.model_zoo.action_recognition.i3d_resnet import I3D_ResNetV1
    if pretrained:
        raise ValueError('c2d_resnet50_v1: no pretrained C2D weights exist; inflate a 2-D '
                         'network instead (octconv.gluon.inflate)')
    return I3D_ResNetV1(nclass=nclass, depth=50, pretrained=False, pretrained_base=False,
                        num_segments=num_segments, num_crop=num_crop, feat_ext=feat_ext,
                        out_indices=[3], conv1_kernel_t=1,
                        inflate_freq=((0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0)),
                        bn_eval=False, partial_bn=partial_bn, bn_frozen=bn_frozen,
                        ctx=ctx or mx.cpu(), **kwargs)


def octave_video_model(name, ratio=VIDEO_RATIO, nclass=400, policy=VIDEO_POLICY,
                       data_shape=None, pretrained=False, ctx=None, **kwargs):
    """The video model ``name`` (:func:`video_models`) with ``nclass`` classes, converted to
    its octave network at ``ratio`` with ``policy`` (an :class:`~octconv.gluon.octavize.
    Octavized` block: (N, 3, T, H, W) -> (N, nclass)), initialised on ``ctx`` as GluonCV
    initialises its own (the layers that stay vanilla keep the values GluonCV gave them).
    ``data_shape`` defaults to the model's own clip (:func:`clip_shape`); other keyword
    arguments go to GluonCV's builder (``num_segments``, ``partial_bn``, ``bn_frozen``...).
    Nothing is downloaded: GluonCV's ImageNet weights for the 2-D base are not loaded
    (:func:`~octconv.gluon.inflate.inflate` brings 2-D weights in). ValueError names an
    unknown model, ``pretrained`` (no octave video weights exist) or an option the model
    does not take."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model
    if name not in video_models():
        raise ValueError('unknown video model %r (see octconv.gluon.gluoncv_video.'
                         'video_models(); not converted: %s)'
                         % (name, ', '.join(sorted(VIDEO_NOT_CONVERTED))))
    if pretrained:
        raise ValueError('%s: a converted octave model has no pretrained parameters' % name)
    ctx = ctx or mx.cpu()
    try:
        if name == C2D:
            net = c2d_resnet50_v1(nclass=nclass, ctx=ctx, **kwargs)
        else:
            options = dict(kwargs, nclass=nclass, pretrained=False, ctx=ctx)
            if not name.startswith('c3d'):          # every other family builds a 2-D base
                options['pretrained_base'] = False
            net = get_model(name, **options)
    except TypeError as err:
        raise ValueError('GluonCV video model %s does not take these options (%s): %s'
                         % (name, ', '.join(sorted(kwargs)), err)) from None
    octave = octavize(net, ratio, data_shape=data_shape or clip_shape(name), policy=policy)
    for param in octave.collect_params().values():   # the new octave parameters, as GluonCV
        if param._data is None and not param._deferred_init:      # initialises its own
            param.initialize(ctx=ctx)
    return octave
