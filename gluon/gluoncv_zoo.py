"""GluonCV's ImageNet classification models as octave networks, by name.

:func:`octave_gluoncv_model` builds GluonCV's model and converts it with
:func:`~octconv.gluon.octavize.octavize`; :func:`gluoncv_classifiers` lists the names it
takes. ``register_gluoncv`` (:mod:`octconv.gluon.model_zoo`) adds each as ``oct_<name>``
where octconv has no hand-built model of that name.
"""
from .octavize import octavize

__all__ = ['GLUONCV_FAMILIES', 'gluoncv_classifiers', 'octave_gluoncv_model',
           'DENSE_POLICY']

# The modules of GluonCV's model zoo that hold its ImageNet classification models.
GLUONCV_FAMILIES = ('alexnet', 'densenet', 'dla', 'googlenet', 'hrnet', 'inception',
                    'mobilenet', 'mobilenetv3', 'nasnet', 'residual_attentionnet', 'resnest',
                    'resnet', 'resnetv1b', 'resnext', 'senet', 'shufflenet', 'squeezenet',
                    'vgg', 'xception')
# DenseNets split the stem's output too, as the reference's Oct-DenseNet does.
DENSE_POLICY = 'split-stem'


def gluoncv_classifiers():
    """The names of GluonCV's ImageNet classification models (quantized, CIFAR and
    segmentation variants left out), sorted."""
    from gluoncv.model_zoo import model_zoo
    return sorted(name for name, build in model_zoo._models.items()
                  if build.__module__.rpartition('.')[2] in GLUONCV_FAMILIES and
                  not name.startswith('cifar_') and not name.endswith(('_int8', '_s')))


def octave_gluoncv_model(name, ratio, classes=1000, last_gamma=False, policy=None,
                         data_shape=(1, 3, 224, 224), **kwargs):
    """GluonCV's classification model ``name`` with ``classes`` outputs, converted to its
    octave network at ``ratio`` (a ``SymbolBlock``: (N, 3, H, W) -> (N, classes)); other
    keyword arguments go to GluonCV's ``get_model``. ``policy`` defaults to the paper's
    placement (``'split-stem'`` for DenseNets). ValueError names an unknown model or an
    option the model does not take."""
    from gluoncv.model_zoo import get_model
    if name not in gluoncv_classifiers():
        raise ValueError('unknown GluonCV classification model %r (see '
                         'octconv.gluon.gluoncv_classifiers())' % (name,))
    if kwargs.pop('pretrained', False):
        raise ValueError('%s: a converted octave model has no pretrained parameters' % name)
    options = dict(kwargs, classes=classes, pretrained=False)
    if last_gamma:
        options['last_gamma'] = True
    try:
        net = get_model(name, **options)
    except TypeError as err:
        raise ValueError('GluonCV model %s does not take these options (%s): %s'
                         % (name, ', '.join(sorted(options)), err)) from None
    if policy is None and name.startswith('densenet'):
        policy = DENSE_POLICY
    return octavize(net, ratio, data_shape=data_shape, policy=policy)
