"""The one way the tools build a model: :func:`build_model`, for both APIs."""
import mxnet as mx

from ..gluon import get_model
from ..symbol import get_linear

__all__ = ['DEFAULT_MODELS', 'default_model', 'build_model']

DEFAULT_MODELS = {'symbol': 'resnetv2', 'gluon': 'resnet50_v1b'}


def default_model(api):
    """The model built when none is named: ``resnetv2`` (Symbol) or ``resnet50_v1b`` (Gluon)."""
    return DEFAULT_MODELS[api]


def build_model(api, model=None, depth=50, ratio=0.25, classes=1000, use_se=False,
                last_gamma=False, final_drop=0., data_shape=None, graph='optimized'):
    """Model ``model`` of ``api`` ('symbol' or 'gluon') as a HybridBlock, not initialised.

    Input ``data`` (N, 3, H, W), output logits (N, ``classes``). ``ratio`` is the
    fraction of low-frequency channels: vanilla is -1 for a Symbol network (the
    released baselines' parameter names) and 0 for a Gluon model. A Symbol network
    (``depth`` layers) comes as a ``SymbolBlock``; ``data_shape`` specialises its graph
    to one input size (see :func:`octconv.symbol.get_linear`). ``use_se`` and
    ``last_gamma`` are Gluon options: a model without them raises ValueError naming it,
    as does a Symbol network (SE is the ``seresnetv2`` network there). ``graph`` is
    'optimized' or 'straightforward' (the graph as the equations read).
    """
    model = model or default_model(api)
    if api == 'gluon':
        net = get_model(model, ratio=ratio, classes=classes, final_drop=final_drop,
                        use_se=use_se, last_gamma=last_gamma)
        net.set_graph(graph)
        return net
    if api != 'symbol':
        raise ValueError("api must be 'symbol' or 'gluon', got %r" % (api,))
    if use_se or last_gamma:
        raise ValueError('the Symbol network %s has no %s option (SE: --network seresnetv2)'
                         % (model, 'use_se' if use_se else 'last_gamma'))
    symbol = get_linear(model, depth, num_classes=classes, ratio=ratio, dropout=final_drop,
                        data_shape=data_shape, graph=graph)
    return mx.gluon.SymbolBlock(symbol, mx.sym.var('data'))
