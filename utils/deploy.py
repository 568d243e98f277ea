"""Inference graphs: BatchNorm folded into the convolutions, upsampling as an MKLDNN
operator, summed convolutions merged, then MXNet's MKLDNN fusion.

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
its own pass; the deconvolution is an MKLDNN operator.

:func:`upsampling_first` and :func:`merge_summed_convolutions` turn the sum of an
octave layer's two paths into one convolution over the concatenated inputs, so that
the residual sum after it fuses into that convolution. :func:`for_inference` applies
them, then MXNet's MKLDNN fusion pass; whether merging pays depends on the CPU, so by
default it times the graphs with and without on the machine it runs on and keeps the
fastest (:mod:`octconv.utils.autotune`).
"""
import json

import numpy as np

from .flops import attr_is_true, attr_tuple, node_shapes
from .symbol_block import quiet_untyped_input, symbol_block

__all__ = ['fold_batchnorm', 'drop_noop_crops', 'upsampling_as_deconvolution',
           'pooling_as_convolution', 'upsampling_first', 'merge_summed_convolutions',
           'for_inference', 'check_mxnet_int8']

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
    nodes, uses = graph['nodes'], _uses(graph)
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
    _redirect_readers(graph, redirect)
    folded_symbol, folded_params = _finish(graph, values)
    return folded_symbol, folded_params, folded


def _redirect_readers(graph, redirect, keep=()):
    """Make every reader of a redirected node (``{node index: entry}``), heads included,
    read its replacement instead; the nodes in ``keep`` are left as they are."""
    for position, node in enumerate(graph['nodes']):
        if position not in keep:
            node['inputs'] = [_follow(redirect, e) for e in node['inputs']]
    graph['heads'] = [_follow(redirect, e) for e in graph['heads']]


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
        owned = all(_single_reader_param(nodes, e, uses, values) for e in node['inputs'][1:])
        return [entry[0]] if owned else None
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
    weight, bias = _conv_param_names(nodes, index)
    values[weight] = values[weight] * scale.reshape((-1,) + (1,) * (values[weight].ndim - 1))
    if bias is not None:
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


def drop_noop_crops(symbol, params, data_shape, data_name='data'):
    """``symbol`` without the ``slice_like`` crops that keep their input's shape for an
    input ``data_name`` of ``data_shape`` (N, C, H, W): the same outputs at that size.

    A graph built for every input size (a Module checkpoint's symbol, a Gluon model's
    export without ``data_shape``) crops each upsampled map to its high map, a no-op on
    even sizes. An INT8 runtime runs each such crop in float32 between a dequantization
    and a quantization, which costs time and accuracy. Returns ``(symbol, params,
    dropped)`` as :func:`fold_batchnorm` does.
    """
    graph = json.loads(symbol.tojson())
    shapes = _output_shapes(graph, data_shape, data_name)
    redirect, dropped = {}, []
    for index, node in enumerate(graph['nodes']):
        if node['op'] == 'slice_like' and \
                shapes.get((index, 0)) == shapes.get(tuple(node['inputs'][0][:2])):
            redirect[index] = node['inputs'][0]
            dropped.append(node['name'])
    _redirect_readers(graph, redirect)
    new_symbol, new_params = _finish(graph, _numpy(params))
    return new_symbol, new_params, dropped


