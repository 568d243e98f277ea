"""One training loop for Gluon models and Symbol networks (as SymbolBlocks).

Each epoch draws its data order, augmentation and mixup from ``(seed, epoch)``
alone, and each checkpoint holds everything else that changes (parameters,
optimizer states with their update count, iteration). So a run stopped after
any epoch and resumed ends with the same parameters as one that never stopped.
"""
import json
import logging
import math
import os
import random
import time
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..symbol.head import softmax_output
from ..utils.data import DataError, batches, equal_batches
from ..utils.flops import trace_block
from . import checkpoint, preprocessing
from .config import PLACE_OPTIONS
from .evaluate import num_images, score
from .models import build_model
from .schedule import make_lr_scheduler
from .stopping import never
from .targets import draw_lambda, mixup, one_hot_targets

__all__ = ['TrainingDiverged', 'TrainingData', 'INITIALIZERS', 'build_network', 'fit',
           'export_model', 'seed_everything', 'epoch_seed', 'default_initializers',
           'initialize', 'EpochStats', 'run_segment', 'write_run_record', 'accuracy_text']

log = logging.getLogger('octconv.train')


class TrainingDiverged(RuntimeError):
    """The loss or a parameter became NaN or infinite; the message names the epoch, the
    batch and, for a parameter, its name."""


TrainingData = namedtuple('TrainingData', ['classes', 'images', 'steps_per_epoch',
                                           'train_source', 'val_source', 'skipped'],
                          defaults=[()])
TrainingData.__doc__ = """What :func:`fit` trains on: ``classes`` outputs, ``images`` per epoch
(this worker's share), ``steps_per_epoch`` batches, ``train_source(epoch)`` and
``val_source()`` (or None) opening fresh iterators of (N, 3, H, W) images and labels;
``skipped``, the training records left out as unusable (dicts: file, index, key,
offset, reason)."""

# Weight initialisers by name. The reference trains with MSRAPrelu: Xavier, gaussian,
# fan averaged over input and output, magnitude 2 / (1 + 0.25^2).
INITIALIZERS = {'msraprelu': lambda: mx.init.MSRAPrelu(factor_type='avg', slope=0.25),
                'xavier': lambda: mx.init.Xavier(rnd_type='gaussian', factor_type='in',
                                                 magnitude=2)}


class EpochStats(dict):
    """One epoch's figures: epoch, lr, train_loss, train_acc, top1, top5, images_per_s..."""


