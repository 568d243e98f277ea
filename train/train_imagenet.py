"""``octconv-train``: train an octave network on ImageNet-style data with the paper's recipe.

    octconv-train --recipe a03_resnet-50_alpha-0.250 --rec-train train.rec --rec-val val.rec \\
                  --gpus 0,1,2,3                      # one cell of the paper's table A
    octconv-train --recipe resnet152_v1f_alpha-0.125 --dry-run   # what that run would do
    octconv-train --list-recipes                      # every cell, with its published accuracy
    octconv-train --api gluon --model resnet50_v1b --ratio 0.25 --preset paper ...
    octconv-train --input-size 32                     # Oct-ResNet-26 on the embedded demo digits

A recipe (or ``--preset paper``) supplies every value the user does not type;
a typed value always wins. Each epoch logs training loss and accuracy,
validation top-1/top-5, throughput and learning rate (progress bars, a log
file, and SAVE_DIR/log.jsonl); the end draws SAVE_DIR/curves.png. The resolved
run is written to SAVE_DIR/run.json. Checkpoints (SAVE_DIR/checkpoints/epoch-NNNN)
are atomic; ``--resume`` continues from the newest complete one.
"""
import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys

from mxnet.base import MXNetError

from ..utils.data import DataError, check_once, index_beside
from ..utils.demo_data import demo_records
from ..utils.im2rec import list_image_folder
from ..utils.params import CheckpointMismatch
from ..utils.recordio_check import write_without
from ..utils.released import REFERENCE_README
from . import checkpoint
from .cli import add_data_args, add_device_args, add_model_args, contexts, data_source
from .config import DEMO_INPUT_SIZE, USER, Origin, RunConfig, resolve, resumed, typed_flags
from .fit import (INITIALIZERS, TrainingData, TrainingDiverged, accuracy_text, epoch_seed,
                  fit)
from .recipes import HEADLINE, RECIPES, get_recipe
from .stopping import StopSignals, never

__all__ = ['build_parser', 'parse_config', 'dry_run_report', 'plot_curves', 'run', 'main']

_DEFAULTS = RunConfig()


