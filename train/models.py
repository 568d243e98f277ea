"""The one way the tools build a model: :func:`build_model`, for both APIs."""
import mxnet as mx

from ..gluon import get_model
from ..gluon.gluoncv_video import clip_shape, octave_video_model, video_models
from ..gluon.gluoncv_zoo import octave_gluoncv_model
from ..symbol import get_linear
from ..utils.symbol_block import symbol_block

__all__ = ['APIS', 'DEFAULT_MODELS', 'default_model', 'build_model', 'inference_graph',
           'is_video_model', 'video_frames']

APIS = ('symbol', 'gluon', 'gluoncv')
DEFAULT_MODELS = {'symbol': 'resnetv2', 'gluon': 'resnet50_v1b', 'gluoncv': 'resnet50_v1b'}


def default_model(api):
    """The model built when none is named: ``resnetv2`` (Symbol), ``resnet50_v1b`` (Gluon, and
    GluonCV's converted)."""
    return DEFAULT_MODELS[api]


def is_video_model(api, model):
    """Whether ``model`` of ``api`` is one of GluonCV's video models (``--api gluoncv``)."""
    return api == 'gluoncv' and model in video_models()


def video_frames(model, frames=None):
    """``frames``, or the number of frames of the video model ``model``'s own clip."""
    return frames if frames is not None else clip_shape(model)[2]


def build_model(api, model=None, depth=50, ratio=0.25, classes=1000, use_se=False,
                last_gamma=False, final_drop=0., data_shape=None, graph='optimized'):
    """Model ``model`` of ``api`` as a HybridBlock, not initialised: 'symbol' (the ablation
    networks), 'gluon' (octconv's Gluon models) or 'gluoncv' (any GluonCV ImageNet
    classification model, converted by ``octavize``, or one of its video models:
    :func:`~octconv.gluon.gluoncv_video.octave_video_model`).

    Input ``data`` (N, 3, H, W) (a video model's (N, 3, T, H, W)), output logits
    (N, ``classes``). ``ratio`` is the fraction of low-frequency channels: vanilla is -1
    for a Symbol network (the released baselines' parameter names) and 0 for a Gluon
    model. A Symbol network
    (``depth`` layers) comes as a ``SymbolBlock``; ``data_shape`` specialises its graph
    to one input size (see :func:`octconv.symbol.get_linear`). ``use_se`` and
    ``last_gamma`` are Gluon options: a model without them raises ValueError naming it,
    as does a Symbol network (SE is the ``seresnetv2`` network there). ``graph`` is
    'optimized' or 'straightforward' (the graph as the equations read).
    """
    if api not in APIS:
        raise ValueError('api must be one of %s, got %r' % (', '.join(APIS), api))
    model = model or default_model(api)
    if api == 'gluoncv':
        if use_se or final_drop or graph != 'optimized':
            raise ValueError('GluonCV model %s: %s is not an option of a converted model (SE '
                             'models have their own names, e.g. se_resnext50_32x4d)' % (
                                 model, 'use_se' if use_se else 'final_drop' if final_drop
                                 else 'graph %r' % graph))
        if is_video_model(api, model):
            if last_gamma:
                raise ValueError('GluonCV video model %s: last_gamma is not one of its '
                                 'options' % model)
            return octave_video_model(model, ratio, nclass=classes)
        return octave_gluoncv_model(model, ratio, classes=classes, last_gamma=last_gamma)
    if api == 'gluon':
        net = get_model(model, ratio=ratio, classes=classes, final_drop=final_drop,
                        use_se=use_se, last_gamma=last_gamma)
        net.set_graph(graph)
        return net
    if use_se or last_gamma:
        raise ValueError('the Symbol network %s has no %s option (SE: --network seresnetv2)'
                         % (model, 'use_se' if use_se else 'last_gamma'))
    symbol = get_linear(model, depth, num_classes=classes, ratio=ratio, dropout=final_drop,
                        data_shape=data_shape, graph=graph)
    return symbol_block(symbol)


def inference_graph(net, data_shape):
    """``(symbol, {name: NDArray})`` of a built, initialised model, for
    :func:`octconv.utils.deploy.for_inference` and the ONNX export: a SymbolBlock's own
    graph, or an octconv Gluon model's graph specialised to ``data_shape`` (N, C, H, W)."""
    if isinstance(net, mx.gluon.SymbolBlock):
        return net(mx.sym.var('data')), {n: p.data() for n, p in net.collect_params().items()}
    return net.export_graph(data_shape)
