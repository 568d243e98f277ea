"""Inference graphs: BatchNorm folded into the convolutions, upsampling as an MKLDNN
operator, then MXNet's MKLDNN fusion.

At inference a BatchNorm is a per-channel ``y = scale * x + shift`` with
``scale = gamma / sqrt(running_var + eps)`` and ``shift = beta - running_mean * scale``.
When its input is a sum of convolutions, each possibly upsampled (nearest) or
cropped, as an octave layer's ``Y_H = conv(X_H, W_HH) + up(conv(X_L, W_LH))`` is,
the scale goes into every convolution's weights and biases and the shift into
one bias: both commute with nearest upsampling and cropping. The BatchNorm
then disappears and MKLDNN can fuse each convolution with the sum and the relu
that follow; MXNet's fusion pass folds only a BatchNorm that directly follows
one convolution, which is never the case for an octave layer with a low->high path.

The same function in inference mode, not for training (batch statistics).

:func:`upsampling_as_deconvolution` writes nearest 2x upsampling as a depthwise 2x2
stride-2 deconvolution with weights 1, the same output: MXNet's ``UpSampling`` works
on the plain layout only, so each one cost two layout conversions of its map besides
its own pass; the deconvolution is an MKLDNN operator. :func:`for_inference` applies
both, then MXNet's MKLDNN fusion pass.
"""
import json

import numpy as np

from .flops import attr_is_true

__all__ = ['fold_batchnorm', 'upsampling_as_deconvolution', 'for_inference']

_SUMS = ('elemwise_add', '_Plus', '_plus', 'add_n', 'ElementWiseSum')


def fold_batchnorm(symbol, params):
    """Fold every foldable BatchNorm of ``symbol`` into the convolutions that feed it.

    Parameters
    ----------
    symbol : mxnet.sym.Symbol
    params : dict
        ``{name: NDArray}``: arguments and auxiliary states (no ``arg:`` prefix).

    Returns
    -------
    (symbol, params, folded)
        The new symbol, its parameters (new biases named ``<conv>_bias``) and the
        names of the BatchNorms folded away. Outputs equal the original's in
        inference mode up to float rounding.
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    uses = {}                       # readers of each output; slice_like's shape input is none
    for node in nodes:
        read = node['inputs'][:1] if node['op'] == 'slice_like' else node['inputs']
        for entry in read:
            uses[tuple(entry[:2])] = uses.get(tuple(entry[:2]), 0) + 1
    for entry in graph['heads']:
        uses[tuple(entry[:2])] = uses.get(tuple(entry[:2]), 0) + 1
    values = _numpy(params)
    redirect, folded = {}, []
    for index, node in enumerate(nodes):
        if node['op'] != 'BatchNorm' or int(node.get('attrs', {}).get('axis', 1)) != 1:
            continue
        convs = _conv_chain(nodes, node['inputs'][0], uses, values)
        names = [nodes[e[0]]['name'] for e in node['inputs'][1:5]]
        if not convs or any(n not in values for n in names):
            continue
        gamma, beta, mean, var = (values[n] for n in names)
        attrs = node.get('attrs', {})
        if attr_is_true(attrs.get('fix_gamma', True)):
            gamma = np.ones_like(gamma)
        scale = gamma / np.sqrt(var + float(attrs.get('eps', 1e-3)))
        shift = beta - mean * scale
        for position, conv in enumerate(convs):
            _scale_conv(nodes, conv, scale, shift if position == 0 else None, values)
        redirect[index] = node['inputs'][0]
        folded.append(node['name'])
    for node in nodes:
        node['inputs'] = [_follow(redirect, e) for e in node['inputs']]
    graph['heads'] = [_follow(redirect, e) for e in graph['heads']]
    folded_symbol, folded_params = _finish(graph, values)
    return folded_symbol, folded_params, folded


def _follow(redirect, entry):
    while entry[0] in redirect and entry[1] == 0:
        entry = redirect[entry[0]]
    return entry


def _topological(graph):
    """The graph with only the nodes its heads reach, each after its inputs, renumbered."""
    nodes, order, state = graph['nodes'], [], {}
    for head in graph['heads']:
        stack = [head[0]]
        while stack:
            index = stack[-1]
            if state.get(index) == 'done':
                stack.pop()
                continue
            pending = [e[0] for e in nodes[index]['inputs'] if state.get(e[0]) != 'done']
            if pending and state.get(index) != 'open':
                state[index] = 'open'
                stack.extend(reversed(pending))
                continue
            state[index] = 'done'
            order.append(index)
            stack.pop()
    number = {old: new for new, old in enumerate(order)}
    renumbered = []
    for old in order:
        node = dict(nodes[old])
        node['inputs'] = [[number[e[0]]] + list(e[1:]) for e in node['inputs']]
        renumbered.append(node)
    return {'nodes': renumbered,
            'arg_nodes': [i for i, node in enumerate(renumbered) if node['op'] == 'null'],
            'heads': [[number[e[0]]] + list(e[1:]) for e in graph['heads']],
            'attrs': graph.get('attrs', {})}


def _conv_chain(nodes, entry, uses, values):
    """Convolutions whose (upsampled, cropped) sum is ``entry``, or None if it is anything else.

    Every intermediate result must feed only this chain, and every weight only its conv.
    """
    if uses.get(tuple(entry[:2]), 0) != 1 or entry[1] != 0:
        return None
    node = nodes[entry[0]]
    op, attrs = node['op'], node.get('attrs', {})
    if op == 'Convolution':
        weight = nodes[node['inputs'][1][0]]
        if weight['op'] != 'null' or weight['name'] not in values or \
                uses.get((node['inputs'][1][0], 0)) != 1:
            return None
        if len(node['inputs']) > 2 and (nodes[node['inputs'][2][0]]['name'] not in values or
                                        uses.get((node['inputs'][2][0], 0)) != 1):
            return None
        return [entry[0]]
    if op in _SUMS:
        convs = []
        for item in node['inputs']:
            chain = _conv_chain(nodes, item, uses, values)
            if chain is None:
                return None
            convs += chain
        return convs
    if (op == 'UpSampling' and attrs.get('sample_type') == 'nearest'
            and len(node['inputs']) == 1) or op == 'slice_like':
        return _conv_chain(nodes, node['inputs'][0], uses, values)
    return None


def _scale_conv(nodes, index, scale, shift, values):
    """Multiply conv ``index``'s output channels by ``scale``; add ``shift`` to its bias."""
    node = nodes[index]
    weight = nodes[node['inputs'][1][0]]['name']
    values[weight] = values[weight] * scale.reshape((-1,) + (1,) * (values[weight].ndim - 1))
    has_bias = not attr_is_true(node.get('attrs', {}).get('no_bias', False))
    if has_bias:
        bias = nodes[node['inputs'][2][0]]['name']
        values[bias] = values[bias] * scale + (0 if shift is None else shift)
    elif shift is not None:
        bias = _add_param(nodes, values, node['name'] + '_bias', shift.astype(values[weight].dtype))
        node['inputs'] = node['inputs'][:2] + [bias]
        node.setdefault('attrs', {})['no_bias'] = 'False'


