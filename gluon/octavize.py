"""``octavize``: the octave version of any Gluon HybridBlock (a GluonCV zoo model, your own).

The block is traced to its MXNet graph, the graph rewritten and checked by
:func:`octconv.utils.octavize.convert` (placement, policies and the operators it
converts are described there and in :mod:`octconv.utils.placement`), and the result
wrapped in an :class:`Octavized` block. The block given is left as it was.
"""

import mxnet as mx
from mxnet.gluon import HybridBlock, SymbolBlock

from ..utils.flops import trace_block
from ..utils.octave import crops_are_noops, octave_axes
from ..utils.octavize import convert, take
from ..utils.symbol_block import quiet_untyped_input, symbol_block

__all__ = ['octavize', 'Octavized']


class Octavized(SymbolBlock):
    """A converted network: a ``SymbolBlock`` of the octave graph, (N, C, H, W) (a video's
    (N, C, T, H, W), a signal's (N, C, L)) -> the original's outputs, for every input size
    the original takes.

    ``smallest_input`` is the smallest square input the original takes (None when it was
    not found below ``data_shape``; for a video, the smallest square frame with
    ``data_shape``'s number of frames) and ``graph_from`` the smallest the octave graph
    takes.
    Where they differ, an input with a side below ``graph_from`` (one on which some octave
    layer would have to halve a 1-pixel map) runs a second graph made for such inputs, with
    the same parameters. An input on which every map has even sides (checked once per input
    size) runs the graph without the crops and padding that odd sides need, the same
    numbers faster. Tracing, ``export`` and ONNX export give the first graph.
    """

    def __init__(self, conversion):
        with quiet_untyped_input():
            super().__init__(conversion.symbol, mx.sym.var('data'))
        self._alternatives = _Unregistered({
            name: symbol_block(symbol, params=self.collect_params())
            for name, symbol in (('small', conversion.small_maps),
                                 ('even', conversion.even_maps)) if symbol is not None})
        self.smallest_input = conversion.smallest
        self.graph_from = conversion.graph_from
        self._octave_graph = conversion.symbol
        self._even_sizes = {}

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray):
            graph = self._graph_for(x.shape)
            if graph is not None:
                return graph(x, *args)
        return super().forward(x, *args)

    def _graph_for(self, shape):
        """The alternative graph for inputs of ``shape``, or None for the first graph."""
        graphs = self._alternatives.blocks
        if 'small' in graphs and \
                min(shape[2 + a] for a in octave_axes(len(shape) - 2)) < self.graph_from:
            return graphs['small']
        if 'even' not in graphs:
            return None
        size = (1,) + tuple(shape[1:])
        if size not in self._even_sizes:
            self._even_sizes[size] = crops_are_noops(self._octave_graph, size)
        return graphs['even'] if self._even_sizes[size] else None

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Write ``path-symbol.json`` and ``path-%04d.params`` as ``HybridBlock.export``
        does: the first graph (every input size) and its parameters, whichever graph the
        last batch ran and with no forward call needed."""
        symbol = self._cached_graph[1]
        symbol.save('%s-symbol.json' % path, remove_amp_cast=remove_amp_cast)
        kinds = dict([(name, 'arg') for name in symbol.list_arguments()] +
                     [(name, 'aux') for name in symbol.list_auxiliary_states()])
        mx.nd.save('%s-%04d.params' % (path, epoch),
                   {'%s:%s' % (kinds[name], name): param._reduce()
                    for name, param in self.collect_params().items() if name in kinds})

    def hybridize(self, active=True, **kwargs):
        super().hybridize(active, **kwargs)
        for block in self._alternatives.blocks.values():
            block.hybridize(active, **kwargs)

    def cast(self, dtype):
        super().cast(dtype)
        for block in self._alternatives.blocks.values():
            block._clear_cached_op()


class _Unregistered:
    """Holds blocks that share their owner's parameters without being its children."""

    def __init__(self, blocks):
        self.blocks = blocks


