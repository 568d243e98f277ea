"""Command-line flags shared by the tools: which model, at which ratio and input size."""
import argparse

from ..utils.flops import trace_block
from .models import APIS, build_model, default_model, is_video_model, video_frames

__all__ = ['add_model_args', 'add_data_args', 'add_device_args', 'contexts', 'model_symbol',
           'input_shape', 'describe', 'parser_with_model_args', 'finish_model_args',
           'data_source']


def add_model_args(parser, depth=50, ratio=0.25, classes=1000, input_size=224, batch_size=1,
                   video=False):
    """Add the model flags to ``parser`` and return their argument group.

    ``--api``, ``--network/--model``, ``--depth``, ``--ratio`` (unless ``ratio`` is
    None: the caller declares its own), ``--use-se``, ``--classes`` (or
    ``--num-classes``), ``--input-size`` and, unless ``batch_size`` is None,
    ``--batch-size``; the keyword arguments are their defaults (``classes=None``:
    found by the caller, e.g. from the data). ``video``: also ``--frames``, for GluonCV's
    video models, whose ``--ratio`` defaults to the paper's video ratio (resolved by
    :func:`finish_model_args`)."""
    group = parser.add_argument_group('model')
    group.add_argument('--api', choices=APIS, default='symbol',
                       help='Symbol-API ablation networks, octconv\'s Gluon models, or any '
                            'GluonCV classification model converted by octavize (default '
                            'symbol)')
    group.add_argument('--network', '--model', dest='model', default=None,
                       help='Symbol network (resnetv2, seresnetv2, resnextv2_32x4d, densenet; '
                            'default resnetv2), Gluon model or GluonCV model (default '
                            'resnet50_v1b)')
    group.add_argument('--depth', type=int, default=depth,
                       help='Symbol network depth (default %d)' % depth)
    if ratio is not None:
        group.add_argument('--ratio', type=float, default=None if video else ratio,
                           help='fraction of low-frequency channels; 0 = vanilla (default %g%s)'
                                % (ratio, '; a video model: 0.1, the paper\'s Table 8'
                                   if video else ''))
        parser.set_defaults(image_ratio=ratio)
    group.add_argument('--use-se', action='store_true', help='Gluon: squeeze-excitation blocks')
    group.add_argument('--classes', '--num-classes', dest='classes', type=int, default=classes,
                       help='number of classes (default %s)'
                            % ('from the data' if classes is None else classes))
    group.add_argument('--input-size', type=int, nargs='+', default=[input_size], metavar='PX',
                       help='input H [W] in pixels (default %d)' % input_size)
    if batch_size is not None:
        group.add_argument('--batch-size', type=int, default=batch_size,
                           help='batch size (default %d)' % batch_size)
    if video:
        group.add_argument('--frames', type=int, default=None,
                           help='frames per clip of a video model (--api gluoncv, e.g. '
                                'i3d_resnet50_v1_kinetics400; default: the model\'s own clip, '
                                '32 for I3D and C2D, 16 for C3D and R(2+1)D)')
    return group


def finish_model_args(args):
    """Check and complete the model flags of :func:`add_model_args` ``(video=True)``:
    ``--ratio`` not given is the paper's (0.1 for a video model); ``--frames`` is refused
    for an image model. Returns ``args``; ValueError names the flag."""
    video = is_video_model(args.api, args.model)
    if getattr(args, 'frames', None) is not None:
        if not video:
            raise ValueError('--frames: %s is not a video model (video models: --api gluoncv '
                             '--model i3d_resnet50_v1_kinetics400 and the others of '
                             'octconv.gluon.gluoncv_video.video_models())'
                             % (args.model or default_model(args.api)))
        if args.frames < 1:
            raise ValueError('--frames must be at least 1, got %d' % args.frames)
    if hasattr(args, 'image_ratio') and getattr(args, 'ratio', 0) is None:
        from ..gluon.gluoncv_video import VIDEO_RATIO
        args.ratio = VIDEO_RATIO if video else args.image_ratio
    return args


def input_shape(args):
    """(N, 3, H, W) from ``--batch-size`` and ``--input-size``; (N, 3, T, H, W) for a video
    model, T from ``--frames``."""
    if len(args.input_size) > 2:
        raise ValueError('--input-size takes H or H W, got %s' % args.input_size)
    height, width = (args.input_size * 2)[:2]
    if is_video_model(args.api, args.model):
        return (args.batch_size, 3, video_frames(args.model, getattr(args, 'frames', None)),
                height, width)
    return (args.batch_size, 3, height, width)


