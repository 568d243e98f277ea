"""``octconv-flops``: parameters, FLOPs and MACs of a model, or every row of the paper's
tables beside the published figures; the counting is :mod:`octconv.utils.flops`."""
import json
import sys

from ..gluon.released import MODELS
from ..symbol.released import ABLATION
from ..utils.flops import count_block, count_symbol
from .cli import (describe, finish_model_args, input_shape, model_symbol,
                  parser_with_model_args)
from .models import build_model

__all__ = ['paper_rows', 'video_rows', 'main']


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
    for row in ABLATION:
        counted = count_block(build_model('symbol', row.network, row.depth, row.ratio),
                              data_shape)
        yield _paper_row('A', row.label, row.ratio, counted, None,
                         None if row.gflops is None else row.gflops * 1e9)
    for row in MODELS:
        net = build_model('gluon', row.network, ratio=row.ratio, use_se=row.use_se)
        yield _paper_row('B', row.label, row.ratio, count_block(net, data_shape),
                         row.params_m * 1e6, row.gflops * 1e9)


def video_rows(placements=('all-layers', 'paper')):
    """Every row of the paper's Table 8 (:data:`~octconv.gluon.gluoncv_video.TABLE_8`) with
    the counted figures of GluonCV's network, converted with each of ``placements``, at the
    paper's clip (32 frames of 224x224, 400 classes).

    Yields dicts: ``label``, ``model``, ``ratio``, ``placement``, ``vanilla_flops``,
    ``flops`` (counted), ``flop_ratio``, the paper's ``paper_vanilla_flops``,
    ``paper_flops`` and ``paper_ratio``, and ``ratio_diff`` (counted minus the paper's).
    """
    from ..gluon.gluoncv_video import TABLE_8, c2d_resnet50_v1
    from ..utils.flops import trace_block
    from ..utils.octavize import rewrite
    from gluoncv.model_zoo import get_model
    clip = (1, 3, 32, 224, 224)
    graphs, vanilla = {}, {}
    for row in TABLE_8:
        if row.model not in graphs:
            net = c2d_resnet50_v1(nclass=400) if row.model.startswith('c2d') else get_model(
                row.model, nclass=400, pretrained=False, pretrained_base=False)
            graphs[row.model] = trace_block(net)[0]
            vanilla[row.model] = count_symbol(graphs[row.model], clip).flops
        for placement in placements:      # the graph octave_video_model's network runs
            octave, _ = rewrite(graphs[row.model], row.ratio, clip, policy=placement)
            flops = count_symbol(octave, clip).flops
            paper_ratio = row.octave_gflops / row.vanilla_gflops
            yield {'label': row.label, 'model': row.model, 'ratio': row.ratio,
                   'placement': placement, 'vanilla_flops': vanilla[row.model],
                   'flops': flops, 'flop_ratio': flops / vanilla[row.model],
                   'paper_vanilla_flops': row.vanilla_gflops * 1e9,
                   'paper_flops': row.octave_gflops * 1e9, 'paper_ratio': paper_ratio,
                   'ratio_diff': flops / vanilla[row.model] - paper_ratio}


def _print_video(rows, out):
    fmt = '%-9s %5s %-11s %10s %10s %10s %10s %7s %7s %7s'
    print(fmt % ('model', 'ratio', 'placement', 'vanilla', 'paper', 'octave', 'paper',
                 'ratio', 'paper', 'diff'), file=out)
    for r in rows:
        print(fmt % (r['label'], '%g' % r['ratio'], r['placement'], _human(r['vanilla_flops']),
                     _human(r['paper_vanilla_flops']), _human(r['flops']),
                     _human(r['paper_flops']), '%.3f' % r['flop_ratio'],
                     '%.3f' % r['paper_ratio'], '%+.3f' % r['ratio_diff']), file=out)


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
        print(fmt % (r['table'], r['label'], 'base' if r['ratio'] <= 0 else '%g' % r['ratio'],
                     _human(r['params']), _human(r['paper_params']) if r['paper_params'] else '',
                     pct(r['params_diff']), _human(r['flops']),
                     _human(r['paper_flops']) if r['paper_flops'] else '',
                     pct(r['flops_diff'])), file=out)


def main(argv=None):
    """``octconv-flops``: parameters, FLOPs and MACs of a model, or the paper's tables."""
    parser = parser_with_model_args('octconv-flops', main.__doc__)
    parser.add_argument('--per-layer', action='store_true', help='one row per layer')
    parser.add_argument('--json', action='store_true', help='print JSON lines')
    parser.add_argument('--paper', action='store_true',
                        help="every row of the paper's tables A and B beside the published "
                             'figures (at 1x3x224x224)')
    parser.add_argument('--paper-video', action='store_true',
                        help="every row of the paper's Table 8 (video networks) beside the "
                             "published figures, GluonCV's networks at 1x3x32x224x224 "
                             "converted with the placement 'all-layers' and with 'paper'")
    args = parser.parse_args(argv)
    try:
        if args.paper_video or args.paper:
            rows, printer = ((video_rows(), _print_video) if args.paper_video else
                             (paper_rows(), _print_paper))
            if args.json:
                for row in rows:
                    print(json.dumps(row))
            else:
                printer(list(rows), sys.stdout)
            return 0
        finish_model_args(args)
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