def pooling_as_convolution(symbol, params, data_shape, data_name='data'):
    """Average pooling with a ``k x k`` window and stride ``k`` (an octave layer's 2x2
    downsampling) as a depthwise ``k x k`` stride-``k`` Convolution with weights
    ``1/k^2``: the same output, up to float rounding.

    Rewrites each such ``Pooling`` without padding whose input's height and width are
    multiples of ``k`` for input ``data_name`` of ``data_shape`` (N, C, H, W), so that
    no window is partial. In onnxruntime's INT8 it pays: its INT8 depthwise convolution
    runs several times faster than its ``QLinearAveragePool`` (MXNet's INT8 gains
    nothing, so :func:`for_inference` leaves the poolings; see ``docs/deployment.md``).
    The weights are new parameters ``<pooling>_weight``. Returns ``(symbol, params,
    rewritten)`` as :func:`fold_batchnorm` does.
    """
    graph = json.loads(symbol.tojson())
    nodes, values, rewritten = graph['nodes'], _numpy(params), []
    shapes = _output_shapes(graph, data_shape, data_name)
    for node in list(nodes):
        attrs = node.get('attrs', {})
        kernel, stride = attr_tuple(attrs.get('kernel')), attr_tuple(attrs.get('stride'))
        shape = shapes.get(tuple(node['inputs'][0][:2])) if node['op'] == 'Pooling' else None
        if shape is None or attrs.get('pool_type', 'max') != 'avg' or \
                attr_is_true(attrs.get('global_pool', False)) or len(kernel) != 2 or \
                kernel != stride or kernel[0] != kernel[1] or any(attr_tuple(attrs.get('pad'))) \
                or attrs.get('layout', 'NCHW') != 'NCHW' or shape[2] % kernel[0] or \
                shape[3] % kernel[1]:
            continue
        channels, size = shape[1], kernel[0]
        weight = _add_param(nodes, values, node['name'] + '_weight',
                            np.full((channels, 1, size, size), 1. / size ** 2, np.float32))
        node['op'] = 'Convolution'
        node['attrs'] = {'kernel': str(kernel), 'stride': str(kernel), 'num_filter': str(channels),
                         'num_group': str(channels), 'no_bias': 'True'}
        node['inputs'] = node['inputs'][:1] + [weight]
        rewritten.append(node['name'])
    new_symbol, new_params = _finish(graph, values)
    return new_symbol, new_params, rewritten


def upsampling_first(symbol, params, max_channel_ratio=0.25):
    """Nearest upsampling moved in front of the 1x1 convolution it follows:
    ``up(conv1x1(X))`` becomes ``conv1x1(up(X))`` (the same output, bit for bit: each
    output pixel is computed from the same numbers in the same order).

    For the low-to-high path of an octave bottleneck's last layer (``X`` the low part,
    8 channels at ratio 0.125 in ResNet-50's first stage, 224 out): the upsampling
    then moves ``C_in`` instead of ``C_out`` channels at full resolution, for
    ``3/4 * C_in * C_out`` more multiply-adds per output pixel, and the two paths of
    the high output become convolutions of the same geometry that
    :func:`merge_summed_convolutions` makes one. Moves the upsamplings (the
    deconvolutions of :func:`upsampling_as_deconvolution`) whose convolution has
    ``C_in / C_out`` at most ``max_channel_ratio``: the last layers of ResNet-50's
    bottlenecks at ratios up to 0.5 (``ratio / (4 * (1 - ratio))``). Returns
    ``(symbol, params, moved)`` as :func:`fold_batchnorm` does; ``moved`` names the
    convolutions.
    """
    graph = json.loads(symbol.tojson())
    nodes, uses, values = graph['nodes'], _uses(graph), _numpy(params)
    redirect, moved = {}, []
    for index, node in enumerate(list(nodes)):
        entry = node['inputs'][0] if node['inputs'] else None
        if not _upsampling(nodes, [index, 0, 0], uses, values) or \
                not _plain_conv(nodes, entry, uses, values) or not _is_pointwise(nodes[entry[0]]):
            continue
        conv = nodes[entry[0]]
        weight = values[_conv_param_names(nodes, entry[0])[0]]
        if weight.shape[1] > max_channel_ratio * weight.shape[0]:
            continue
        if node['op'] == 'Deconvolution':         # depthwise over the fewer channels
            up_weight = values[nodes[node['inputs'][1][0]]['name']]
            node['attrs'] = dict(node['attrs'], num_filter=str(weight.shape[1]),
                                 num_group=str(weight.shape[1]))
            node['inputs'] = [conv['inputs'][0], _add_param(
                nodes, values, node['name'] + '_in_weight',
                np.ones((weight.shape[1],) + up_weight.shape[1:], up_weight.dtype))]
        else:
            node['inputs'] = [conv['inputs'][0]]
        conv['inputs'] = [[index, 0, 0]] + conv['inputs'][1:]
        redirect[index] = entry           # the upsampling's readers read the conv instead
        moved.append(entry[0])
    _redirect_readers(graph, redirect, keep=moved)
    moved = [nodes[i]['name'] for i in moved]
    new_symbol, new_params = _finish(graph, values)
    return new_symbol, new_params, moved


