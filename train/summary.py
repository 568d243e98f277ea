"""``octconv-summary``: ``mx.viz.print_summary`` of any model, and its graph as PNG."""
import os
import shutil
import sys

import mxnet as mx

from ..utils.flops import count_symbol
from .cli import (describe, finish_model_args, input_shape, model_symbol,
                  parser_with_model_args)

__all__ = ['main', 'plot_graph']

DOT_MISSING = ('drawing the graph needs the Graphviz program "dot"; install it with '
               '`apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz`')


def plot_graph(symbol, data_shape, path):
    """Draw ``symbol`` with ``mx.viz.plot_network`` into ``path`` (.png); returns the path.

    Raises ``RuntimeError`` with :data:`DOT_MISSING` when ``dot`` is not installed.
    """
    if shutil.which('dot') is None:
        raise RuntimeError(DOT_MISSING)
    stem = path[:-4] if path.lower().endswith('.png') else path
    graph = mx.viz.plot_network(symbol, shape={'data': data_shape}, save_format='png',
                                hide_weights=True)
    rendered = graph.render(filename=os.path.basename(stem),
                            directory=os.path.dirname(os.path.abspath(stem)), cleanup=True)
    if rendered != stem + '.png':
        os.replace(rendered, stem + '.png')
    return stem + '.png'


def main(argv=None):
    """Print the layer-by-layer summary of a model; ``--plot FILE.png`` also draws it."""
    parser = parser_with_model_args('octconv-summary', main.__doc__)
    parser.add_argument('--plot', metavar='FILE.png', help='draw the graph into this PNG file')
    args = parser.parse_args(argv)
    try:
        finish_model_args(args)
        symbol, _ = model_symbol(args)
        shape = input_shape(args)
        count_symbol(symbol, shape)          # ValueError where the model cannot take it
    except ValueError as err:
        print('octconv-summary: error: %s' % err, file=sys.stderr)
        return 2
    print('%s, input %s' % (describe(args), 'x'.join(map(str, shape))))
    mx.viz.print_summary(symbol, shape={'data': shape})
    if args.plot:
        try:
            print('graph written to %s' % plot_graph(symbol, shape, args.plot))
        except RuntimeError as err:
            print('octconv-summary: %s' % err, file=sys.stderr)
            return 3
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