def build_parser():
    """All flags of octconv-train (GluonCV's train_imagenet.py conventions); the defaults
    shown are :class:`RunConfig`'s."""
    parser = argparse.ArgumentParser(prog='octconv-train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    recipe = parser.add_argument_group('recipes')
    recipe.add_argument('--recipe', metavar='NAME',
                        help='a published cell of the paper (see --list-recipes): it sets '
                             'every value not typed')
    recipe.add_argument('--preset', choices=('paper',),
                        help="'paper': the paper's training recipe for the typed model "
                             '(cosine, 5 warm-up epochs, lr 0.4 x batch/1024, NAG, '
                             'label smoothing / mixup as in table B)')
    recipe.add_argument('--list-recipes', action='store_true',
                        help='list the recipes with the published top-1 / top-5 of their '
                             'released checkpoints (the reference README\'s) and exit')
    recipe.add_argument('--dry-run', action='store_true',
                        help='print the resolved run (each value with its source) and exit')
    d = _DEFAULTS
    model = add_model_args(parser, depth=d.depth, ratio=d.ratio, classes=None,
                           input_size=d.input_size, batch_size=None)
    size = next(action for action in model._group_actions if action.dest == 'input_size')
    size.help = ('input H [W] in pixels (default %d with data flags; %d on the embedded demo '
                 'digits, without them)' % (d.input_size, DEMO_INPUT_SIZE))
    model.add_argument('--last-gamma', action='store_true',
                       help='zero-initialise the last BatchNorm gamma of each residual unit')
    model.add_argument('--final-drop', type=float, default=d.final_drop,
                       help='dropout before classifier')
    model.add_argument('--initializer', choices=sorted(INITIALIZERS), default=d.initializer,
                       help="weights: 'msraprelu' (the reference's MSRAPrelu, default) or "
                            "'xavier' (gaussian, fan in, magnitude 2)")
    opt = parser.add_argument_group('optimisation')
    opt.add_argument('--optimizer', choices=('nag', 'sgd'), default=d.optimizer)
    opt.add_argument('--lr', type=float, default=d.lr, help='learning rate after warm-up')
    opt.add_argument('--lr-mode', choices=('step', 'poly', 'cosine'), default=d.lr_mode)
    opt.add_argument('--lr-decay', type=float, default=d.lr_decay, help='step mode: decay factor')
    opt.add_argument('--lr-decay-epoch', default=d.lr_decay_epoch,
                     help="step mode: e.g. '30,60,90'")
    opt.add_argument('--warmup-lr', type=float, default=d.warmup_lr)
    opt.add_argument('--warmup-epochs', type=int, default=d.warmup_epochs)
    opt.add_argument('--momentum', type=float, default=d.momentum)
    opt.add_argument('--wd', type=float, default=d.wd)
    opt.add_argument('--no-wd', action='store_true', help='no weight decay on bias and BN')
    opt.add_argument('--label-smoothing', type=float, default=d.label_smoothing,
                     help='smoothing epsilon (0.1 in the paper where used)')
    opt.add_argument('--mixup', action='store_true')
    opt.add_argument('--mixup-alpha', type=float, default=d.mixup_alpha)
    opt.add_argument('--mixup-off-epoch', type=int, default=d.mixup_off_epoch,
                     help='train the last N epochs without mixup')
    opt.add_argument('--batch-size', type=int, default=d.batch_size, help='per device')
    opt.add_argument('--num-epochs', type=int, default=d.num_epochs)
    opt.add_argument('--seed', type=int, default=d.seed)
    opt.add_argument('--kv-store', default=d.kv_store,
                     choices=('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async',
                              'horovod'),
                     help="several devices: local or device; several machines: dist_sync, "
                          "dist_device_sync or dist_async under octconv-launch, or horovod")
    run_group = parser.add_argument_group('checkpoints and logs')
    run_group.add_argument('--save-dir', default=d.save_dir)
    run_group.add_argument('--save-frequency', type=int, default=d.save_frequency,
                           help='checkpoint every N epochs')
    run_group.add_argument('--keep-last', type=int, default=d.keep_last,
                           help='checkpoints kept (plus the best)')
    run_group.add_argument('--resume', action='store_true', help='continue from SAVE_DIR')
    run_group.add_argument('--resume-from',
                           help='continue from this checkpoint folder or save dir')
    run_group.add_argument('--logging-file',
                           help='also log to this file (default SAVE_DIR/train.log)')
    run_group.add_argument('--quiet', action='store_true', help='no progress bars')
    add_data_args(parser, train=True)
    add_device_args(parser)
    return parser


def parse_config(argv=None):
    """``(RunConfig, actions)`` from the command line: the config resolved from the recipe
    and the typed flags, ``actions`` the set of {'dry_run', 'list_recipes'} asked for."""
    typed = typed_flags(build_parser(), argv)
    actions = {name for name in ('dry_run', 'list_recipes') if typed.pop(name, False)}
    devices = len([g for g in typed.get('gpus', '').split(',') if g.strip()]) or 1
    return resolve(typed, num_devices=devices, num_workers=_num_workers(typed)), actions


def dry_run_report(config):
    """The resolved run as text: a table of value, source and note per option, then one
    JSON line (option names as keys, plus ``sources``)."""
    rows = [('option', 'value', 'source', 'note')]
    for name, value in config.values().items():
        origin = config.sources[name]
        rows.append((name, json.dumps(value), origin.source, origin.note))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + '  '
             + row[3] for row in rows]
    if config.recipe:
        recipe = get_recipe(config.recipe)
        lines.insert(0, 'recipe %s: %s; published top-1 / top-5 %.1f / %.1f (%s)'
                     % (recipe.name, recipe.title, recipe.record.top1, recipe.record.top5,
                        recipe.record.accuracy_source))
    return '\n'.join(line.rstrip() for line in lines) + '\n' + json.dumps(config.describe())