def merge_summed_convolutions(symbol, params, data_shape, data_name='data'):
    """One convolution for each sum of two convolutions: ``conv(A, W1) + conv(B, W2)``
    becomes ``conv(concat(A, B), concat(W1, W2))`` (the same output).

    An octave layer's low output ``conv(pool(X_H), W_HL) + conv(X_L, W_LL)`` is such
    a sum, and so is its high output once :func:`upsampling_first` has made it
    ``conv1x1(X_H, W_HH) + conv1x1(up(X_L), W_LH)``. The sum of the two paths
    disappears, and the sum that follows (a residual shortcut) can then fuse into the
    one convolution as MKLDNN's sum post-op: an octave bottleneck's last layer had
    three terms to add and one fused sum. Both convolutions must share kernel, stride,
    padding and dilation, have one group, be read only by the sum, and have inputs of
    the same height and width for the input ``data_name`` of ``data_shape``
    (N, C, H, W). A merged convolution may be merged again with a third. A sum that a
    BatchNorm reads (one that :func:`fold_batchnorm` left: a pre-activation network's)
    stays: MXNet's fusion pass would fuse the BatchNorm into the convolution, an
    operator that MXNet 1.9.1 then fails to build a graph with. Returns
    ``(symbol, params, merged)``; ``merged`` names the sums replaced (each merged
    convolution takes its sum's name).
    """
    graph, values, merged = json.loads(symbol.tojson()), _numpy(params), []
    while True:                     # a merged convolution may be an operand of the next sum
        graph = _topological(graph)
        nodes, uses = graph['nodes'], _uses(graph)
        batchnormed = {e[0] for n in nodes if n['op'] == 'BatchNorm' for e in n['inputs'][:1]}
        shapes = _output_shapes(graph, data_shape, data_name)
        done, touched = len(merged), set()
        for index, node in enumerate(list(nodes)):
            if node['op'] not in _SUMS or len(node['inputs']) != 2 or index in batchnormed \
                    or touched & {e[0] for e in node['inputs']}:
                continue
            convs = [_summed_conv(nodes, e, uses, values, shapes) for e in node['inputs']]
            if None in convs or convs[0][2] != convs[1][2] or \
                    not _same_geometry(nodes[convs[0][0]], nodes[convs[1][0]]):
                continue
            _merge(nodes, values, node, *convs)
            touched.add(index)
            merged.append(node['name'])
        if len(merged) == done:
            break
    new_symbol, new_params = _finish(graph, values)
    return new_symbol, new_params, merged


