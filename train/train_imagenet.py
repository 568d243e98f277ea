"""``octconv-train``: train an octave network on ImageNet-style data with the paper's recipe.

    octconv-train --api gluon --model resnet152_v1f --ratio 0.125 --preset paper \\
                  --rec-train train.rec --rec-val val.rec --gpus 0,1,2,3 --dtype float16
    octconv-train --api symbol --network resnetv2 --depth 50 --ratio 0.25 --preset paper ...
    octconv-train                        # Oct-ResNet-26 on the embedded demo digits

Each epoch logs training loss and accuracy, validation top-1/top-5, throughput
and learning rate (progress bars, a log file, and SAVE_DIR/log.jsonl); the end
draws SAVE_DIR/curves.png. Checkpoints (SAVE_DIR/checkpoints/epoch-NNNN) are
atomic; ``--resume`` continues from the newest complete one.
"""
import argparse
import json
import logging
import math
import os
import sys

from ..utils.cli import add_data_args, add_device_args, add_model_args, contexts, data_source
from ..utils.data import DataError
from ..gluon.base import CheckpointMismatch
from . import checkpoint
from .fit import TrainingDiverged, epoch_seed, fit

__all__ = ['build_parser', 'apply_preset', 'plot_curves', 'run', 'main']

# Table B of the paper: which Gluon models used label smoothing and mixup.
_SMOOTHING = ('mobilenet_v2_100', 'mobilenet_v2_1125', 'resnet152_v1e', 'resnet152_v1f')
_MIXUP = ('resnet152_v1e', 'resnet152_v1f')