def recipe_listing():
    """Every recipe, one line each, with its published top-1 / top-5, and the headline."""
    lines = ['%-34s %-46s %5s / %4s  (published: %s)' % ('recipe', 'cell', 'top-1', 'top-5',
                                                        REFERENCE_README)]
    for recipe in RECIPES.values():
        lines.append('%-34s %-46s %5.1f / %4.1f' % (recipe.name, recipe.title,
                                                   recipe.record.top1, recipe.record.top5))
    lines.append("headline: %s tested at %d px: %.1f%% top-1 at %.1f GFLOPs (octconv-score "
                 "--input-size %d)" % (HEADLINE['recipe'], HEADLINE['input_size'],
                                       HEADLINE['top1'], HEADLINE['gflops'],
                                       HEADLINE['input_size']))
    return '\n'.join(lines)


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


def _setup_logging(config):
    os.makedirs(config.save_dir, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stderr),      # the file opens at the first line
                logging.FileHandler(config.logging_file or os.path.join(config.save_dir,
                                                                        'train.log'),
                                    delay=True)]
    logger = logging.getLogger('octconv')
    logger.handlers[:] = handlers
    # A module-level logging.info() (MXNet's checkpoint writer has one) gives a root logger
    # without handlers a console handler, which would print each octconv line again.
    if not logging.root.handlers:
        logging.root.addHandler(logging.NullHandler())
    for handler in handlers:
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    logger.setLevel(logging.INFO)
    return logger


def _resume_folder(config):
    if config.resume_from:
        if os.path.isfile(os.path.join(config.resume_from, 'meta.json')):
            return config.resume_from
        folder = checkpoint.latest(config.resume_from)
    elif config.resume:
        folder = checkpoint.latest(config.save_dir)
    else:
        return None
    if folder is None:
        raise checkpoint.CheckpointError('no complete checkpoint in %s'
                                         % (config.resume_from or config.save_dir))
    return folder


def _continuing(config):
    """``config`` itself, or for ``--resume`` / ``--resume-from`` the config of the run it
    continues (:func:`config.resumed`), with ``resume_from`` set to the checkpoint folder
    found. ValueError names each typed flag that would change the run."""
    folder = _resume_folder(config)
    if folder is None:
        return config
    merged = resumed(config, checkpoint.load_meta(folder).get('config', {}))
    origin = merged.sources.get('resume_from')
    if origin is None or origin.source != USER:
        origin = Origin('resume', 'the newest complete checkpoint of --save-dir')
    return dataclasses.replace(merged, resume_from=folder,
                               sources=dict(merged.sources, resume_from=origin))


def _training_set(config):
    """``(classes found, training images, the .rec and .idx to read, skipped records)``,
    checking the data before training. With ``--skip-bad-records`` the records whose
    image MXNet cannot decode are left out of a copy of the .rec under SAVE_DIR/data."""
    if config.data_dir:
        folder = os.path.join(config.data_dir, 'train')
        classes, items = list_image_folder(folder)
        if config.classes is not None and len(classes) > config.classes:
            raise DataError('%s has %d class folders but --num-classes is %d'
                            % (folder, len(classes), config.classes))
        return len(classes), len(items), (None, None), ()
    rec = config.rec_train or demo_records()['train']
    idx = index_beside(rec, config.rec_train_idx)
    info = check_once(rec, idx, config.classes, config.validate, config.skip_bad_records)
    if not info.count:
        raise DataError('%s: no usable record (%d left out as bad)' % (rec, len(info.bad)))
    skipped = tuple({'file': rec, 'index': bad.index, 'key': bad.id, 'offset': bad.offset,
                     'reason': bad.reason} for bad in info.bad)
    if skipped:
        log = logging.getLogger('octconv')
        for record in skipped:
            log.warning('left out of training: %(file)s, record %(index)d (key %(key)d) at '
                        'byte %(offset)d: %(reason)s', record)
        rec, idx = _usable_copy(config.save_dir, rec, idx, info.bad)
        log.warning('%d bad record(s) left out; training reads %s', len(skipped), rec)
    return int(max(info.labels)) + 1, info.count, (rec, idx), skipped