def describe(args):
    """A short name of the chosen model, e.g. ``resnetv2-50 ratio 0.25``."""
    model = args.model or default_model(args.api)
    if args.api == 'symbol':
        return '%s-%d ratio %g' % (model, args.depth, args.ratio)
    return '%s%s ratio %g' % (model, ' +SE' if args.use_se else '', args.ratio)


def model_symbol(args):
    """``(logits symbol, frozen parameter names)`` of the chosen model; ValueError if bad."""
    return trace_block(build_model(args.api, args.model, args.depth, args.ratio, args.classes,
                                   args.use_se))


def parser_with_model_args(prog, description):
    """An ``ArgumentParser`` with the model flags already added, video models' included
    (call :func:`finish_model_args` on what it parses)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_model_args(parser, video=True)
    return parser


def add_data_args(parser, train=False):
    """Data flags: RecordIO files or an image folder (default: the embedded demo data)."""
    group = parser.add_argument_group('data (default: the embedded demo digits)')
    if train:
        group.add_argument('--rec-train', help='training .rec file (its .idx beside it)')
        group.add_argument('--rec-train-idx', help='training .idx file')
        group.add_argument('--min-random-area', type=float, default=0.08,
                           help='smallest area of the random-resized crop (default 0.08)')
        group.add_argument('--skip-bad-records', action='store_true',
                           help='leave training records whose image cannot be decoded out '
                                '(each named in the log and run.json; the .rec is copied '
                                'without them into SAVE_DIR/data). Default: refuse them, '
                                'naming the first')
    group.add_argument('--rec-val', help='validation .rec file (its .idx beside it)')
    group.add_argument('--rec-val-idx', help='validation .idx file')
    group.add_argument('--data-dir', help='image folders %s' % (
        'DIR/train/<class>/ and DIR/val/<class>/' if train else 'DIR/<class>/<image>'))
    parser.set_defaults(data_dir_has_splits=train)
    group.add_argument('--convention', choices=('gluon', 'symbol'), default=None,
                       help="normalisation: 'gluon' (mean 123.68.., std 58.4..) or 'symbol' "
                            "(mean 124,117,104, scale 0.0167, bicubic); default by API")
    group.add_argument('--crop-ratio', type=float, default=0.875,
                       help='validation: center crop of the image resized to '
                            'ceil(input_size / crop_ratio) (default 0.875)')
    group.add_argument('-j', '--num-data-workers', dest='workers', type=int, default=2,
                       help='decoding threads (default 2)')
    group.add_argument('--validate', action='store_true',
                       help='also decode every image of the .rec files before starting')
    return parser


def add_device_args(parser):
    """``--gpus`` and ``--dtype``."""
    group = parser.add_argument_group('devices')
    group.add_argument('--gpus', default='', help="GPU ids, e.g. '0,1'; empty = CPU")
    group.add_argument('--dtype', choices=('float32', 'float16'), default='float32',
                       help='float16 needs a GPU (MXNet has no float16 GEMM on CPU)')
    return parser


def contexts(args):
    """The devices of ``--gpus``; ValueError for float16 on CPU or GPUs that are missing."""
    import mxnet as mx
    ids = [int(i) for i in args.gpus.split(',') if i.strip()] if args.gpus else []
    if ids and mx.context.num_gpus() < max(ids) + 1:
        raise ValueError('--gpus %s asks for GPU %d but %d GPU(s) are visible'
                         % (args.gpus, max(ids), mx.context.num_gpus()))
    if not ids and args.dtype == 'float16':
        raise ValueError('--dtype float16 needs --gpus: MXNet has no float16 matrix multiply '
                         'on the CPU')
    return [mx.gpu(i) for i in ids] or [mx.cpu()]


def data_source(args, split, batch_size, input_size, num_classes=None, num_parts=1, part_index=0,
                seed=0):
    """The iterator for ``split`` ('train' or 'val') of (batch_size, 3, input_size,
    input_size) images from the data flags of ``args`` (demo data if none)."""
    import os
    from ..utils.data import open_source
    from ..utils.demo_data import demo_records
    rec = getattr(args, 'rec_%s' % split, None)
    idx = getattr(args, 'rec_%s_idx' % split, None)
    folder = args.data_dir
    if folder and args.data_dir_has_splits:
        folder = os.path.join(folder, split)
    if rec is None and folder is None:
        rec = demo_records()[split]
    return open_source(rec, idx, folder, train=split == 'train', batch_size=batch_size,
                       input_size=input_size, crop_ratio=args.crop_ratio, num_classes=num_classes,
                       threads=args.workers, convention=args.convention,
                       num_parts=num_parts, part_index=part_index, seed=seed,
                       validate=args.validate,
                       min_area=getattr(args, 'min_random_area', 0.08))
