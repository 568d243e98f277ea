"""GluonCV's ImageNet classification models as octave networks, by name.

:func:`octave_gluoncv_model` builds GluonCV's model and converts it with
:func:`~octconv.gluon.octavize.octavize`, at the model's own input size
(:data:`INPUT_SIZES`); :func:`gluoncv_classifiers` lists the names it takes.
``register_gluoncv`` (:mod:`octconv.gluon.model_zoo`) adds each that converts as
``oct_<name>`` where octconv has no hand-built model of that name; :data:`NOT_CONVERTED`
names the others, with what stops them.
"""
from .octavize import octavize

__all__ = ['GLUONCV_FAMILIES', 'gluoncv_classifiers', 'convertible_classifiers',
           'octave_gluoncv_model', 'input_size', 'DENSE_POLICY', 'INPUT_SIZES', 'NOT_CONVERTED']

# The modules of GluonCV's model zoo that hold its ImageNet classification models.
GLUONCV_FAMILIES = ('alexnet', 'densenet', 'dla', 'googlenet', 'hrnet', 'inception',
                    'mobilenet', 'mobilenetv3', 'nasnet', 'residual_attentionnet', 'resnest',
                    'resnet', 'resnetv1b', 'resnext', 'senet', 'shufflenet', 'squeezenet',
                    'vgg', 'xception')
# DenseNets split the stem's output too, as the reference's Oct-DenseNet does.
DENSE_POLICY = 'split-stem'
# The side of the images a model is made for, where it is not 224 (GluonCV's scripts take it
# as --input-size): the placement is decided at it.
INPUT_SIZES = {'inceptionv3': 299}
_GROUPS = ('its %d-group convolutions do not divide the octave parts at ratio 0.25 (each '
           'path keeps all %d groups, as in octconv\'s ResNeXt); at ratio 0.5 it converts')
_GROUP_NORM = ("GluonCV's GroupNorm reads its input's shape and calls reshape with positional "
               "sizes in hybrid_forward: it runs imperatively but cannot be traced to a graph")
# GluonCV's classifiers that do not convert, with what stops them.
NOT_CONVERTED = {'resnet50_v1b_gn': _GROUP_NORM, 'resnet101_v1b_gn': _GROUP_NORM,
                 'senet_154': _GROUPS % (64, 64), 'senet_154e': _GROUPS % (64, 64),
                 'shufflenet_v1': _GROUPS % (3, 3)}


def gluoncv_classifiers():
    """The names of GluonCV's ImageNet classification models (quantized, CIFAR and
    segmentation variants left out), sorted."""
    from gluoncv.model_zoo import model_zoo
    return sorted(name for name, build in model_zoo._models.items()
                  if build.__module__.rpartition('.')[2] in GLUONCV_FAMILIES and
                  not name.startswith('cifar_') and not name.endswith(('_int8', '_s')))


def convertible_classifiers():
    """The names of :func:`gluoncv_classifiers` that convert (all but
    :data:`NOT_CONVERTED`)."""
    return [name for name in gluoncv_classifiers() if name not in NOT_CONVERTED]


def input_size(name):
    """The side of the images GluonCV's model ``name`` is made for (224 unless
    :data:`INPUT_SIZES` says otherwise)."""
    return INPUT_SIZES.get(name, 224)


def octave_gluoncv_model(name, ratio, classes=1000, last_gamma=False, policy=None,
                         data_shape=None, **kwargs):
    """GluonCV's classification model ``name`` with ``classes`` outputs, converted to its
    octave network at ``ratio`` (an :class:`~octconv.gluon.octavize.Octavized` block:
    (N, 3, H, W) -> (N, classes)); other keyword arguments go to GluonCV's ``get_model``.
    ``data_shape`` defaults to the model's own input size (:func:`input_size`), ``policy``
    to the paper's placement (``'split-stem'`` for DenseNets). GluonCV's HRNets take their
    number of classes as ``num_classes`` and ignore ``classes``: here ``classes`` is passed
    on as ``num_classes``. ValueError names an unknown model or an option the model does
    not take."""
    from gluoncv.model_zoo import get_model
    if name not in gluoncv_classifiers():
        raise ValueError('unknown GluonCV classification model %r (see '
                         'octconv.gluon.gluoncv_classifiers())' % (name,))
    if kwargs.pop('pretrained', False):
        raise ValueError('%s: a converted octave model has no pretrained parameters' % name)
    options = dict(kwargs, classes=classes, pretrained=False)
    if name.startswith('hrnet'):
        options['num_classes'] = options.pop('classes')
    if last_gamma:
        options['last_gamma'] = True
    try:
        net = get_model(name, **options)
    except TypeError as err:
        raise ValueError('GluonCV model %s does not take these options (%s): %s'
                         % (name, ', '.join(sorted(options)), err)) from None
    if policy is None and name.startswith('densenet'):
        policy = DENSE_POLICY
    if data_shape is None:
        data_shape = (1, 3, input_size(name), input_size(name))
    return octavize(net, ratio, data_shape=data_shape, policy=policy)
