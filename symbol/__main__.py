"""``python -m octconv.symbol``: build a Symbol network and print its summary."""
import argparse
import sys

import mxnet as mx

from . import get_linear, list_networks

__all__ = ['main']


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(prog='python -m octconv.symbol', description=__doc__)
    parser.add_argument('--network', default='resnetv2', choices=sorted(list_networks()))
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--ratio', type=float, default=0.25,
                        help='fraction of low-frequency channels; -1 for the vanilla network')
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--input-size', type=int, nargs='+', default=[224],
                        help='H [W] of the input image (any size >= 32)')
    return parser


def main(argv=None):
    """Print ``mx.viz.print_summary`` of the chosen network; exit 2 on bad input."""
    args = build_parser().parse_args(argv)
    height, width = (args.input_size * 2)[:2]
    try:
        net = get_linear(args.network, args.depth, num_classes=args.num_classes,
                         ratio=args.ratio)
    except ValueError as err:
        print('error: %s' % err, file=sys.stderr)
        return 2
    mx.viz.print_summary(net, shape={'data': (1, 3, height, width)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
