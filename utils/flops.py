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
import json
import re
from collections import OrderedDict, namedtuple

import numpy as np

from .octave import UNCOUNTED

__all__ = ['Count', 'LayerCount', 'count_symbol', 'count_block', 'trace_block', 'layer_name',
           'paper_rows', 'main']

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


def _tuple(value, default=()):
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
        return _prod(out_shape) * _prod(_tuple(attrs.get('kernel'))), 0
    if op == 'Activation' and attrs.get('act_type') == 'relu' and not _uncounted(attrs):
        return _prod(out_shape), 0
    return 0, 0


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
        arg_shapes, out_shapes, _ = internals.infer_shape(**shapes_in)
    except Exception as err:   # MXNetError: say which input and shape
        raise ValueError('cannot infer shapes for %s=%s: %s'
                         % (data_name, tuple(data_shape), str(err).splitlines()[0])) from None
    if out_shapes is None:
        raise ValueError('cannot infer shapes for %s=%s' % (data_name, tuple(data_shape)))
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    shapes = _node_shapes(nodes, internals.list_outputs(), out_shapes)

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


def _node_shapes(nodes, output_names, output_shapes):
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


def _human(value):
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(value) >= scale:
            return '%.2f%s' % (value / scale, unit)
    return str(value)


def paper_rows(data_shape=(1, 3, 224, 224)):
    """Every row of the paper's tables A and B with the counted figures beside the published.

    Yields dicts: ``table``, ``label``, ``ratio``, ``params``, ``flops`` (counted) and
    ``paper_params`` / ``paper_flops`` with ``params_diff`` / ``flops_diff``
    (relative) where the paper published a figure.
    """
    from ..gluon import get_model
    from ..symbol import get_linear
    from .paper import RESNET50_GFLOPS, TABLE_A, TABLE_B
    for row in TABLE_A:
        counted = count_symbol(get_linear(row.network, row.depth, ratio=row.ratio), data_shape)
        paper_gflops = RESNET50_GFLOPS.get(row.ratio) if row.label == 'ResNet-50' else None
        yield _paper_row('A', row.label, row.ratio, counted, None,
                         None if paper_gflops is None else paper_gflops * 1e9)
    for row in TABLE_B:
        net = get_model(row.model, ratio=row.ratio, **({'use_se': True} if row.use_se else {}))
        yield _paper_row('B', row.label, row.ratio, count_block(net, data_shape),
                         row.params_m * 1e6, row.flops)


def _paper_row(table, label, ratio, counted, paper_params, paper_flops):
    row = {'table': table, 'label': label, 'ratio': ratio, 'params': counted.params,
           'flops': counted.flops, 'paper_params': paper_params, 'paper_flops': paper_flops}
    row['params_diff'] = None if paper_params is None else counted.params / paper_params - 1
    row['flops_diff'] = None if paper_flops is None else counted.flops / paper_flops - 1
    return row


def _print_paper(rows, out):
    fmt = '%-5s %-22s %6s %10s %10s %8s %10s %10s %8s'
    print(fmt % ('table', 'model', 'ratio', 'params', 'paper', 'diff', 'FLOPs', 'paper',
                 'diff'), file=out)
    for r in rows:
        pct = (lambda d: '' if d is None else '%+.2f%%' % (100 * d))
        print(fmt % (r['table'], r['label'], 'base' if r['ratio'] < 0 else '%g' % r['ratio'],
                     _human(r['params']), _human(r['paper_params']) if r['paper_params'] else '',
                     pct(r['params_diff']), _human(r['flops']),
                     _human(r['paper_flops']) if r['paper_flops'] else '',
                     pct(r['flops_diff'])), file=out)


def main(argv=None):
    """``octconv-flops``: parameters, FLOPs and MACs of a model, or the paper's tables."""
    import sys
    from .cli import describe, input_shape, model_symbol, parser_with_model_args
    parser = parser_with_model_args('octconv-flops', main.__doc__)
    parser.add_argument('--per-layer', action='store_true', help='one row per layer')
    parser.add_argument('--json', action='store_true', help='print JSON lines')
    parser.add_argument('--paper', action='store_true',
                        help="every row of the paper's tables A and B beside the published "
                             'figures (at 1x3x224x224)')
    args = parser.parse_args(argv)
    try:
        if args.paper:
            rows = list(paper_rows())
            if args.json:
                for row in rows:
                    print(json.dumps(row))
            else:
                _print_paper(rows, sys.stdout)
            return 0
        symbol, frozen = model_symbol(args)
        counted = count_symbol(symbol, input_shape(args), frozen=frozen)
    except ValueError as err:
        print('octconv-flops: error: %s' % err, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({'model': describe(args), 'input': list(input_shape(args)),
                          'params': counted.params, 'flops': counted.flops,
                          'macs': counted.macs}))
        return 0
    if args.per_layer:
        print('%-40s %-24s %10s %12s %12s' % ('layer', 'ops', 'params', 'FLOPs', 'MACs'))
        for layer in counted.layers:
            print('%-40s %-24s %10d %12d %12d' % (layer.name, ','.join(layer.ops), layer.params,
                                                  layer.flops, layer.macs))
    print('%s, input %s: params %s, FLOPs %s, MACs %s'
          % (describe(args), 'x'.join(map(str, input_shape(args))), _human(counted.params),
             _human(counted.flops), _human(counted.macs)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