def for_inference(symbol, params, data_shape=None, fold=True, rewrite=True, merge='auto',
                  fuse=True, ctx=None, dtype='float32', calib_data=None, calib_mode='naive'):
    """A hybridized ``SymbolBlock`` for inference: the same outputs, faster.

    ``symbol`` / ``params`` as for :func:`fold_batchnorm` (e.g. a Gluon model's
    export, best with ``data_shape`` so that it has no crops). In order:
    ``fold`` folds the BatchNorms (:func:`fold_batchnorm`); ``rewrite`` runs
    :func:`upsampling_as_deconvolution`; ``merge`` picks among three graphs:
    ``'unmerged'``, ``'upsampling-first'`` (:func:`upsampling_first`) and ``'merged'``
    (that, then :func:`merge_summed_convolutions`, which needs ``data_shape``).
    ``merge=True`` takes the last of them, ``False`` the first, and ``'auto'`` (the
    default) the fastest on this machine, timed with input ``data_shape`` by
    :func:`octconv.utils.autotune.fastest` (a few seconds; which one wins depends on
    the CPU: see that module); without ``data_shape``, ``'auto'`` takes
    ``'unmerged'``. Graphs that the passes leave unchanged are not built twice.
    ``fuse`` runs MXNet's MKLDNN fusion pass (CPU only: leave ``rewrite`` and
    ``fuse`` off for a GPU). ``data_shape`` (N, C, H, W) runs one forward pass to
    build the cached graph. Gluon's ``optimize_for`` mis-wires octave graphs'
    weights in MXNet 1.9.1; the pass is run here on the symbol
    (``get_backend_symbol``).

    The block returned says what was chosen: ``inference_graph`` (one of the names
    above) and ``inference_times`` (``{name: fastest pass in seconds}`` of the
    graphs timed, empty if none was).

    ``dtype='int8'`` returns MXNet's INT8 graph instead (CPU only), calibrated on
    ``calib_data``, an iterable of float32 arrays (NDArray or numpy) of ``data_shape``,
    with ``calib_mode`` 'naive' (each layer's min and max, the default, as GluonCV's) or
    'entropy' (KL-divergence thresholds: minutes for a ResNet-50, and not closer to
    float32 everywhere; the kept scores are in ``docs/data.md``). The same graphs are
    built first (``fold``, ``rewrite``, ``merge``; ``fuse`` is part of quantization), each
    is quantized, and ``'auto'`` times the INT8 graphs: merging matters more in INT8,
    where MXNet runs the nearest upsampling and the sums between the quantized
    convolutions (``docs/benchmarks.md``). The block also says ``calib_mode``. ValueError
    names a missing or misshapen calibration batch, a GPU ``ctx``, an unknown ``dtype`` or
    ``calib_mode``; RuntimeError an MXNet build without oneDNN (:func:`check_mxnet_int8`).
    """
    import mxnet as mx
    from .autotune import fastest
    if merge not in (True, False, 'auto'):
        raise ValueError("for_inference: merge must be True, False or 'auto', not %r"
                         % (merge,))
    ctx = ctx or mx.cpu()
    if dtype not in ('float32', 'int8'):
        raise ValueError("for_inference: dtype must be 'float32' or 'int8', not %r" % (dtype,))
    if dtype == 'int8':
        batches = _int8_checks(calib_data, data_shape, calib_mode, ctx, 'for_inference')
        check_mxnet_int8()
        # before folding: a crop may sit between a convolution and its BatchNorm
        symbol, params, _ = drop_noop_crops(symbol, params, data_shape)

        def build(graph_symbol, graph_params):
            return _int8_block(graph_symbol, graph_params, data_shape, batches, calib_mode,
                               ctx, mx)
    else:
        def build(graph_symbol, graph_params):
            return _inference_block(graph_symbol, graph_params, data_shape, fuse, ctx, mx)
    blocks = {name: build(*graph) for name, graph in
              _graphs(symbol, params, data_shape, fold, rewrite, merge).items()}
    name, times = next(iter(blocks)), {}
    if len(blocks) > 1:
        data = mx.nd.random.uniform(-1, 1, shape=data_shape, ctx=ctx)
        names = list(blocks)
        index, seconds = fastest([lambda b=blocks[n]: b(data).wait_to_read() for n in names])
        name, times = names[index], dict(zip(names, seconds))
    net = blocks[name]
    net.inference_graph, net.inference_times = name, times
    if dtype == 'int8':
        net.calib_mode = calib_mode
    return net


def _graphs(symbol, params, data_shape, fold, rewrite, merge):
    """``{name: (symbol, params)}``: the graphs :func:`for_inference` builds or picks among."""
    if fold:
        symbol, params, _ = fold_batchnorm(symbol, params)
    if rewrite:
        symbol, params, _ = upsampling_as_deconvolution(symbol, params)
    auto = merge == 'auto'
    graphs = {'unmerged': (symbol, params)}
    if (merge and not auto) or (auto and data_shape is not None):
        symbol, params, moved = upsampling_first(symbol, params)
        if moved:
            graphs['upsampling-first'] = (symbol, params)
        if data_shape is not None:
            symbol, params, merged = merge_summed_convolutions(symbol, params, data_shape)
            if merged:
                graphs['merged'] = (symbol, params)
    if merge and not auto:
        last = list(graphs)[-1]
        graphs = {last: graphs[last]}
    return graphs


def check_mxnet_int8():
    """Raise RuntimeError unless this MXNet build runs INT8 (its quantized operators are
    oneDNN ones: a build without MKLDNN has none)."""
    import mxnet as mx
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise RuntimeError('this MXNet build has no oneDNN (MKLDNN), which runs its INT8 '
                           'operators: install the mxnet wheel for x86 CPUs')


def _int8_checks(calib_data, data_shape, calib_mode, ctx, caller):
    """The calibration batches (:func:`_calibration_batches`), after checking that INT8
    can run on ``ctx`` (None: the CPU) and that ``calib_mode`` is known."""
    if ctx is not None and ctx.device_type != 'cpu':
        raise ValueError('%s: INT8 runs on the CPU (MXNet\'s quantized operators are oneDNN '
                         'ones); ctx is %s' % (caller, ctx))
    if calib_mode not in ('naive', 'entropy'):
        raise ValueError("%s: calib_mode must be 'naive' or 'entropy', not %r"
                         % (caller, calib_mode))
    return _calibration_batches(calib_data, data_shape, caller)


