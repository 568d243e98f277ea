"""Command-line flags shared by the tools: which model, at which ratio and input size."""
import argparse

__all__ = ['add_model_args', 'model_symbol', 'input_shape', 'describe', 'parser_with_model_args']


def add_model_args(parser):
    """Add ``--api``, ``--network/--model``, ``--depth``, ``--ratio``, ``--use-se``,
    ``--classes``, ``--input-size`` and ``--batch-size`` to ``parser``."""
    group = parser.add_argument_group('model')
    group.add_argument('--api', choices=('symbol', 'gluon'), default='symbol',
                       help='Symbol-API ablation networks or Gluon models (default symbol)')
    group.add_argument('--network', '--model', dest='name', default=None,
                       help='Symbol network (resnetv2, seresnetv2, resnextv2_32x4d, densenet; '
                            'default resnetv2) or Gluon model (default resnet50_v1b)')
    group.add_argument('--depth', type=int, default=50, help='Symbol network depth (default 50)')
    group.add_argument('--ratio', type=float, default=0.25,
                       help='fraction of low-frequency channels; -1 = vanilla (default 0.25)')
    group.add_argument('--use-se', action='store_true', help='Gluon: squeeze-excitation blocks')
    group.add_argument('--classes', type=int, default=1000, help='number of classes')
    group.add_argument('--input-size', type=int, nargs='+', default=[224], metavar='PX',
                       help='input H [W] in pixels (default 224)')
    group.add_argument('--batch-size', type=int, default=1, help='batch size (default 1)')
    return parser


def input_shape(args):
    """(N, 3, H, W) from ``--batch-size`` and ``--input-size``."""
    if len(args.input_size) > 2:
        raise ValueError('--input-size takes H or H W, got %s' % args.input_size)
    height, width = (args.input_size * 2)[:2]
    return (args.batch_size, 3, height, width)


def describe(args):
    """A short name of the chosen model, e.g. ``resnetv2-50 ratio 0.25``."""
    if args.api == 'symbol':
        return '%s-%d ratio %g' % (args.name or 'resnetv2', args.depth, args.ratio)
    return '%s%s ratio %g' % (args.name or 'resnet50_v1b', ' +SE' if args.use_se else '',
                              args.ratio)


def model_symbol(args):
    """``(logits symbol, frozen parameter names)`` of the chosen model; ValueError if bad."""
    if args.api == 'symbol':
        from ..symbol import get_linear
        return get_linear(args.name or 'resnetv2', args.depth, num_classes=args.classes,
                          ratio=args.ratio), ()
    from ..gluon import get_model
    from .flops import trace_block
    kwargs = {'use_se': True} if args.use_se else {}
    return trace_block(get_model(args.name or 'resnet50_v1b', ratio=args.ratio,
                                 classes=args.classes, **kwargs))


def parser_with_model_args(prog, description):
    """An ``ArgumentParser`` with the model flags already added."""
    return add_model_args(argparse.ArgumentParser(prog=prog, description=description))
