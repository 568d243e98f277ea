"""``octconv-bench``: octave networks against the same network at ratio 0, in one process.

For each ratio the model is built, hybridized and warmed up; then all models
are timed interleaved (in each of ``--repeats`` rounds, each model runs once
untimed, to be back in the caches, then ``--inner`` timed runs) and the median
is reported: inference latency and throughput at each batch size (one model
instance per batch size, so that no shape changes), and a training step
(forward, backward, update). Each model is timed as built, through MXNet's
MKLDNN fusion pass, with its BatchNorms folded first, through
:func:`octconv.utils.deploy.for_inference` without its merging of summed
convolutions (``unmerged``) and through all of it, which picks the fastest of its
graphs by timing them (``--variants`` picks some); ratios are against the fastest
vanilla variant, the best vanilla a user could run. The table gives medians; the JSON
lines also give each model's fastest run and its ratio to the fastest vanilla run
(``b1_min_ms``, ``b1_min_time_ratio``): on a shared machine noise only adds time. The
variants are timed one after the other, each with all its ratios interleaved, and
each variant's models are freed before the next is built (all of them at once would
not fit in memory at batch 16). Peak
memory is how far the process's RSS rose above its level before each model's own
runs (the peak is reset in between through /proc/self/clear_refs), the memory
that model's runs need beyond what every model already holds; MXNet runtime only
(the ONNX runtimes open and close each model in every round). ``--graphs`` also
times the straightforward octave graph (before and after, in one run).
``--runtime onnxruntime`` times ONNX exports in onnxruntime instead: as MXNet's
exporter writes them (weights made constants) and through
:func:`octconv.utils.onnx_export.export_onnx`; ``--runtime openvino`` times the
latter in OpenVINO, in float32, or with ``--dtype bfloat16`` in bfloat16 (on CPUs that
have it: :mod:`octconv.utils.openvino_model`). Both time the files in a child process that does
not load MXNet, with one file open at a time (each opened for its turn in every
round) and the runtime's default threading. Results print as a table and as JSON
lines; both name the machine (CPU, ISA flags, threads, oneDNN version and the ISA
it runs, runtime versions: :mod:`octconv.train.machine`), since speed ratios differ a
lot between CPU families.
``OMP_WAIT_POLICY`` is ACTIVE unless set (MXNet runtime): see the comment in :func:`main`.
"""
import argparse
import contextlib
import gc
import json
import os
import statistics
import sys

from .cli import add_model_args, finish_model_args, input_shape, model_symbol
from .machine import describe_machine, machine_line
from .models import build_model, default_model, inference_graph, is_video_model, video_frames
from .timing import PROFILED_RUNS, Candidate, time_in_child, time_rounds
from ..utils.octave import GRAPHS
from ..utils.deploy import check_mxnet_int8
from ..utils.flops import count_symbol
from ..utils.onnx_export import check_int8_export, export_onnx, onnx_weights_as_constants
from ..utils.openvino_model import check_bfloat16

__all__ = ['main', 'VARIANTS', 'INT8_TARGETS']

# MXNet variants of each model: name -> label suffix.
VARIANTS = {'as-built': '', 'mkldnn-fusion': ' +mkldnn-fusion',
            'bn-fold': ' +bn-fold+mkldnn-fusion', 'unmerged': ' for_inference unmerged',
            'for_inference': ' for_inference'}
# The project's speed targets for INT8: octave INT8 time over vanilla INT8 time (same
# runtime, same batch) at most this at each ratio. JSON lines carry target_time_ratio.
INT8_TARGETS = {0.125: 1.00, 0.25: 0.85, 0.5: 0.65, 0.75: 0.55}
_DEPLOY_STEPS = {'mkldnn-fusion': dict(fold=False, rewrite=False, merge=False),
                 'bn-fold': dict(rewrite=False, merge=False), 'unmerged': dict(merge=False),
                 'for_inference': {}}


