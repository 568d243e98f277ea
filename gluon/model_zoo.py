"""One registry of the Gluon models: ``get_model(name, **kwargs)``, ``get_model_list()``.

Every model takes the same keyword arguments: ``ratio`` (fraction of
low-frequency channels, 0 = vanilla), ``classes``, ``final_drop``,
``norm_kwargs``, ``use_global_stats``, and where they apply ``use_se`` and
``last_gamma``; plus ``pretrained``, ``root`` and ``ctx``. Nothing is ever
downloaded: ``pretrained=True`` loads the released file from ``root``.
"""
import os

import mxnet as mx

from . import densenet, mobilenet, resnet
from .gluoncv_video import VIDEO_RATIO, octave_video_model, video_models
from .gluoncv_zoo import convertible_classifiers, octave_gluoncv_model
from ..utils.released import DOWNLOADS
from .released import MODELS

__all__ = ['get_model', 'get_model_list', 'released_file', 'released_models', 'paper_ratio',
           'register_gluoncv', 'DEFAULT_ROOT', 'GLUONCV_PREFIX', 'DEFAULT_OCTAVE_RATIO']

DEFAULT_ROOT = os.path.join('~', '.mxnet', 'models', 'octconv')
GLUONCV_PREFIX = 'oct_'

_MODELS = {}


def _register(*builders):
    for builder in builders:
        name = builder.__name__
        if name in _MODELS:
            raise ValueError('model %s registered twice' % name)
        _MODELS[name] = builder


_register(mobilenet.mobilenet_v1_075, mobilenet.mobilenet_v1_100, mobilenet.mobilenet_v2_100,
          mobilenet.mobilenet_v2_1125, resnet.resnet152_v1e, resnet.resnet152_v1f,
          resnet.resnet50_v1b, resnet.resnext50_32x4d_v1b, resnet.resnet50_v2b,
          resnet.resnext50_32x4d_v2b, densenet.densenet121, densenet.densenet161,
          densenet.densenet169, densenet.densenet201)

# (model, ratio, use_se) -> the released Gluon parameter file, from the records
RELEASED = {(r.network, r.ratio, r.use_se): r.file for r in MODELS}


# The ratio each model was published at (its record); every other model gets
# DEFAULT_OCTAVE_RATIO, the paper's recommended trade-off for ResNets.
DEFAULT_OCTAVE_RATIO = 0.25
_PAPER_RATIOS = {model: ratio for model, ratio, _ in RELEASED}


def paper_ratio(name):
    """The ratio ``name`` was released at (its record), else ``DEFAULT_OCTAVE_RATIO``."""
    return _PAPER_RATIOS.get(name, DEFAULT_OCTAVE_RATIO)


def released_models():
    """``{released name: (model, ratio, use_se)}``, the names of the released files without
    ``.params`` (``'se-resnet152_v1e_alpha-0.125': ('resnet152_v1e', 0.125, True)``)."""
    return {filename[:-len('.params')]: key for key, filename in RELEASED.items()}


def get_model_list():
    """The registered model names, in registration order."""
    return list(_MODELS)


def released_file(name, ratio, use_se=False):
    """The released parameter file name for a model, ratio and use_se, or None."""
    return RELEASED.get((name, float(ratio), bool(use_se)))


def get_model(name, pretrained=False, root=DEFAULT_ROOT, ctx=mx.cpu(), **kwargs):
    """Build model ``name`` and, with ``pretrained=True``, load its released parameters.

    Parameters
    ----------
    name : str
        One of :func:`get_model_list`.
    pretrained : bool or str
        True loads ``root/<released file>``; a string is a path to a parameter file.
    root : str
        Folder of the released files (default ``~/.mxnet/models/octconv``).
    ctx : Context
        Where the parameters are initialised or loaded.

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones), or ``pretrained=True`` for a
        configuration that was never released.
    FileNotFoundError
        When the released file is not in ``root``: the message gives its name and
        the address to download it from.
    """
    if name not in _MODELS:
        raise ValueError('unknown model %r; valid models: %s' % (name, ', '.join(_MODELS)))
    net = _MODELS[name](**kwargs)
    if not pretrained:
        return net
    if isinstance(pretrained, str):
        path = pretrained
    else:
        filename = released_file(name, net.ratio, kwargs.get('use_se', False))
        if filename is None:
            raise ValueError('no released parameters for %s at ratio %s%s; released: %s'
                             % (name, net.ratio, ' with use_se' if kwargs.get('use_se') else '',
                                ', '.join(sorted(RELEASED.values()))))
        path = os.path.join(os.path.expanduser(root), filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                'pretrained %s (ratio %s) needs %s in %s; download it from %s%s and put it '
                'there (nothing is downloaded automatically)'
                % (name, net.ratio, filename, os.path.expanduser(root), DOWNLOADS['gluon'],
                   filename))
    net.load_parameters(path, ctx=ctx)
    return net