def _usable_copy(save_dir, rec, idx, bad):
    """``(rec, idx)`` of SAVE_DIR/data/NAME-usable.rec: ``rec`` without the ``bad`` records,
    written once per version of ``rec`` (a resumed run reuses it)."""
    folder = os.path.join(save_dir, 'data')
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, os.path.splitext(os.path.basename(rec))[0] + '-usable')
    made_from = {'rec': os.path.abspath(rec), 'size': os.path.getsize(rec),
                 'mtime': os.path.getmtime(rec), 'idx': idx and os.path.abspath(idx),
                 'left_out': sorted(b.offset for b in bad)}
    record = prefix + '.json'
    if os.path.isfile(record) and os.path.isfile(prefix + '.rec'):
        with open(record) as handle:
            if json.load(handle) == made_from:
                return prefix + '.rec', prefix + '.idx' if idx else None
    copy = write_without(rec, idx, bad, prefix)
    checkpoint.atomic_write_text(record, json.dumps(made_from))
    return copy


def _check_validation_set(config, classes):
    """Scan the validation data now, not after the first training epoch (the iterators
    reuse the scan)."""
    if config.data_dir:
        found, _ = list_image_folder(os.path.join(config.data_dir, 'val'))
        if len(found) > classes:
            raise DataError('%s has %d class folders but the model has %d classes'
                            % (os.path.join(config.data_dir, 'val'), len(found), classes))
        return
    rec = config.rec_val or (None if config.rec_train else demo_records()['val'])
    if rec is not None:
        check_once(rec, index_beside(rec, config.rec_val_idx), classes, config.validate)


def training_data(config, ctx, num_parts=1, part_index=0):
    """The :class:`TrainingData` of ``config`` for worker ``part_index`` of ``num_parts``,
    the training and validation sets checked first.

    With several workers MXNet gives each ``ceil(N / num_parts)`` records of the
    indexed .rec (the last worker the rest), and every worker takes
    ``ceil(ceil(N / num_parts) / batch)`` full batches: a shorter shard wraps around.
    """
    found, count, (rec, idx), skipped = _training_set(config)
    classes = config.classes or found
    _check_validation_set(config, classes)
    reading = dataclasses.replace(config, rec_train=rec, rec_train_idx=idx) if skipped else config
    batch_total = config.batch_size * len(ctx)
    share = math.ceil(count / num_parts)
    if num_parts > 1:
        if config.rec_train and not index_beside(config.rec_train, config.rec_train_idx):
            raise DataError('%s: distributed training needs its .idx beside it (each worker '
                            'reads a share of the records by index)' % config.rec_train)
        if part_index * share >= count:
            raise DataError('the training set has %d images: too few for %d workers'
                            % (count, num_parts))

    def train_source(epoch):
        return data_source(reading, 'train', batch_total, config.input_size, classes, num_parts,
                           part_index, seed=epoch_seed(config.seed, epoch))

    def val_source():
        return data_source(config, 'val', batch_total, config.input_size, classes)
    validated = not (config.rec_train and not config.rec_val)    # no --rec-val: no validation
    return TrainingData(classes, share, math.ceil(share / batch_total), train_source,
                        val_source if validated else None, skipped)


def _num_workers(options):
    """Workers of a distributed run, as the launcher announced them (1 otherwise);
    ``options`` maps option names to values (typed flags or a config's values)."""
    kv_store = options.get('kv_store', RunConfig.kv_store)
    if kv_store.startswith('dist'):
        return int(os.environ.get('DMLC_NUM_WORKER', 1))
    if kv_store == 'horovod':
        return int(os.environ.get('HOROVOD_SIZE', 1))
    return 1


def _distributed(config):
    """``(kvstore, rank, workers)``: the KVStore of a dist_* run or the horovod.mxnet module
    for horovod, or None for one process."""
    import mxnet as mx
    if config.kv_store == 'horovod':
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise ValueError('--kv-store horovod needs the horovod package built with MXNet '
                             '(make horovod, in the octconv source tree); '
                             "mx.kv.create('horovod') in mxnet 1.9.1 is not Horovod") from None
        hvd.init()
        return hvd, hvd.rank(), hvd.size()
    if not config.kv_store.startswith('dist'):
        return None, 0, 1
    if 'DMLC_ROLE' not in os.environ:
        raise ValueError('--kv-store %s runs under octconv-launch (the DMLC_* variables are '
                         'not set)' % config.kv_store)
    kvstore = mx.kv.create(config.kv_store)
    return kvstore, kvstore.rank, kvstore.num_workers