def _int8_block(symbol, params, data_shape, batches, calib_mode, ctx, mx):
    """MXNet's INT8 SymbolBlock of ``symbol`` calibrated on ``batches`` (see
    :func:`for_inference`)."""
    import numpy as np
    from mxnet.contrib.quantization import quantize_net_v2
    symbol = _global_pools_with_unit_kernels(symbol, mx)
    fp32 = _inference_block(symbol, params, None, False, ctx, mx)   # quantization fuses
    data = np.concatenate(batches)
    with quiet_untyped_input():     # it builds the INT8 SymbolBlock
        net = quantize_net_v2(fp32, quantized_dtype='auto', calib_mode=calib_mode,
                              calib_data=mx.io.NDArrayIter(data, batch_size=data_shape[0]),
                              num_calib_examples=len(data), ctx=ctx, logger=None)
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros(data_shape, ctx=ctx)).wait_to_read()
    return net


def _global_pools_with_unit_kernels(symbol, mx):
    """``symbol`` with the kernel of each global pooling set to 1x1. A global pooling
    pools the whole map whatever its kernel, but MXNet's quantized pooling checks the
    kernel against the input first: the reference networks' ``kernel=(7, 7)`` fails on
    maps smaller than 7x7 (inputs under 224 px)."""
    graph = json.loads(symbol.tojson())
    for node in graph['nodes']:
        attrs = node.get('attrs', {})
        if node['op'] == 'Pooling' and attr_is_true(attrs.get('global_pool', False)):
            attrs['kernel'] = '(1, 1)'
    return mx.sym.load_json(json.dumps(graph))


def _calibration_batches(calib_data, data_shape, caller):
    """``calib_data`` as a list of float32 numpy arrays, each checked to be ``data_shape``."""
    import numpy as np
    if data_shape is None:
        raise ValueError("%s: INT8 needs data_shape, the (N, C, H, W) of the calibration "
                         'batches and of the inputs' % caller)
    if calib_data is None:
        raise ValueError('%s: INT8 needs calib_data: batches of float32 arrays of data_shape '
                         '%s to calibrate with' % (caller, tuple(data_shape)))
    batches = []
    for index, batch in enumerate(calib_data):
        array = batch.asnumpy() if hasattr(batch, 'asnumpy') else np.asarray(batch)
        if array.shape != tuple(data_shape):
            raise ValueError('%s: calibration batch %d has shape %s; data_shape is %s'
                             % (caller, index, array.shape, tuple(data_shape)))
        batches.append(array.astype(np.float32))
    if not batches:
        raise ValueError('%s: calib_data holds no batch' % caller)
    return batches