def upsampling_as_deconvolution(symbol, params):
    """Nearest upsampling by an integer ``s`` as a depthwise ``s x s`` stride-``s``
    Deconvolution with weights 1 (the same output, bit for bit).

    Rewrites each single-input ``UpSampling`` (``sample_type='nearest'``) whose
    input comes from a convolution, which gives its channel count; the weights are
    new parameters ``<upsampling>_weight``. Returns ``(symbol, params, rewritten)``
    as :func:`fold_batchnorm` does.
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    values = _numpy(params)
    rewritten = []
    for node in list(nodes):
        attrs = node.get('attrs', {})
        if node['op'] != 'UpSampling' or attrs.get('sample_type') != 'nearest' \
                or len(node['inputs']) != 1:
            continue
        source = nodes[node['inputs'][0][0]]
        if source['op'] not in ('Convolution', 'Deconvolution') or node['inputs'][0][1] != 0:
            continue
        channels, scale = int(source['attrs']['num_filter']), int(attrs['scale'])
        dtype = values[nodes[source['inputs'][1][0]]['name']].dtype
        weight = _add_param(nodes, values, node['name'] + '_weight',
                            np.ones((channels, 1, scale, scale), dtype))
        node['op'] = 'Deconvolution'
        node['attrs'] = {'kernel': str((scale, scale)), 'stride': str((scale, scale)),
                         'num_filter': str(channels), 'num_group': str(channels),
                         'no_bias': 'True'}
        node['inputs'] = node['inputs'] + [weight]
        rewritten.append(node['name'])
    new_symbol, new_params = _finish(graph, values)
    return new_symbol, new_params, rewritten


def for_inference(symbol, params, data_shape=None, fold=True, rewrite=True, fuse=True,
                  ctx=None):
    """A hybridized ``SymbolBlock`` for inference: the same outputs, faster.

    ``symbol`` / ``params`` as for :func:`fold_batchnorm` (e.g. a Gluon model's
    export, best with ``data_shape`` so that it has no crops). In order:
    ``fold`` folds the BatchNorms (:func:`fold_batchnorm`); ``rewrite`` runs
    :func:`upsampling_as_deconvolution`; ``fuse`` runs
    MXNet's MKLDNN fusion pass (CPU only: leave ``rewrite`` and ``fuse`` off for a
    GPU). ``data_shape`` (N, C, H, W) runs one forward pass to build the cached
    graph. Gluon's ``optimize_for`` mis-wires octave graphs' weights in MXNet
    1.9.1; the pass is run here on the symbol (``get_backend_symbol``).
    """
    import mxnet as mx
    ctx = ctx or mx.cpu()
    if fold:
        symbol, params, _ = fold_batchnorm(symbol, params)
    if rewrite:
        symbol, params, _ = upsampling_as_deconvolution(symbol, params)
    if fuse:
        symbol = symbol.get_backend_symbol('MKLDNN')
    net = mx.gluon.SymbolBlock(symbol, mx.sym.var('data'))
    for name, param in net.collect_params().items():
        param._load_init(params[name], ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    if data_shape is not None:
        net(mx.nd.zeros(data_shape, ctx=ctx)).wait_to_read()
    return net


def _numpy(params):
    return {name: value.asnumpy() for name, value in params.items()}


def _add_param(nodes, values, name, value):
    """Append a parameter node ``name`` holding ``value``; returns its graph entry."""
    if name in values:
        raise ValueError('cannot add parameter %s: the graph has one of that name' % name)
    nodes.append({'op': 'null', 'name': name, 'inputs': []})
    values[name] = value
    return [len(nodes) - 1, 0, 0]


def _finish(graph, values):
    """(symbol, {name: NDArray}) of an edited graph, with the parameters it still uses."""
    import mxnet as mx
    symbol = mx.sym.load_json(json.dumps(_topological(graph)))
    wanted = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    return symbol, {n: mx.nd.array(v, dtype=v.dtype) for n, v in values.items() if n in wanted}
