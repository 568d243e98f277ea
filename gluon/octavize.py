"""``octavize``: the octave version of any Gluon HybridBlock (a GluonCV zoo model, your own).

The block is traced to its MXNet graph, the graph rewritten by
:func:`octconv.utils.octavize.rewrite` (placement, policies and the operators it
converts are described there), and the result wrapped in a ``SymbolBlock``.
"""
import mxnet as mx
from mxnet.gluon import HybridBlock, SymbolBlock

from ..utils.flops import trace_block
from ..utils.octavize import rewrite

__all__ = ['octavize']


def octavize(net, ratio, data_shape=(1, 3, 224, 224), policy=None, copy_weights=False,
             outputs=None):
    """The octave network of ``net`` at ``ratio``, as a ``SymbolBlock``: (N, C, H, W) ->
    the same outputs as ``net`` (pairs merged), for any input size ``net`` takes.
    ``outputs`` names nodes of ``net``'s graph to return instead (each merged into one map,
    e.g. a backbone's stage outputs for a detector): node names such as
    ``resnetv1b_layers3_relu5_fwd``, as ``net(mx.sym.var('data')).get_internals()`` lists
    them with ``_output``.

    ``data_shape`` (N, C, H, W) is the size the placement is decided at (the stride of
    each layer); ``policy``: None or ``'paper'`` (the stem and the last stage vanilla),
    ``'split-stem'``, or a function of a :class:`~octconv.utils.octavize.Layer` giving its
    ratio. At ratio 0 the graph is ``net``'s own and so are the parameter values (copied
    where ``net`` is initialised). At ``ratio`` > 0 the layers that stay as they were
    (stem, last stage, classifier) copy ``net``'s values; the octave layers' parameters
    are new, named after the original (``conv1_h2l_weight``, ``bn1_l_gamma``), with its
    initializer and multipliers, and initialised when you call ``initialize``, unless
    ``copy_weights``: then each path or part takes the slice of the original's values for
    its channels (not for grouped convolutions other than depthwise ones).
    ValueError for a block that is not a HybridBlock or cannot be traced, a ratio outside
    [0, 1), a ``data_shape`` the network cannot take, or an operator with no octave form.
    """
    if not isinstance(net, HybridBlock):
        raise ValueError('octavize takes a Gluon HybridBlock, got %s (a Block that is not '
                         'hybridizable has no graph to rewrite)' % type(net).__name__)
    try:
        symbol, _ = trace_block(net)
    except Exception as err:  # any failure of tracing means the block is not hybridizable
        raise ValueError('octavize: %s cannot be traced to a graph (is every child a '
                         'HybridBlock, with no NDArray-only code in hybrid_forward?): %s'
                         % (type(net).__name__, str(err).strip().splitlines()[0])) from None
    if outputs is not None:
        symbol = _internal_outputs(symbol, outputs)
    octave, origins = rewrite(symbol, ratio, data_shape, policy)
    block = SymbolBlock(octave, mx.sym.var('data'))
    sources = {p.name: p for p in net.collect_params().values()}
    _finish_deferred_initialization(net, sources.values(), data_shape)
    for name, param in block.collect_params().items():
        origin = origins[name]
        source = sources[origin.name]
        param.init, param.lr_mult, param.wd_mult = source.init, source.lr_mult, source.wd_mult
        if source.grad_req == 'null':
            param.grad_req = 'null'
        values = _values(source)
        if values is not None and origin.index is not None and (origin.index == () or
                                                                copy_weights):
            # through numpy: a slice of an NDArray is a view, which MKLDNN-laid-out
            # weights do not support
            data = values.asnumpy()[origin.index]
            param.shape = data.shape
            param.initialize(ctx=values.context)
            param.set_data(mx.nd.array(data, ctx=values.context, dtype=data.dtype))
    return block


def _internal_outputs(symbol, names):
    """A group of the nodes ``names`` of ``symbol``'s graph; ValueError for a missing one."""
    internals = symbol.get_internals()
    known = set(internals.list_outputs())
    picked = []
    for name in names:
        output = name if name in known else name + '_output'
        if output not in known:
            raise ValueError('octavize: the network has no node %r (its nodes end in e.g. %s)'
                             % (name, ', '.join(sorted(known)[-3:])))
        picked.append(internals[output])
    return mx.sym.Group(picked)


def _finish_deferred_initialization(net, params, data_shape):
    """Give ``net``'s parameters whose initialization waits for a first batch their values
    (one forward pass of zeros of ``data_shape`` with batch 1), so that they can be copied."""
    waiting = [p for p in params if p._deferred_init]
    if waiting:
        with mx.autograd.pause():
            net(mx.nd.zeros((1,) + tuple(data_shape[1:]), ctx=waiting[0].list_ctx()[0]))


def _values(param):
    """The values of ``param`` on its first device, or None while it has none."""
    try:
        return param.data(param.list_ctx()[0])
    except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
        return None