def register_gluoncv(prefix=GLUONCV_PREFIX):
    """Make GluonCV's ``model_zoo.get_model`` / ``get_model_list`` know the models.

    Each model is added as ``<prefix><name>`` (``oct_resnet50_v1b``), an octave network
    at the ratio of :func:`paper_ratio` unless ``ratio=`` is given, and each released
    configuration under its released name (``resnet152_v1f_alpha-0.125``,
    ``se-resnet152_v1e_alpha-0.125``), at its ratio and SE setting: GluonCV's scripts
    give the name with ``classes``, ``ctx`` and ``pretrained``, and ``last_gamma`` or
    ``use_se`` by flag. Every other GluonCV ImageNet classification model that converts is
    added as ``<prefix><its name>`` (``oct_resnet18_v1b``, ``oct_mobilenetv3_large``),
    converted by ``octavize`` at ``DEFAULT_OCTAVE_RATIO`` unless ``ratio=`` is given, at the
    model's own input size; those of :data:`~octconv.gluon.gluoncv_zoo.NOT_CONVERTED` are
    not. So is each video model that converts (``oct_i3d_resnet50_v1_kinetics400``, and
    C2D as ``oct_c2d_resnet50_v1_kinetics400``), at the paper's video ratio 0.1 with every
    layer split (the placement whose FLOPs are the paper's Table 8) unless given,
    initialised, taking ``train_recognizer.py``'s arguments
    (:mod:`~octconv.gluon.gluoncv_video`). Returns the names added. Calling again
    changes nothing.
    """
    from gluoncv.model_zoo import model_zoo as gcv_zoo
    builders = {prefix + name: _gluoncv_builder(prefix + name, name, paper_ratio(name), False)
                for name in _MODELS}
    builders.update((released, _gluoncv_builder(released, *config))
                    for released, config in released_models().items())
    for name in convertible_classifiers():
        builders.setdefault(prefix + name, _converted_builder(prefix + name, name))
    for name in video_models():
        builders.setdefault(prefix + name, _video_builder(prefix + name, name))
    for key, builder in builders.items():
        gcv_zoo._models.setdefault(key, builder)
    return list(builders)


def _gluoncv_builder(key, name, ratio, use_se):
    def build(**kwargs):
        kwargs.setdefault('ratio', ratio)
        if use_se:
            kwargs.setdefault('use_se', True)
        return get_model(name, **kwargs)
    build.__name__ = key
    build.__doc__ = ('octconv model %s at ratio %s%s unless given, built by '
                     'octconv.gluon.get_model.' % (name, ratio, ' with SE' if use_se else ''))
    return build


def _converted_builder(key, name):
    def build(ratio=DEFAULT_OCTAVE_RATIO, **kwargs):
        return octave_gluoncv_model(name, ratio, **kwargs)
    build.__name__ = key
    build.__doc__ = ("GluonCV's %s converted by octconv.gluon.octavize at ratio %s unless "
                     'given.' % (name, DEFAULT_OCTAVE_RATIO))
    return build


def _video_builder(key, name):
    def build(nclass=400, ratio=VIDEO_RATIO, **kwargs):
        return octave_video_model(name, ratio, nclass=nclass, **kwargs)
    build.__name__ = key
    build.__doc__ = ("%s converted by octconv.gluon.octavize at ratio %s unless given (the "
                     "paper's video networks' placement), initialised." % (name, VIDEO_RATIO))
    return build
