"""Parameters, FLOPs and MACs of any MXNet symbol, in the paper's convention.

The paper counts multiply-accumulates of a forward pass, operator by operator,
from the MXNet graph with inferred shapes:

- Convolution / Deconvolution: ``out_H * out_W * prod(weight.shape)`` per image,
  plus ``prod(out)`` when it has a bias;
- FullyConnected: ``prod(weight.shape)`` per image, plus ``num_hidden`` with a bias;
- Pooling: ``prod(out) * prod(kernel)``; global pooling: ``prod(input)``;
- relu (``Activation`` with ``act_type='relu'``): ``prod(out)``;
- nothing else: not the ``relu`` operator, nor an ``Activation`` tagged with
  :data:`octconv.utils.octave.UNCOUNTED` (the optimized graph's stand-in for
  a ``relu`` operator, which the reference's counter does not see).

``macs`` counts only the multiply-adds of convolutions and fully-connected
layers. Parameters are the trainable inputs: weights, biases, BatchNorm
gamma and beta; BatchNorm running statistics (auxiliary states), a fixed gamma
(``fix_gamma``) and names in ``frozen`` are left out. Weights are found through
each operator's inputs, not by name.

Per-layer rows group the operators of one octave layer (``<layer>-h2h``,
``-h2l``, ``-l2h``, ``-l2l`` and their pooling) under ``<layer>``.
"""
import contextlib
import io
import json
import re
from collections import OrderedDict, namedtuple

import numpy as np

from .octave import UNCOUNTED

__all__ = ['Count', 'LayerCount', 'count_symbol', 'count_block', 'trace_block', 'layer_name',
           'infer_shape', 'attr_is_true', 'attr_tuple', 'node_shapes']

Count = namedtuple('Count', ['params', 'flops', 'macs', 'layers'])
Count.__doc__ = """Totals for one input shape: ``params``, ``flops``, ``macs`` (ints) and
``layers``, an ordered list of :class:`LayerCount` (operators with a cost)."""

LayerCount = namedtuple('LayerCount', ['name', 'ops', 'params', 'flops', 'macs'])

_OCTAVE_SUFFIX = re.compile(r'-(h2h|h2l|l2h|l2l|h|l)(_[a-z]+)?$')


def layer_name(op_name):
    """The layer an operator belongs to: ``conv2-h2l_down`` -> ``conv2``; ``x_fwd`` -> ``x``."""
    name = op_name[:-4] if op_name.endswith('_fwd') else op_name
    return _OCTAVE_SUFFIX.sub('', name)


def _prod(shape):
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def attr_is_true(value):
    """An MXNet graph attribute (``'True'``, ``'1'``, ``True``...) read as a bool."""
    return str(value).lower() in ('true', '1')


def attr_tuple(value, default=()):
    """An MXNet graph attribute such as ``'(1, 1)'`` as a tuple of ints; ``default`` if absent."""
    if value is None:
        return default
    return tuple(int(v) for v in re.findall(r'-?\d+', str(value)))


def _uncounted(attrs):
    return all(attrs.get(key) == value for key, value in UNCOUNTED.items())


def _op_cost(op, attrs, in_shapes, out_shape, weight_shape):
    """(flops, macs) of one operator for the whole batch."""
    batch = out_shape[0] if out_shape else 1
    if op in ('Convolution', 'Deconvolution'):
        spatial = out_shape[2:] if op == 'Convolution' else in_shapes[0][2:]
        macs = batch * _prod(spatial) * _prod(weight_shape)
        bias = 0 if attr_is_true(attrs.get('no_bias', False)) else _prod(out_shape)
        return macs + bias, macs
    if op == 'FullyConnected':
        macs = batch * _prod(weight_shape)
        bias = 0 if attr_is_true(attrs.get('no_bias', False)) else batch * int(attrs['num_hidden'])
        return macs + bias, macs
    if op == 'Pooling':
        if attr_is_true(attrs.get('global_pool', False)):
            return _prod(in_shapes[0]), 0
        return _prod(out_shape) * _prod(attr_tuple(attrs.get('kernel'))), 0
    if op == 'Activation' and attrs.get('act_type') == 'relu' and not _uncounted(attrs):
        return _prod(out_shape), 0
    return 0, 0