def run(config, stop_after=None, stops=None):
    """Check the data, build everything and train; returns ``(net, history, rank)``.

    ``stops`` (a :class:`StopSignals`) stops the run at a safe point after SIGINT or
    SIGTERM (raising :class:`Stopped`); without it nothing stops the run."""
    ctx = contexts(config)
    kvstore, rank, workers = _distributed(config)
    # one run per save folder: rank 0 writes it (every worker may share it)
    with checkpoint.exclusive(config.save_dir) if rank == 0 else contextlib.nullcontext():
        return _train(config, ctx, kvstore, rank, workers, stop_after, stops)


def _train(config, ctx, kvstore, rank, workers, stop_after, stops):
    resume_from = _resume_folder(config)
    if stops is None:
        data = training_data(config, ctx, workers, rank)
    else:
        with stops.immediate():     # a file scan: safe to stop anywhere
            data = training_data(config, ctx, workers, rank)
    log = logging.getLogger('octconv')
    if config.data_dir is None and config.rec_train is None:
        origin = config.sources.get('input_size')
        log.info('demo digits: %d px inputs (%s); give --rec-train or --data-dir for real data',
                 config.input_size, origin.source if origin else 'given')
    log.info('training %s on %d images of %d classes (worker %d of %d), %d batches of %d per '
             'epoch', config.model_name, data.images, data.classes, rank, workers,
             data.steps_per_epoch, config.batch_size * len(ctx))
    net, history = fit(config, ctx, data, rank=rank, resume_from=resume_from,
                       kvstore=kvstore, stop_after=stop_after,
                       check=never if stops is None else stops.check)
    return net, history, rank


def _published_figures(config):
    """``{'recipe', 'published_top1', 'published_top5', 'published_source'}`` of the config's
    recipe (empty without one)."""
    if not config.recipe:
        return {}
    record = get_recipe(config.recipe).record
    return {'recipe': record.name, 'published_top1': record.top1,
            'published_top5': record.top5, 'published_source': record.accuracy_source}


def main(argv=None):
    """Train; exit 0 when done, 1 when training diverged, 2 on bad input or checkpoint errors,
    130 / 143 when stopped by SIGINT / SIGTERM (at the next batch; the last complete
    checkpoint kept; a second signal ends the process at once)."""
    try:
        config, actions = parse_config(argv)
        if 'list_recipes' in actions:
            print(recipe_listing())
            return 0
        config = _continuing(config)
    except (ValueError, checkpoint.CheckpointError) as err:
        print('octconv-train: error: %s' % err, file=sys.stderr)
        return 2
    if 'dry_run' in actions:
        print(dry_run_report(config))
        return 0
    log = _setup_logging(config)
    try:
        with StopSignals() as stops:
            _, history, rank = run(config, stops=stops)
    except checkpoint.FolderInUse as err:     # nothing of the holder's is touched, its log
        print('octconv-train: error: %s' % err, file=sys.stderr)     # included
        return 2
    except TrainingDiverged as err:
        log.error('octconv-train: stopped: %s', err)
        return 1
    except (DataError, CheckpointMismatch, checkpoint.CheckpointError, ValueError) as err:
        log.error('octconv-train: error: %s', err)
        return 2
    except MXNetError as err:
        log.error('octconv-train: error: MXNet: %s', checkpoint.first_line(err))
        return 2
    except KeyboardInterrupt as err:
        import mxnet as mx
        mx.nd.waitall()         # MXNet's queued work ends before the process does
        signum = getattr(err, 'signum', signal.SIGINT)
        log.error('octconv-train: stopped by %s; the last complete checkpoint is %s',
                  signal.Signals(signum).name, checkpoint.latest(config.save_dir))
        return 128 + signum
    if history and rank == 0:
        plot_curves(history, os.path.join(config.save_dir, 'curves.png'))
        final = dict(history[-1], **_published_figures(config))
        if 'published_top1' in final:
            log.info('[done] %s: top-1 %s top-5 %s (published %.1f / %.1f)', final['recipe'],
                     accuracy_text(final.get('top1')), accuracy_text(final.get('top5')),
                     final['published_top1'], final['published_top5'])
        print(json.dumps(final))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