def _inference_block(symbol, params, data_shape, fuse, ctx, mx):
    """A hybridized SymbolBlock of ``symbol`` with ``params`` on ``ctx`` (see
    :func:`for_inference`), run once with ``data_shape`` if given."""
    if fuse:
        symbol = symbol.get_backend_symbol('MKLDNN')
    net = symbol_block(symbol)
    for name, param in net.collect_params().items():
        param._load_init(params[name], ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    if data_shape is not None:
        net(mx.nd.zeros(data_shape, ctx=ctx)).wait_to_read()
    return net


def _uses(graph):
    """How many times each output ``(node, index)`` is read, by nodes or as a head
    (slice_like's second input, read for its shape only, does not count)."""
    uses = {}
    for node in graph['nodes']:
        read = node['inputs'][:1] if node['op'] == 'slice_like' else node['inputs']
        for entry in read:
            uses[tuple(entry[:2])] = uses.get(tuple(entry[:2]), 0) + 1
    for entry in graph['heads']:
        uses[tuple(entry[:2])] = uses.get(tuple(entry[:2]), 0) + 1
    return uses


def _output_shapes(graph, data_shape, data_name):
    """``{(node index, output index): shape}`` of ``graph`` for input ``data_name`` of
    ``data_shape``; ValueError if a shape does not follow from that input alone."""
    import mxnet as mx
    internals = mx.sym.load_json(json.dumps(graph)).get_internals()
    _, shapes, _ = internals.infer_shape_partial(**{data_name: tuple(data_shape)})
    names = internals.list_outputs()
    unknown = [n for n, shape in zip(names, shapes) if not shape or 0 in shape]
    if unknown:
        raise ValueError('merge_summed_convolutions: the shape of %s does not follow from '
                         '%s of shape %s' % (unknown[0], data_name, tuple(data_shape)))
    return node_shapes(graph['nodes'], names, shapes)


def _single_reader_param(nodes, entry, uses, values):
    node = nodes[entry[0]]
    return node['op'] == 'null' and node['name'] in values and uses.get(tuple(entry[:2])) == 1


def _plain_conv(nodes, entry, uses, values):
    """Whether ``entry`` is a one-group Convolution read once, owning its parameters."""
    if entry[1] != 0 or uses.get(tuple(entry[:2])) != 1:
        return False
    node = nodes[entry[0]]
    if node['op'] != 'Convolution' or int(node.get('attrs', {}).get('num_group', 1)) != 1:
        return False
    return all(_single_reader_param(nodes, e, uses, values) for e in node['inputs'][1:])


def _upsampling(nodes, entry, uses, values):
    """Whether ``entry`` is a nearest upsampling read once: an ``UpSampling`` of one
    input, or its deconvolution form (:func:`upsampling_as_deconvolution`: depthwise,
    kernel = stride, weights 1)."""
    if entry[1] != 0 or uses.get(tuple(entry[:2])) != 1:
        return False
    node = nodes[entry[0]]
    attrs = node.get('attrs', {})
    if node['op'] == 'UpSampling':
        return attrs.get('sample_type') == 'nearest' and len(node['inputs']) == 1
    if node['op'] != 'Deconvolution' or len(node['inputs']) != 2 or \
            attrs.get('num_group') != attrs.get('num_filter') or \
            attr_tuple(attrs.get('kernel')) != attr_tuple(attrs.get('stride')) or \
            any(any(attr_tuple(attrs.get(k))) for k in ('pad', 'adj', 'target_shape')):
        return False
    weight = node['inputs'][1]
    return _single_reader_param(nodes, weight, uses, values) and \
        bool(np.all(values[nodes[weight[0]]['name']] == 1))


def _is_pointwise(node):
    """Whether convolution ``node`` is 1x1, stride 1, dilation 1, without padding."""
    attrs = node.get('attrs', {})
    return all(attr_tuple(attrs.get(k), (1, 1)) == (1, 1) for k in ('kernel', 'stride', 'dilate')) \
        and not any(attr_tuple(attrs.get('pad')))


def _summed_conv(nodes, entry, uses, values, shapes):
    """``(conv, input, spatial)`` for an operand of a sum that is a one-group convolution
    read only there (its index, its input entry, that input's height and width), or None."""
    if not _plain_conv(nodes, entry, uses, values):
        return None
    source = nodes[entry[0]]['inputs'][0]
    shape = shapes.get(tuple(source[:2]))
    return (entry[0], source, tuple(shape[2:])) if shape else None


def _same_geometry(first, second):
    keys = ('kernel', 'stride', 'pad', 'dilate', 'layout')
    return all(first.get('attrs', {}).get(k) == second.get('attrs', {}).get(k) for k in keys)


def _conv_param_names(nodes, index):
    """(weight name, bias name or None) of convolution ``index``."""
    node = nodes[index]
    has_bias = not attr_is_true(node.get('attrs', {}).get('no_bias', False))
    return (nodes[node['inputs'][1][0]]['name'],
            nodes[node['inputs'][2][0]]['name'] if has_bias else None)


def _merge(nodes, values, total, first, second):
    """Replace sum node ``total`` by one convolution over the concatenated inputs."""
    inputs = [first[1], second[1]]
    (w1, b1), (w2, b2) = ((values[w], None if b is None else values[b])
                          for w, b in (_conv_param_names(nodes, c[0]) for c in (first, second)))
    nodes.append({'op': 'Concat', 'name': total['name'] + '_concat',
                  'attrs': {'dim': '1', 'num_args': '2'}, 'inputs': inputs})
    concat = [len(nodes) - 1, 0, 0]
    weight = _add_param(nodes, values, total['name'] + '_weight', np.concatenate([w1, w2], 1))
    conv = dict(nodes[first[0]], name=total['name'])
    conv['inputs'] = [concat, weight]
    conv['attrs'] = dict(conv['attrs'], no_bias='True')
    if b1 is not None or b2 is not None:
        bias = sum(b for b in (b1, b2) if b is not None)
        conv['inputs'].append(_add_param(nodes, values, total['name'] + '_bias', bias))
        conv['attrs']['no_bias'] = 'False'
    total.clear()
    total.update(conv)


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