def seed_everything(seed):
    """Seed Python's, numpy's and MXNet's generators."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    mx.random.seed(seed % (2 ** 31))


def build_network(config, classes):
    """The network of ``config`` (a :class:`RunConfig`) with ``classes`` outputs (logits),
    not yet initialised. A Symbol network is specialised to the training size (no crops,
    no padded pooling where every map is even); :func:`export_model` writes the graph of
    every size with the same parameters."""
    return build_model(config.api, config.model, config.depth, config.ratio, classes,
                       config.use_se, config.last_gamma, config.final_drop,
                       data_shape=(1, 3, config.input_size, config.input_size)
                       if config.api == 'symbol' else None)


def default_initializers(net):
    """Ones/zeros for the vectors of a SymbolBlock, whose parameters come without any."""
    for name, param in net.collect_params().items():
        if param.init is None:
            if name.endswith(('gamma', 'moving_var', 'running_var')):
                param.init = mx.init.One()
            elif name.endswith(('beta', 'bias', 'moving_mean', 'running_mean')):
                param.init = mx.init.Zero()


def initialize(net, initializer, ctx):
    """Initialise ``net`` on ``ctx`` with the weight initialiser named ``initializer`` (a key
    of :data:`INITIALIZERS`); BatchNorm vectors and biases get ones and zeros."""
    default_initializers(net)
    net.initialize(INITIALIZERS[initializer](), ctx=ctx)


def _no_weight_decay(net):
    for name, param in net.collect_params().items():
        if name.endswith(('_bias', '_beta', '_gamma', 'bias', 'beta', 'gamma')):
            param.wd_mult = 0.


def epoch_seed(seed, epoch):
    """The seed of everything random in ``epoch`` of a run seeded with ``seed``: data order,
    augmentation, dropout, mixup."""
    return seed * 100003 + epoch


def _split(array, ctx):
    return gluon.utils.split_and_load(array, ctx, even_split=False)


def fit(config, ctx, data, rank=0, resume_from=None, kvstore=None, stop_after=None,
        check=never):
    """Train ``config`` (a :class:`RunConfig`) on ``data`` (a :class:`TrainingData`) for
    ``config.num_epochs`` epochs; returns ``(net, [EpochStats])``.

    ``resume_from`` (a checkpoint folder) continues a run. ``stop_after`` ends this
    call after that many epochs (as if the process were stopped). ``kvstore`` is a
    distributed KVStore (``rank`` this worker's rank): gradients are summed over all
    workers, every worker applies the same update, and only rank 0 validates and
    writes logs and checkpoints. ``check()`` is called at every safe point (each
    batch, around the opening of an iterator, after validation and after a
    checkpoint) and may raise to stop the run there (:class:`stopping.StopSignals`).
    Raises :class:`TrainingDiverged` on a NaN/inf loss and
    :class:`checkpoint.CheckpointError` when a checkpoint cannot be written.
    """
    net = build_network(config, data.classes)
    if config.dtype == 'float16':
        net.cast('float16')
    seed_everything(config.seed)
    initialize(net, config.initializer, ctx)
    if config.no_wd:
        _no_weight_decay(net)
    net.hybridize(static_alloc=True)

    steps = data.steps_per_epoch
    scheduler = make_lr_scheduler(config.lr_mode, config.lr, config.num_epochs, steps,
                                  config.warmup_epochs, config.warmup_lr, config.lr_decay,
                                  [int(e) for e in config.lr_decay_epoch.split(',') if e.strip()])
    optimizer_params = {'wd': config.wd, 'momentum': config.momentum, 'lr_scheduler': scheduler}
    if config.dtype == 'float16':
        optimizer_params['multi_precision'] = True
    if config.kv_store == 'horovod' and kvstore is not None:
        # Horovod averages the gradients itself (its trainer divides by the worker count).
        # Only trained parameters start from rank 0's values: BatchNorm statistics are each
        # worker's own, as with the parameter server.
        kvstore.broadcast_parameters(net.collect_params('^(?!.*running_).*$'), root_rank=0)
        trainer = kvstore.DistributedTrainer(net.collect_params(), config.optimizer,
                                             optimizer_params)
    elif kvstore is not None:
        # The optimizer runs on the servers, which send every worker the updated weights.
        # (With updates on the workers, Gluon's lazy kvstore set-up lets a worker's first
        # gradient push overtake its pull of the initial weights, and that worker then
        # starts from the summed gradients.) Checkpoints hold the parameters only.
        trainer = gluon.Trainer(net.collect_params(), config.optimizer, optimizer_params,
                                kvstore=kvstore, update_on_kvstore=True)
    else:
        trainer = gluon.Trainer(net.collect_params(), config.optimizer, optimizer_params,
                                kvstore=config.kv_store if len(ctx) > 1 else None)
    # gradients of all workers are summed before an update, except in async mode and with
    # Horovod, which averages
    workers = 1
    if kvstore is not None and config.kv_store.startswith('dist') and 'async' not in kvstore.type:
        workers = kvstore.num_workers
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)

    start_epoch, iteration, history, segments = 0, 0, [], []
    if resume_from:
        meta = _load_checkpoint(config, net, trainer, ctx, resume_from)
        start_epoch, iteration, history = meta['epoch'], meta['iteration'], meta['history']
        segments = meta.get('segments', [])
        log.info('resumed from %s: epoch %d, iteration %d', resume_from, start_epoch,
                 iteration)
    segments = segments + [run_segment(config, start_epoch, data.skipped)]
    if rank == 0:
        # the log restarts from what the checkpoint knows: epochs after it are redone
        os.makedirs(config.save_dir, exist_ok=True)
        checkpoint.atomic_write_text(os.path.join(config.save_dir, 'log.jsonl'),
                                     ''.join(json.dumps(h) + '\n' for h in history))
        write_run_record(config, segments)

    last = config.num_epochs if stop_after is None else min(config.num_epochs,
                                                          start_epoch + stop_after)
    for epoch in range(start_epoch, last):
        check()
        if kvstore is not None:     # every worker takes the same number of same-size steps
            epoch_batches = equal_batches(lambda: data.train_source(epoch),
                                          data.steps_per_epoch)
            total = data.steps_per_epoch * config.batch_size * len(ctx)
        else:
            source = data.train_source(epoch)
            check()
            epoch_batches, total = batches(source), num_images(source)
        stats = _train_epoch(config, net, trainer, loss_fn, ctx, epoch_batches, total,
                             data.classes, epoch, workers, check)
        iteration += stats.pop('batches')
        if data.val_source is not None and rank == 0:
            source = data.val_source()
            check()
            result = score(net, source, ctx, config.dtype, progress=config.progress,
                           check=check)
            stats.update(top1=result['top1'], top5=result['top5'],
                         val_images=result['images'])
        history.append(stats)
        log.info('[epoch %d] lr %.5f loss %.4f train-acc %.4f val top-1 %s top-5 %s %.1f img/s',
                 epoch + 1, stats['lr'], stats['train_loss'], stats['train_acc'],
                 accuracy_text(stats.get('top1')), accuracy_text(stats.get('top5')),
                 stats['images_per_s'])
        if rank == 0:
            _append_log(config.save_dir, stats)
            done = epoch + 1
            if done % config.save_frequency == 0 or done == config.num_epochs or done == last:
                _save(config, net, trainer, done, iteration, history, stats.get('top1'),
                      segments)
                check()
    if rank == 0 and last == config.num_epochs and last > start_epoch:
        export_model(config, net, data.classes)
    check()
    return net, history


def export_model(config, net, classes):
    """The trained model for ``octconv-score``: SAVE_DIR/model-symbol.json and
    model-NNNN.params (a Module checkpoint) for Symbol networks, model.params for Gluon;
    beside them model-preprocessing.json, the preprocessing it was trained with. The
    files are written together and renamed into place (CheckpointError on failure)."""
    record = preprocessing.of_config(config)

    def write_files(folder):
        prefix = os.path.join(folder, 'model')
        if config.api == 'symbol':
            _export_any_size(config, net, classes, prefix)
        else:
            net.save_parameters(prefix + '.params')
        preprocessing.write(prefix, record)
    names = checkpoint.publish_files(config.save_dir, write_files)
    log.info('exported %s to %s', ', '.join(names), config.save_dir)


_IDENTITY = ('api', 'model', 'depth', 'ratio', 'use_se')     # what decides the parameters


def _export_any_size(config, net, classes, prefix):
    """A Module checkpoint of the Symbol network ``net`` trains, in the graph that takes
    every input size, ending in ``SoftmaxOutput`` (``softmax``, label ``softmax_label``) as
    ``get_symbol`` builds it and the released checkpoints hold: PREFIX-symbol.json and
    PREFIX-NNNN.params, which a Module bound with label shapes (the reference score.py,
    MXNet's example/image-classification) reads unchanged."""
    logits, _ = trace_block(build_model('symbol', config.model, config.depth, config.ratio,
                                        classes, final_drop=config.final_drop))
    symbol = softmax_output(logits)
    params = {name: p.data().as_in_context(mx.cpu()) for name, p in net.collect_params().items()}
    aux = set(symbol.list_auxiliary_states())
    mx.model.save_checkpoint(prefix, config.num_epochs, symbol,
                             {k: v for k, v in params.items() if k not in aux},
                             {k: v for k, v in params.items() if k in aux})


def _load_checkpoint(config, net, trainer, ctx, folder):
    """Load the parameters (and optimizer states) of checkpoint ``folder`` into ``net`` and
    ``trainer``; returns its meta. CheckpointError names the file for a checkpoint of
    another network or a file that cannot be read."""
    meta = checkpoint.load_meta(folder)
    saved = meta.get('config', {})
    differs = [key for key in _IDENTITY if key in saved and saved[key] != getattr(config, key)]
    if differs:
        raise checkpoint.CheckpointError(
            '%s was trained with %s; this run has %s' % (
                folder, ', '.join('%s %s' % (k, saved[k]) for k in differs),
                ', '.join('%s %s' % (k, getattr(config, k)) for k in differs)))
    params = os.path.join(folder, 'model.params')
    try:
        net.load_parameters(params, ctx=ctx)
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as err:
        raise checkpoint.CheckpointError('%s: cannot be loaded into %s (%s)' % (
            params, config.model_name, checkpoint.first_line(err))) from None
    states = os.path.join(folder, 'trainer.states')
    if os.path.isfile(states):
        try:
            trainer.load_states(states)
        except Exception as err:     # pickle, EOF or MXNet errors of a damaged file
            raise checkpoint.CheckpointError('%s: cannot be read (%s)' % (
                states, checkpoint.first_line(err))) from None
    else:
        log.warning('%s has no optimizer states (a distributed run keeps them on the '
                    'servers): momentum starts afresh', folder)
    return meta


def _all_finite(arrays):
    """Whether every element of ``arrays`` is finite: one check per 100 arrays (MXNet's
    ``multi_all_finite`` corrupts its arguments beyond a few hundred), one sync."""
    flags = [mx.nd.multi_all_finite(*arrays[i:i + 100], num_arrays=len(arrays[i:i + 100]))
             for i in range(0, len(arrays), 100)]
    return mx.nd.add_n(*flags).asscalar() == len(flags)


def _first_non_finite(params, arrays):
    """The name of the first of ``params`` (values ``arrays``) holding a NaN or infinity,
    or None."""
    if _all_finite(arrays):
        return None
    return next(p.name for p, a in zip(params, arrays) if not _all_finite([a]))


def _train_epoch(config, net, trainer, loss_fn, ctx, epoch_batches, total, classes, epoch,
                 workers, check):
    """One epoch over ``epoch_batches`` ((data, label, valid) triples, ``total`` images);
    ``check()`` before each batch."""
    from tqdm import tqdm
    seed_everything(epoch_seed(config.seed, epoch))
    rng = np.random.RandomState(epoch_seed(config.seed, epoch))
    use_mixup = config.mixup and epoch < config.num_epochs - config.mixup_off_epoch
    loss_sum = correct = seen = batches_done = 0
    bar = tqdm(total=total, unit='img', desc='epoch %d' % (epoch + 1),
               disable=not config.progress)
    params, arrays = list(net.collect_params().values()), None
    start = time.time()
    for batch_index, (data, label, valid) in enumerate(epoch_batches):
        check()
        targets = one_hot_targets(mx.nd, label, classes, config.label_smoothing)
        if use_mixup:
            data, targets = mixup(data, targets, draw_lambda(rng, config.mixup_alpha))
        data_parts, target_parts = _split(data, ctx), _split(targets, ctx)
        with autograd.record():
            outputs = [net(x.astype(config.dtype, copy=False)) for x in data_parts]
            losses = [loss_fn(out.astype('float32', copy=False), t)
                      for out, t in zip(outputs, target_parts)]
        autograd.backward(losses)
        batch_loss = sum(l.sum().asscalar() for l in losses)
        if not math.isfinite(batch_loss):
            raise TrainingDiverged('the loss is %s at epoch %d, batch %d; the last good '
                                   'checkpoint is %s' % (batch_loss, epoch + 1, batch_index + 1,
                                                         checkpoint.latest(config.save_dir)))
        trainer.step(valid * workers)         # the global batch when gradients are summed
        if arrays is None:          # after the first forward pass (deferred initialisation)
            arrays = [p.data(ctx[0]) for p in params]    # updated in place by every step
        bad = _first_non_finite(params, arrays)
        if bad is not None:     # a finite loss can still leave weights at inf or NaN
            raise TrainingDiverged('parameter %s became NaN or infinite at epoch %d, batch %d '
                                   '(lr %g); the last good checkpoint is %s'
                                   % (bad, epoch + 1, batch_index + 1, trainer.learning_rate,
                                      checkpoint.latest(config.save_dir)))
        predicted = np.concatenate([o.argmax(axis=1).asnumpy() for o in outputs])
        correct += int((predicted == label.asnumpy()).sum())
        loss_sum, seen, batches_done = loss_sum + batch_loss, seen + valid, batches_done + 1
        bar.update(valid)
        bar.set_postfix(loss='%.3f' % (loss_sum / seen), lr='%.4f' % trainer.learning_rate)
    bar.close()
    if seen == 0:
        raise DataError('the training data yielded no images')
    mx.nd.waitall()
    elapsed = time.time() - start
    return EpochStats(epoch=epoch + 1, lr=trainer.learning_rate, train_loss=loss_sum / seen,
                      train_acc=correct / seen, images=seen, images_per_s=seen / elapsed,
                      seconds=elapsed, batches=batches_done)


def _append_log(save_dir, stats):
    with open(os.path.join(save_dir, 'log.jsonl'), 'a') as handle:
        handle.write(json.dumps(stats) + '\n')


def accuracy_text(value):
    """An accuracy in [0, 1] for a log line, with 4 decimals ('n/a' for None)."""
    return 'n/a' if value is None else '%.4f' % value


def run_segment(config, start_epoch, skipped=()):
    """The record of one process's part of a run: the first epoch it trains, when it
    started, the values of the options a resumed run may change
    (:data:`config.PLACE_OPTIONS`; every other value is the run's own) and the
    training records it left out (``skipped``)."""
    return {'first_epoch': start_epoch + 1,
            'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'options': {name: getattr(config, name) for name in PLACE_OPTIONS},
            'skipped_records': list(skipped)}


def write_run_record(config, segments):
    """SAVE_DIR/run.json: every value of the run with its source, and ``segments``, one per
    process that trained it (the first, then each resumed one)."""
    checkpoint.atomic_write_text(os.path.join(config.save_dir, 'run.json'),
                                 json.dumps(dict(config.describe(), segments=segments),
                                            indent=1) + '\n')


def _save(config, net, trainer, epoch, iteration, history, top1, segments):
    def write_files(folder):
        net.save_parameters(os.path.join(folder, 'model.params'))
        preprocessing.write(os.path.join(folder, 'model'), preprocessing.of_config(config))
        if not trainer._update_on_kvstore or trainer._kvstore is None \
                or 'dist' not in str(trainer._kvstore.type):
            trainer.save_states(os.path.join(folder, 'trainer.states'))
    meta = {'epoch': epoch, 'iteration': iteration, 'seed': config.seed, 'history': history,
            'lr': trainer.learning_rate, 'config': config.describe(), 'segments': segments}
    folder = checkpoint.save(config.save_dir, epoch, write_files, meta, keep=config.keep_last,
                             top1=top1)
    log.info('checkpoint %s', folder)