def _gluon_candidates(args, ratio, batch_sizes, mx, graph, chosen):
    """The model at ``ratio`` as built, through the MKLDNN fusion pass, with BatchNorm
    folded then fused, through ``deploy.for_inference`` without its merging and with
    it (those of the variant names ``chosen``); one instance per batch size, so that no
    shape ever changes."""
    from ..utils.deploy import for_inference
    from .fit import default_initializers

    def build(static_shape=True):
        net = _model(args, ratio, data_shape=_shape(args, 1), graph=graph)
        if args.api == 'symbol':
            default_initializers(net)
        net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True, static_shape=static_shape)
        return net
    inputs = {b: mx.nd.random.uniform(shape=_shape(args, b)) for b in batch_sizes}
    variants = {VARIANTS[name]: {} for name in chosen}
    first = build()
    first(inputs[batch_sizes[0]])
    symbol, params = inference_graph(first, _shape(args, 1))
    for batch in batch_sizes:
        shape = _shape(args, batch)
        if '' in variants:
            net = first if batch == batch_sizes[0] else build()
            net(inputs[batch])
            for name, param in net.collect_params().items():
                param.set_data(params[name])
            variants[''][batch] = net
        try:
            for name, steps in _DEPLOY_STEPS.items():
                if VARIANTS[name] in variants:
                    if args.dtype == 'int8':
                        steps = dict(steps, dtype='int8', calib_mode='naive',
                                     calib_data=_random_calibration(shape))
                    variants[VARIANTS[name]][batch] = for_inference(
                        symbol, params, shape, **steps)
        except Exception as err:          # the pass rejects some graphs: report, go on
            print('ratio %g: for_inference%s failed (%s)'
                  % (ratio, ' (int8)' if args.dtype == 'int8' else '',
                     str(err).splitlines()[0]), file=sys.stderr)
    train_step = None
    if args.train_batch and '' in variants:
        train_step = _train_step(args, build, mx)
    candidates = []
    for suffix, nets in variants.items():
        if len(nets) != len(batch_sizes):
            continue

        def infer(batch, nets=nets):
            nets[batch](inputs[batch]).wait_to_read()
        label = 'ratio %g%s%s%s' % (ratio, '' if graph == 'optimized' else ' ' + graph, suffix,
                                    ' int8' if args.dtype == 'int8' else '')
        cand = Candidate(label, ratio, infer, train_step if not suffix else None)
        if suffix == VARIANTS['for_inference']:
            cand.graphs = {batch: net.inference_graph for batch, net in nets.items()}
        candidates.append(cand)
    return candidates