def build_parser():
    """All flags of octconv-train (GluonCV's train_imagenet.py conventions)."""
    parser = argparse.ArgumentParser(prog='octconv-train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    model = add_model_args(parser, depth=26, classes=None, input_size=32, batch_size=None)
    model.add_argument('--last-gamma', action='store_true',
                       help='zero-initialise the last BatchNorm gamma of each residual unit')
    model.add_argument('--final-drop', type=float, default=0., help='dropout before classifier')
    opt = parser.add_argument_group('optimisation')
    opt.add_argument('--preset', choices=('paper',),
                     help="'paper': cosine, 5 warm-up epochs, lr 0.4 x batch/1024, NAG, "
                          'label smoothing / mixup as in table B')
    opt.add_argument('--optimizer', choices=('nag', 'sgd'), default='nag')
    opt.add_argument('--lr', type=float, default=0.1, help='learning rate after warm-up')
    opt.add_argument('--lr-mode', choices=('step', 'poly', 'cosine'), default='cosine')
    opt.add_argument('--lr-decay', type=float, default=0.1, help='step mode: decay factor')
    opt.add_argument('--lr-decay-epoch', default='', help="step mode: e.g. '30,60,90'")
    opt.add_argument('--warmup-lr', type=float, default=0.)
    opt.add_argument('--warmup-epochs', type=int, default=1)
    opt.add_argument('--momentum', type=float, default=0.9)
    opt.add_argument('--wd', type=float, default=1e-4)
    opt.add_argument('--no-wd', action='store_true', help='no weight decay on bias and BN')
    opt.add_argument('--label-smoothing', type=float, default=0.,
                     help='smoothing epsilon (0.1 in the paper where used)')
    opt.add_argument('--mixup', action='store_true')
    opt.add_argument('--mixup-alpha', type=float, default=0.2)
    opt.add_argument('--mixup-off-epoch', type=int, default=0,
                     help='train the last N epochs without mixup')
    opt.add_argument('--batch-size', type=int, default=64, help='per device')
    opt.add_argument('--num-epochs', type=int, default=8)
    opt.add_argument('--seed', type=int, default=0)
    opt.add_argument('--kv-store', default='device',
                     choices=('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async',
                              'horovod'),
                     help="several devices: local or device; several machines: dist_sync, "
                          "dist_device_sync or dist_async under octconv-launch, or horovod")
    run = parser.add_argument_group('checkpoints and logs')
    run.add_argument('--save-dir', default='octconv-run')
    run.add_argument('--save-frequency', type=int, default=1, help='checkpoint every N epochs')
    run.add_argument('--keep-last', type=int, default=3, help='checkpoints kept (plus the best)')
    run.add_argument('--resume', action='store_true', help='continue from SAVE_DIR')
    run.add_argument('--resume-from', help='continue from this checkpoint folder or save dir')
    run.add_argument('--logging-file', help='also log to this file (default SAVE_DIR/train.log)')
    run.add_argument('--quiet', action='store_true', help='no progress bars')
    add_data_args(parser, train=True)
    add_device_args(parser)
    return parser


def apply_preset(args, parser):
    """``--preset paper``: the paper's recipe for every setting still at its default."""
    if args.preset != 'paper':
        return args
    total = (args.batch_size * max(1, len([g for g in args.gpus.split(',') if g.strip()]))
             * _num_workers(args))
    preset = {'lr_mode': 'cosine', 'warmup_epochs': 5, 'optimizer': 'nag',
              'lr': 0.4 * total / 1024}
    if args.api == 'gluon' and args.name in _SMOOTHING:
        preset['label_smoothing'] = 0.1
    if args.api == 'gluon' and args.name in _MIXUP:
        preset['mixup'] = True
    for key, value in preset.items():
        if getattr(args, key) == parser.get_default(key):
            setattr(args, key, value)
    return args


def plot_curves(history, path):
    """Training loss, training accuracy and validation top-1/top-5 per epoch, as PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    epochs = [h['epoch'] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    left.plot(epochs, [h['train_loss'] for h in history], marker='o')
    left.set(xlabel='epoch', ylabel='training loss', title='loss')
    right.plot(epochs, [h['train_acc'] for h in history], marker='o', label='train accuracy')
    if all('top1' in h for h in history):
        right.plot(epochs, [h['top1'] for h in history], marker='o', label='val top-1')
        right.plot(epochs, [h['top5'] for h in history], marker='o', label='val top-5')
    right.set(xlabel='epoch', ylabel='accuracy', title='accuracy', ylim=(0, 1.02))
    right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _setup_logging(args):
    os.makedirs(args.save_dir, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stderr),
                logging.FileHandler(args.logging_file or os.path.join(args.save_dir,
                                                                      'train.log'))]
    logger = logging.getLogger('octconv')
    logger.handlers[:] = handlers
    for handler in handlers:
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    logger.setLevel(logging.INFO)
    return logger


def _resume_folder(args):
    if args.resume_from:
        if os.path.isfile(os.path.join(args.resume_from, 'meta.json')):
            return args.resume_from
        folder = checkpoint.latest(args.resume_from)
    elif args.resume:
        folder = checkpoint.latest(args.save_dir)
    else:
        return None
    if folder is None:
        raise checkpoint.CheckpointError('no complete checkpoint in %s'
                                         % (args.resume_from or args.save_dir))
    return folder


def _training_set(args, num_parts=1):
    """(classes found, training images per part), checking the data before training."""
    from ..utils.data import check_once
    from ..utils.demo_data import demo_records
    from ..utils.im2rec import list_image_folder
    if args.data_dir:
        folder = os.path.join(args.data_dir, 'train')
        classes, items = list_image_folder(folder)
        if args.classes is not None and len(classes) > args.classes:
            raise DataError('%s has %d class folders but --num-classes is %d'
                            % (folder, len(classes), args.classes))
        return len(classes), len(items) // num_parts
    rec = args.rec_train or demo_records()['train']
    info = check_once(rec, args.rec_train_idx, args.classes, False)
    return int(max(info.labels)) + 1, info.count // num_parts


def _sources(args, ctx, num_parts=1, part_index=0):
    """(classes, images per part, train_source(epoch), val_source())."""
    found, count = _training_set(args, num_parts)
    classes = args.classes or found
    batch_total = args.batch_size * len(ctx)

    def train_source(epoch):
        return data_source(args, 'train', batch_total, classes, num_parts, part_index,
                           seed=epoch_seed(args, epoch))

    def val_source():
        return data_source(args, 'val', batch_total, classes)
    return classes, count, train_source, val_source


def _num_workers(args):
    """Workers of a distributed run, as the launcher announced them (1 otherwise)."""
    if args.kv_store.startswith('dist'):
        return int(os.environ.get('DMLC_NUM_WORKER', 1))
    if args.kv_store == 'horovod':
        return int(os.environ.get('HOROVOD_SIZE', 1))
    return 1


def _distributed(args):
    """The KVStore of a dist_* run, the horovod.mxnet module for horovod (args.rank set
    from either), or None for one process."""
    import mxnet as mx
    if args.kv_store == 'horovod':
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise ValueError('--kv-store horovod needs the horovod package built with MXNet '
                             '(HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 '
                             'pip install --no-build-isolation horovod==0.28.1); '
                             "mx.kv.create('horovod') in mxnet 1.9.1 is not Horovod") from None
        hvd.init()
        args.rank = hvd.rank()
        return hvd
    if not args.kv_store.startswith('dist'):
        return None
    if 'DMLC_ROLE' not in os.environ:
        raise ValueError('--kv-store %s runs under octconv-launch (the DMLC_* variables are '
                         'not set)' % args.kv_store)
    kvstore = mx.kv.create(args.kv_store)
    args.rank = kvstore.rank
    return kvstore


def run(args, stop_after=None):
    """Check the data, build everything and train; returns ``(net, history)``."""
    ctx = contexts(args)
    kvstore = _distributed(args)
    workers = (kvstore.size() if args.kv_store == 'horovod' else kvstore.num_workers) \
        if kvstore is not None else 1
    args.resume_from = _resume_folder(args)
    classes, count, train_source, val_source = _sources(args, ctx, workers, args.rank)
    batch_total = args.batch_size * len(ctx)
    args.iters_per_epoch = math.ceil(count / batch_total)
    logging.getLogger('octconv').info(
        'training %s on %d images of %d classes (worker %d of %d), %d batches of %d per epoch',
        args.name or ('resnetv2' if args.api == 'symbol' else 'resnet50_v1b'), count, classes,
        args.rank, workers, args.iters_per_epoch, batch_total)
    return fit(args, ctx, train_source, val_source, classes, stop_after, kvstore)


def main(argv=None):
    """Train; exit 0 when done, 1 when the loss diverged, 2 on bad input or checkpoint errors."""
    parser = build_parser()
    args = apply_preset(parser.parse_args(argv), parser)
    args.progress, args.rank = not args.quiet, 0
    log = _setup_logging(args)
    try:
        _, history = run(args)
    except TrainingDiverged as err:
        log.error('%s', err)
        return 1
    except (DataError, CheckpointMismatch, checkpoint.CheckpointError, ValueError) as err:
        log.error('octconv-train: error: %s', err)
        return 2
    if history and args.rank == 0:
        plot_curves(history, os.path.join(args.save_dir, 'curves.png'))
        print(json.dumps(history[-1]))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