def infer_shape(symbol, **shapes):
    """``symbol.infer_shape(**shapes)`` without the lines MXNet prints to standard output
    when it fails (the MXNetError is raised as usual)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return symbol.infer_shape(**shapes)


def count_symbol(symbol, data_shape, data_name='data', frozen=(), other_inputs=None):
    """Count ``symbol`` for an input ``data_name`` of ``data_shape`` (N, C, H, W).

    FLOPs and MACs are for the whole batch ``N``; parameters do not depend on it.
    ``frozen`` names parameters that are not trained (e.g. a Gluon block's
    ``grad_req='null'`` ones); ``other_inputs`` maps further inputs (e.g. a low
    map) to their shapes. Raises ``ValueError`` when shapes cannot be inferred.
    """
    internals = symbol.get_internals()
    shapes_in = dict(other_inputs or {}, **{data_name: tuple(data_shape)})
    try:
        arg_shapes, out_shapes, _ = infer_shape(internals, **shapes_in)
    except Exception as err:   # MXNetError: say which input and shape
        raise ValueError('cannot infer shapes for %s=%s: %s'
                         % (data_name, tuple(data_shape), str(err).splitlines()[0])) from None
    if out_shapes is None:
        raise ValueError('cannot infer shapes for %s=%s' % (data_name, tuple(data_shape)))
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    shapes = node_shapes(nodes, internals.list_outputs(), out_shapes)

    layers = OrderedDict()
    fixed = set()
    for index, node in enumerate(nodes):
        op, attrs = node['op'], node.get('attrs', {})
        if op == 'BatchNorm' and attr_is_true(attrs.get('fix_gamma', True)):
            fixed.add(nodes[node['inputs'][1][0]]['name'])
        if op == 'null':
            continue
        inputs = [shapes.get((i, idx), ()) for i, idx, _ in node['inputs']]
        weight_shape = inputs[1] if len(inputs) > 1 else ()
        flops, macs = _op_cost(op, attrs, inputs, shapes[(index, 0)], weight_shape)
        params = sum(_prod(s) for (i, _, _), s in zip(node['inputs'][1:], inputs[1:])
                     if nodes[i]['op'] == 'null' and op in ('Convolution', 'Deconvolution',
                                                            'FullyConnected'))
        if flops == 0 and params == 0:
            continue
        row = layers.setdefault(layer_name(node['name']), [set(), 0, 0, 0])
        row[0].add(op)
        row[1] += params
        row[2] += flops
        row[3] += macs

    inputs = set(shapes_in) | {n for n in symbol.list_arguments() if n.endswith('label')}
    trainable = sum(_prod(s) for name, s in zip(internals.list_arguments(), arg_shapes)
                    if name not in inputs and name not in fixed and name not in set(frozen))
    rows = [LayerCount(name, tuple(sorted(ops)), p, f, m)
            for name, (ops, p, f, m) in layers.items()]
    return Count(trainable, sum(r.flops for r in rows), sum(r.macs for r in rows), rows)


def node_shapes(nodes, output_names, output_shapes):
    """``{(node index, output index): shape}`` by walking nodes and internal outputs together."""
    by_name = {}
    for name, shape in zip(output_names, output_shapes):
        by_name.setdefault(name, []).append(shape)
    shapes = {}
    for index, node in enumerate(nodes):
        if node['op'] == 'null':
            candidates = [node['name']]
        else:
            candidates = ['%s_output' % node['name']] + ['%s_output%d' % (node['name'], k)
                                                         for k in range(4)]
        for k, name in enumerate(n for n in candidates if n in by_name):
            shapes[(index, k)] = by_name[name].pop(0) if len(by_name[name]) > 1 \
                else by_name[name][0]
        if (index, 0) not in shapes:
            shapes[(index, 0)] = ()
    return shapes


def trace_block(block):
    """``(symbol, frozen names)`` of a Gluon HybridBlock traced on a ``data`` variable."""
    import mxnet as mx
    symbol = block(mx.sym.var('data'))
    if isinstance(symbol, (list, tuple)):
        symbol = mx.sym.Group(list(symbol))
    frozen = tuple(p.name for p in block.collect_params().values() if p.grad_req == 'null')
    return symbol, frozen


def count_block(block, data_shape):
    """Count a Gluon HybridBlock: trace it, and leave its ``grad_req='null'`` parameters out."""
    symbol, frozen = trace_block(block)
    return count_symbol(symbol, data_shape, frozen=frozen)