def _random_calibration(shape, images=8):
    """Random batches of ``shape``, ``images`` images in all (at least one batch), to
    calibrate INT8 models with (naive: their speed does not depend on the ranges found)."""
    import numpy as np
    rng = np.random.RandomState(0)
    return [rng.uniform(-1, 1, shape).astype(np.float32)
            for _ in range(max(1, images // shape[0]))]


def _train_step(args, build, mx):
    """A closure running one SGD step of a fresh copy of the model on random data."""
    trained = build(static_shape=False)
    trainer = mx.gluon.Trainer(trained.collect_params(), 'sgd', {'learning_rate': 1e-4})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    labels = mx.nd.zeros((args.train_batch,))
    train_x = mx.nd.random.uniform(shape=_shape(args, args.train_batch))

    def train_step():
        with mx.autograd.record():
            loss = loss_fn(trained(train_x), labels)
        loss.backward()
        trainer.step(args.train_batch)
        mx.nd.waitall()
    return train_step


def _export_onnx_files(args, ratio, folder, mx, graph):
    """Export the model at ``ratio`` for ``args.runtime``, one file per batch size.

    Returns ``[(label, {batch: path})]``: for onnxruntime the file as MXNet's exporter
    writes it (weights made constants, without which onnxruntime optimizes nothing)
    and the one of ``export_onnx``; for OpenVINO the latter."""
    import numpy as np
    net = _model(args, ratio, graph=graph)
    net.initialize(mx.init.Xavier())
    size = args.input_size
    symbol, params = net.export_graph(data_shape=(1, 3, size, size))
    suffixes = (' openvino',) if args.runtime == 'openvino' else (' mxnet-export',
                                                                   ' export_onnx')
    if args.dtype != 'float32':
        suffixes = (suffixes[-1] + ' ' + args.dtype,)
    models = []
    for suffix in suffixes:
        label = 'ratio %g%s%s' % (ratio, '' if graph == 'optimized' else ' ' + graph, suffix)
        files = {}
        for batch in args.batch_sizes:
            path = files[batch] = os.path.join(
                folder, '%s-b%d.onnx' % (label.replace(' ', '_'), batch))
            if suffix == ' mxnet-export':
                mx.onnx.export_model(symbol, dict(params), [(batch, 3, size, size)],
                                     [np.float32], path)
                onnx_weights_as_constants(path)
            elif args.dtype == 'int8':
                shape = (batch, 3, size, size)
                export_onnx(symbol, params, shape, path, quantize='int8', calib_mode='naive',
                            calib_data=_random_calibration(shape))
            else:
                export_onnx(symbol, params, (batch, 3, size, size), path)
        models.append((label, files))
    return models


def _time_onnx_files(args, ratios, mx):
    """Export every model, then time the files in a child process without MXNet.

    MXNet's own threads (its engine, OpenMP) slow other runtimes in the same process,
    octave models most, and not the same way from run to run. The files (about 100 MB
    each) are deleted afterwards."""
    import tempfile
    plan = {'runtime': args.runtime, 'dtype': args.dtype, 'threads': args.threads,
            'size': args.input_size,
            'batch_sizes': args.batch_sizes, 'warmup': args.warmup, 'repeats': args.repeats,
            'inner': args.inner, 'profile': args.profile, 'models': []}
    with tempfile.TemporaryDirectory(prefix='octconv-bench-') as folder:
        for ratio in ratios:
            for graph in args.graphs:
                for label, files in _export_onnx_files(args, ratio, folder, mx, graph):
                    plan['models'].append({'label': label, 'ratio': ratio, 'files': files})
        timed = time_in_child(plan, folder)
    candidates = []
    for model, result in zip(plan['models'], timed):
        cand = Candidate(model['label'], model['ratio'], None)
        cand.times = {int(b): t for b, t in result['times'].items()}
        cand.profile = result.get('profile')
        cand.peak = None               # sessions opened and closed: no model's own figure
        candidates.append(cand)
    return candidates


def _mxnet_profile(cand, batch):
    """``{operator: ms per run}`` of ``cand`` at ``batch`` by MXNet's profiler (its
    aggregate statistics over PROFILED_RUNS runs; the models were built with bulk
    execution off, so that each operator is timed)."""
    import mxnet as mx
    mx.nd.waitall()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                           filename=os.devnull)
    mx.profiler.set_state('run')
    for _ in range(PROFILED_RUNS):
        cand.infer(batch)
    mx.nd.waitall()
    mx.profiler.set_state('stop')
    stats = json.loads(mx.profiler.dumps(reset=True, format='json'))['Time'].get('operator', {})
    return {op: value['Total'] / PROFILED_RUNS for op, value in stats.items()
            if op not in ('WaitForVar', 'DeleteVariable')}


def _model(args, ratio, data_shape=None, graph='optimized'):
    """The benchmarked model at ``ratio`` (0 is vanilla)."""
    return build_model(args.api, args.model, args.depth, ratio, data_shape=data_shape,
                       graph=graph)


def _flop_ratio(args, ratio):
    from ..utils.flops import count_block
    return count_block(_model(args, ratio), _shape(args, 1)).flops


def _shape(args, batch):
    """The input of ``batch`` images (N, 3, size, size), or clips (N, 3, T, size, size)."""
    size = args.input_size
    if is_video_model(args.api, args.model):
        return (batch, 3, video_frames(args.model, args.frames), size, size)
    return (batch, 3, size, size)


def main(argv=None):
    """Time a model at several ratios against ratio 0; print a table and JSON lines."""
    parser = argparse.ArgumentParser(prog='octconv-bench', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    model = add_model_args(parser, depth=50, ratio=None, classes=1000, input_size=224,
                           batch_size=None, video=True)
    model.add_argument('--ratios', type=float, nargs='+', default=[0.125, 0.25, 0.5, 0.75],
                       help='octave ratios, each timed against ratio 0 (vanilla)')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--train-batch', type=int, default=16, help='0 = no training step')
    parser.add_argument('--threads', type=int, default=2, help='threads of the runtime')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--inner', type=int, default=2,
                        help='timed runs in a row per model and round, after one untimed')
    parser.add_argument('--runtime', choices=('mxnet', 'onnxruntime', 'openvino'),
                        default='mxnet')
    parser.add_argument('--variants', nargs='+', choices=tuple(VARIANTS),
                        help='MXNet variants of each model (default: all; with --dtype int8 '
                        'for_inference, which may be joined by unmerged); the training step '
                        'is timed with as-built')
    parser.add_argument('--dtype', choices=('float32', 'int8', 'bfloat16'), default='float32',
                        help='int8: each model quantized (for_inference, export_onnx), '
                        'calibrated on 8 random images (naive: the speed does not depend on '
                        'the ranges); bfloat16: the float32 ONNX files in '
                        'OpenVINO in bfloat16 (--runtime openvino); no training step')
    parser.add_argument('--graphs', nargs='+', choices=GRAPHS, default=['optimized'],
                        help='octave graphs to time (both: before and after the optimizations)')
    parser.add_argument('--profile', action='store_true',
                        help='also the time of each operator type at the first batch size '
                        '(MXNet: its profiler, with bulk execution off for the whole run; '
                        'onnxruntime: its profiler; OpenVINO: its performance counters), '
                        'printed and in the JSON lines')
    args = parser.parse_args(argv)
    args.model = args.model or default_model(args.api)
    try:
        finish_model_args(args)
    except ValueError as err:
        parser.error(str(err))
    if args.runtime != 'mxnet' and is_video_model(args.api, args.model):
        parser.error('--runtime %s: video models are timed in MXNet (--runtime mxnet)'
                     % args.runtime)
    if args.runtime != 'mxnet' and args.api == 'symbol':
        parser.error('--runtime %s times Gluon models: add --api gluon (or gluoncv)'
                     % args.runtime)
    if args.dtype == 'int8':
        other = sorted(set(args.variants or []) - {'unmerged', 'for_inference'})
        if other:
            parser.error('--variants %s: INT8 models are built by for_inference; with --dtype '
                         'int8 the variants are for_inference and unmerged' % ' '.join(other))
        args.variants, args.train_batch = args.variants or ['for_inference'], 0
        try:
            (check_mxnet_int8 if args.runtime == 'mxnet' else check_int8_export)()
        except RuntimeError as err:
            parser.error('--dtype int8: %s' % err)
    if args.dtype == 'bfloat16':
        if args.runtime != 'openvino':
            parser.error('--dtype bfloat16 runs the ONNX files in OpenVINO: add --runtime '
                         'openvino')
        try:
            check_bfloat16()
        except (ImportError, RuntimeError) as err:
            parser.error('--dtype bfloat16: %s' % err)
        args.train_batch = 0
    args.variants = args.variants or list(VARIANTS)
    if len(set(args.input_size)) != 1:
        parser.error('--input-size: octconv-bench times square inputs; give one size')
    # The model at its largest ratio, built and counted at the input size: a bad name or
    # size is refused here, before any timing
    probe = argparse.Namespace(**dict(vars(args), ratio=max(args.ratios), batch_size=1))
    try:
        count_symbol(model_symbol(probe)[0], input_shape(probe))
    except ValueError as err:
        parser.error(str(err))
    args.input_size = args.input_size[0]
    with _environment(args):
        return _bench(args)


@contextlib.contextmanager
def _environment(args):
    """For the duration of a run, the environment it times in; the process's own values
    are put back after it (a bench run inside a test or a notebook leaves nothing set)."""
    names = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MXNET_EXEC_BULK_EXEC_INFERENCE')
    before = {name: os.environ.get(name) for name in names}
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    # Once a second MXNet engine thread has run OpenMP work (a copy, an asnumpy), libgomp
    # sees more threads than cores and stops spinning between operators: every model in
    # the process then runs up to 1.6x slower, octave ones (more, smaller operators) most.
    # (Not for the other runtimes: spinning MXNet threads would take their cores.)
    if args.runtime == 'mxnet':
        os.environ.setdefault('OMP_WAIT_POLICY', 'ACTIVE')
        if args.profile:             # each operator run (and timed) on its own
            os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = '0'
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _bench(args):
    """Time the models of ``args`` (see :func:`main`); prints the table and JSON lines."""
    import mxnet as mx
    ratios = [0.] + [r for r in args.ratios if r != 0]
    if args.runtime == 'mxnet':
        candidates = []
        for variant in args.variants:          # one variant's models in memory at a time
            group = [cand for ratio in ratios for graph in args.graphs
                     for cand in _gluon_candidates(args, ratio, args.batch_sizes, mx, graph,
                                                   [variant])]
            time_rounds(group, args)
            for cand in group:
                if args.profile:
                    cand.profile = _mxnet_profile(cand, args.batch_sizes[0])
                cand.release()
            gc.collect()
            candidates.extend(group)
    else:
        candidates = _time_onnx_files(args, ratios, mx)
    flops = {ratio: _flop_ratio(args, ratio) for ratio in ratios}
    machine = describe_machine(args.threads, _runtime_versions(args.runtime, mx))
    rows = _rows(candidates, args, flops, machine)
    print('%s %s at %s, %s, %d threads, %s, median of %d interleaved runs'
          % (args.api, args.model, 'x'.join(map(str, _shape(args, 1)[2:])), args.dtype,
             args.threads, args.runtime, args.repeats))
    print('machine: ' + machine_line(machine))
    print('%-36s %8s' % ('model', 'FLOPs') + ''.join(
        '%12s %9s %7s' % ('b%d ms' % b, 'img/s', 'ratio') for b in args.batch_sizes) +
        '%12s %7s %9s' % ('train ms', 'ratio', '+peak MB'))
    for row in rows:
        line = '%-36s %8.3f' % (row['variant'], row['flop_ratio']) + ''.join(
            '%12.2f %9.1f %7.3f' % (row['b%d_ms' % b], row['b%d_images_per_s' % b],
                                    row['b%d_time_ratio' % b]) for b in args.batch_sizes)
        line += '%12.1f %7.3f' % (row['train_ms'], row['train_time_ratio']) \
            if 'train_ms' in row else '%12s %7s' % ('', '')
        peak = row['peak_extra_mb']
        print(line + ('%9.0f' % peak if peak is not None else ''))
    chosen = ['%s: %s' % (c.label, ', '.join('b%d %s' % item for item in c.graphs.items()))
              for c in candidates if c.graphs]
    if chosen:
        print('graphs for_inference chose (timed on this machine): ' + '; '.join(chosen))
    _print_targets(rows, args.batch_sizes)
    _print_profiles(rows, args.batch_sizes[0])
    for row in rows:
        print(json.dumps(row))
    return 0


def _rows(candidates, args, flops, machine):
    """One row (a JSON line) per timed candidate: at each batch size its median time and
    its fastest run, each also as a ratio to the vanilla candidates' best (the fastest
    vanilla median; the fastest vanilla run), its training step's median against the
    fastest vanilla one, its FLOPs against vanilla's (``flops``: ratio -> FLOPs), and
    what else was recorded (graphs chosen, profile, target)."""
    vanilla = [c for c in candidates if c.ratio == 0]
    best = {b: min(statistics.median(c.times[b]) for c in vanilla) for b in args.batch_sizes}
    best_min = {b: min(min(c.times[b]) for c in vanilla) for b in args.batch_sizes}
    vanilla_train = [statistics.median(c.train_times) for c in vanilla if c.train_times]
    rows = []
    for cand in candidates:
        row = {'model': args.model, 'api': args.api, 'runtime': args.runtime,
               'dtype': args.dtype, 'variant': cand.label, 'ratio': cand.ratio,
               'input': list(_shape(args, 1)[1:]),
               'flop_ratio': flops[cand.ratio] / flops[0.], 'peak_extra_mb': cand.peak,
               'machine': machine}
        for batch in args.batch_sizes:
            ms = statistics.median(cand.times[batch]) * 1000
            row['b%d_ms' % batch] = ms
            row['b%d_images_per_s' % batch] = batch / ms * 1000
            row['b%d_time_ratio' % batch] = ms / 1000 / best[batch]
            row['b%d_min_ms' % batch] = min(cand.times[batch]) * 1000
            row['b%d_min_time_ratio' % batch] = min(cand.times[batch]) / best_min[batch]
        if cand.graphs:
            row['inference_graph'] = {'b%d' % b: name for b, name in cand.graphs.items()}
        if args.dtype == 'int8' and cand.ratio in INT8_TARGETS:
            row['target_time_ratio'] = INT8_TARGETS[cand.ratio]
        if cand.profile is not None:
            row['profile_b%d_ms' % args.batch_sizes[0]] = cand.profile
        if cand.train_times and vanilla_train:
            train_ms = statistics.median(cand.train_times) * 1000
            row['train_ms'], row['train_time_ratio'] = train_ms, train_ms / 1000 / min(
                vanilla_train)
        rows.append(row)
    return rows


def _print_targets(rows, batch_sizes):
    """One line per row with a target: its time ratios against the target, and by how much
    they miss it."""
    for row in rows:
        if 'target_time_ratio' not in row:
            continue
        target = row['target_time_ratio']
        verdicts = []
        for batch in batch_sizes:
            ratio = row['b%d_time_ratio' % batch]
            verdicts.append('b%d %.3f (%s)' % (batch, ratio, 'met' if ratio <= target
                                                else 'over by %.3f' % (ratio - target)))
        print('target %s: at most %.2f of vanilla INT8; %s'
              % (row['variant'], target, ', '.join(verdicts)))


def _print_profiles(rows, batch):
    """Where the time goes: ms per run of each operator type, one column per model."""
    key = 'profile_b%d_ms' % batch
    profiled = [row for row in rows if key in row]
    if not profiled:
        return
    totals = {}
    for row in profiled:
        for op, ms in row[key].items():
            totals[op] = max(totals.get(op, 0.), ms)
    print('operator time at batch %d, ms per run (profiler):' % batch)
    print('%-48s' % 'operator' + ''.join('%12s' % ('ratio %g' % r['ratio']) for r in profiled))
    for op in sorted(totals, key=totals.get, reverse=True):
        if totals[op] >= 0.05:
            print('%-48s' % op[:48] + ''.join('%12.2f' % r[key].get(op, 0.) for r in profiled))
    print('%-48s' % 'total' + ''.join('%12.2f' % sum(r[key].values()) for r in profiled))


def _runtime_versions(runtime, mx):
    """``{package: version}`` of MXNet and the runtime timed (read without loading it when
    it runs in the child process: its distribution's metadata)."""
    from importlib import metadata
    versions = {'mxnet': mx.__version__}
    if runtime != 'mxnet':
        try:
            versions[runtime] = metadata.version(runtime)
        except metadata.PackageNotFoundError:
            versions[runtime] = None
    return versions


if __name__ == '__main__':
    raise SystemExit(main())