def octavize(net, ratio, data_shape=(1, 3, 224, 224), policy=None, copy_weights=False,
             outputs=None):
    """The octave network of ``net`` at ``ratio``, an :class:`Octavized` block: (N, C, H, W)
    -> the same outputs as ``net`` (pairs merged), for any input size ``net`` takes.
    ``outputs`` names a node, or a list of nodes, of ``net``'s graph to return instead
    (each merged into one map, e.g. a backbone's stage outputs for a detector): node names
    such as ``resnetv1b_layers3_relu5_fwd``, as ``net(mx.sym.var('data')).get_internals()``
    lists them with ``_output``.

    ``data_shape`` (N, C, H, W) is the size the placement is decided at (the stride of
    each layer); (N, C, T, H, W) for a video network, whose low parts keep every frame,
    (N, C, L) for a signal's; ``policy``: None or ``'paper'`` (the stem and the last stage vanilla),
    ``'split-stem'``, or a function of a :class:`~octconv.utils.placement.Layer` giving its
    ratio. At ratio 0 the graph is ``net``'s own and so are the parameter values (copied
    where ``net`` is initialised). At ``ratio`` > 0 the layers that stay as they were
    (stem, last stage, classifier) copy ``net``'s values; the octave layers' parameters
    are new, named after the original (``conv1_h2l_weight``, ``bn1_l_gamma``), with its
    initializer and multipliers, and initialised when you call ``initialize``, unless
    ``copy_weights``: then each path or part takes the slice of the original's values for
    its channels (not for grouped convolutions other than depthwise ones). A parameter of
    ``net`` initialised but still waiting for its first batch has no values to copy: it is
    initialised in the octave network the same way, at that network's first batch
    (``copy_weights=True`` refuses it). ``net`` itself, its parameters and their values,
    is left as it was.
    TypeError for a Symbol (see ``octconv.symbol.octavize``) or a ``data_shape`` that is
    not a tuple; ValueError for a block that is not a HybridBlock or cannot be traced, a
    ratio outside [0, 1), a ``data_shape`` the network cannot take, a node ``outputs``
    names that the graph does not have, or an operator with no octave form.
    """
    if isinstance(net, mx.sym.Symbol):
        raise TypeError('octconv.gluon.octavize converts a Gluon HybridBlock, got a Symbol; '
                        'for a Symbol use octconv.symbol.octavize')
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
        symbol = _internal_outputs(symbol, [outputs] if isinstance(outputs, str) else outputs)
    conversion = convert(symbol, ratio, data_shape, policy)
    block = Octavized(conversion)
    sources = {p.name: p for p in net.collect_params().values()}
    for name, param in block.collect_params().items():
        origin = conversion.origins[name]
        source = sources[origin.name]
        param.init, param.lr_mult, param.wd_mult = source.init, source.lr_mult, source.wd_mult
        if source.grad_req == 'null':
            param.grad_req = 'null'
        values = _values(source)
        if values is not None and origin.index is not None and (origin.index == () or
                                                                copy_weights):
            # through numpy: a slice of an NDArray is a view, which MKLDNN-laid-out
            # weights do not support
            data = take(values.asnumpy(), origin.index)
            param.shape = data.shape
            param.initialize(ctx=values.context)
            param.set_data(mx.nd.array(data, ctx=values.context, dtype=data.dtype))
        elif source._deferred_init:       # initialised, waiting for its first batch
            if copy_weights and origin.index is not None:
                raise ValueError('octavize: copy_weights=True, but %s has no values yet (it '
                                 'waits for the first batch through the network); run one '
                                 'batch through the network first' % source.name)
            init, ctx, default_init, _ = source._deferred_init
            param.initialize(init=init, ctx=ctx, default_init=default_init)
    return block


def _internal_outputs(symbol, names):
    """A group of the nodes ``names`` of ``symbol``'s graph; ValueError for a missing one."""
    internals = symbol.get_internals()
    known = set(internals.list_outputs())
    picked = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError('octavize: outputs names nodes (strings), got %r' % (name,))
        output = name if name in known else name + '_output'
        if output not in known:
            raise ValueError('octavize: the network has no node %r (its nodes end in e.g. %s)'
                             % (name, ', '.join(sorted(known)[-3:])))
        picked.append(internals[output])
    return mx.sym.Group(picked)


def _values(param):
    """The values of ``param`` on its first device, or None while it has none."""
    try:
        return param.data(param.list_ctx()[0])
    except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
        return None
