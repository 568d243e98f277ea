"""``octconv-score``: single center-crop top-1 / top-5 of a checkpoint.

Two kinds of checkpoint:

- an MXNet Module checkpoint ``--checkpoint PREFIX --epoch N`` (``PREFIX-symbol.json``
  and ``PREFIX-%04d.params`` with ``arg:``/``aux:`` keys, what a released
  ablation .tar holds); without the JSON the symbol is built from the model flags
  ``--network --depth --ratio``;
- a Gluon parameter file ``--params FILE`` of the model ``--model NAME --ratio R
  [--use-se]`` (``--params`` implies ``--api gluon``; ``--api gluoncv`` for a GluonCV
  model converted by ``octavize``, as ``octconv-train --api gluoncv`` trains it).

The model flags are every tool's (``--api``, ``--network``/``--model``, ``--depth``,
``--ratio``, ``--use-se``, ``--classes``); a checkpoint that octconv-train wrote
records its model, and the JSON line reports what was scored from that record.

Preprocessing: a model trained by ``octconv-train`` has ``PREFIX-preprocessing.json``
beside it (convention, input size, crop ratio); each value not typed is taken
from it, and a typed one that contradicts it is applied and reported. Without
one: 224 px, crop ratio 0.875, and the convention of the checkpoint's API.

``--dtype int8`` scores MXNet's INT8 model of the checkpoint
(:func:`octconv.utils.deploy.for_inference`, its merged graph), calibrated on the first
``--calib-batches`` batches of the validation data, as GluonCV's
``verify_pretrained.py --calibration`` does; CPU only. ``--calib-mode`` is naive by
default, as in GluonCV's script and ``for_inference`` (entropy: ``docs/data.md`` keeps
what each scored). ``--dtype bfloat16`` scores the checkpoint's ONNX export in OpenVINO
in bfloat16 (:class:`octconv.utils.openvino_model.OpenVINOBlock`), on CPUs with bfloat16
instructions.

Data: ``--rec-val`` (.rec with its .idx), ``--data-dir`` (an image folder), or
by default the embedded demo digits. Every image is counted exactly once
(padding of the last batch is dropped). ``--table DIR`` scores every released
checkpoint found in DIR beside its published figures. The result is printed and
also written as one JSON line, which also says what was scored, on which data, and the CPU
(``machine``: INT8 numbers depend on its instructions).
"""
import argparse
import glob
import json
import os
import sys
import tarfile
import tempfile

import mxnet as mx
from mxnet.base import MXNetError

from ..utils.data import DataError, batches
from ..utils.flops import trace_block
from ..utils.params import CheckpointMismatch, check_parameters, read_parameter_file
from ..utils.symbol_block import symbol_block
from . import preprocessing
from .checkpoint import atomic_write_text, first_line
from .cli import add_data_args, add_device_args, add_model_args, contexts, data_source
from .config import MIN_INPUT_SIZE, check_data_path, check_range, typed_flags
from .evaluate import score
from .machine import cpu_description
from .models import build_model, default_model, inference_graph
from .recipes import RECIPES

__all__ = ['load_module_checkpoint', 'load_gluon_model', 'released_file_recipe',
           'output_classes', 'main']


def load_module_checkpoint(prefix, epoch, ctx, network=None, depth=None, ratio=0,
                           input_size=224):
    """A SymbolBlock of the logits of a Module checkpoint, its parameters loaded and checked."""
    params = '%s-%04d.params' % (prefix, epoch)
    if not os.path.isfile(params):
        raise DataError('%s: checkpoint parameters not found' % params)
    weights = read_parameter_file(params)
    if os.path.isfile(prefix + '-symbol.json'):
        symbol = mx.sym.load(prefix + '-symbol.json')
        model = prefix
    else:
        if network is None or depth is None:
            raise ValueError('%s-symbol.json not found: give --network and --depth (and '
                             '--ratio) to build the symbol' % prefix)
        classes = weights.get('classifier_weight')
        symbol, _ = trace_block(build_model(
            'symbol', network, depth, ratio, classes.shape[0] if classes is not None else 1000,
            data_shape=(1, 3, input_size, input_size)))
        model = ('%s-%d at ratio %s (built from the model flags: %s-symbol.json is absent)'
                 % (network, depth, ratio, prefix))
    if 'softmax_label' in symbol.list_arguments():
        symbol = symbol.get_children()[0]          # the logits under SoftmaxOutput
    expected = _parameter_shapes(symbol, (1, 3, input_size, input_size))
    check_parameters(weights, expected, model, params, ignore_extra=True)
    net = symbol_block(symbol)
    net.collect_params().load_dict(weights, ctx=ctx, ignore_extra=True, filename=params)
    return net


def _parameter_shapes(symbol, data_shape):
    """``{name: shape}`` of every parameter and auxiliary state of ``symbol`` for an input
    ``data`` of ``data_shape``."""
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=data_shape)
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    shapes.update(zip(symbol.list_auxiliary_states(), aux_shapes))
    shapes.pop('data')
    return shapes


def load_gluon_model(name, ratio, params, ctx, use_se=False, api='gluon'):
    """A Gluon model with ``params`` loaded (classes taken from the file's classifier):
    octconv's model ``name`` (``api`` 'gluon') or GluonCV's converted (``api`` 'gluoncv')."""
    if not os.path.isfile(params):
        raise DataError('%s: parameter file not found' % params)
    weights = read_parameter_file(params)
    if api == 'gluoncv':
        return _load_converted(name, ratio, weights, params, ctx)
    classifier = weights.get('classifer.weight')
    classes = classifier.shape[0] if classifier is not None else 1000
    net = build_model('gluon', name, ratio=ratio, classes=classes, use_se=use_se)
    net.load_parameter_dict(weights, params, ctx=ctx)
    return net


def _load_converted(name, ratio, weights, source, ctx):
    """GluonCV's ``name`` converted at ``ratio``, with the classes of the file ``source``
    (``weights``, under the names ``save_parameters`` gives them), its parameters checked
    and loaded."""
    def expected(classes):
        net = build_model('gluoncv', name, ratio=ratio, classes=classes)
        by_name = _parameter_shapes(trace_block(net)[0], (1, 3, 224, 224))
        return net, {key: by_name[param.name]
                     for key, param in net._collect_params_with_prefix().items()}
    _, shapes = expected(1000)
    classifier = [k for k, shape in shapes.items() if shape[:1] == (1000,) and k in weights]
    classes = weights[classifier[-1]].shape[0] if classifier else 1000
    net, shapes = expected(classes)
    check_parameters(weights, shapes, '%s (GluonCV, converted at ratio %s)' % (name, ratio),
                     source)
    for key, param in net._collect_params_with_prefix().items():
        param._load_init(weights[key], ctx)
    return net


def released_file_recipe(filename):
    """The recipe of a released checkpoint file (``a03_resnet-50_alpha-0.250.tar``,
    ``resnet152_v1f_alpha-0.125.params``), or None for any other file name."""
    name = os.path.basename(filename)
    recipe = RECIPES.get(os.path.splitext(name)[0])
    return recipe if recipe is not None and recipe.record.released and \
        recipe.record.file == name else None


def _score_table(directory, args, typed, ctx):
    """Score every released checkpoint in ``directory``, each with the preprocessing of its
    record unless typed; rows with the published figures."""
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, '*'))):
        recipe = released_file_recipe(path)
        if recipe is None:
            continue
        record = recipe.record
        if record.api == 'gluon':
            net = load_gluon_model(record.network, record.ratio, path, ctx, record.use_se)
        else:
            net = _load_ablation_tar(path, ctx, record.network, record.depth, record.ratio)
        chosen = {key: typed.get(key, getattr(record, key))
                  for key in ('convention', 'input_size', 'crop_ratio')}
        scoring = argparse.Namespace(**dict(vars(args), **chosen))
        net, classes, extra = _for_dtype(net, scoring, ctx)
        result = score(net, _validation_source(scoring, classes), ctx, _input_dtype(args),
                       progress=not args.quiet)
        result.update(file=os.path.basename(path), recipe=recipe.name, dtype=args.dtype,
                      data=_data_scored(args), **chosen, **extra)
        result.update(published_top1=record.top1, published_top5=record.top5,
                      published_source=record.accuracy_source)
        rows.append(result)
    if not rows:
        raise DataError('%s: no released checkpoint found (expected the released file names, '
                        'e.g. resnet152_v1f_alpha-0.125.params, a03_resnet-50_alpha-0.250.tar)'
                        % directory)
    return rows


def _check_dtype(args):
    """ValueError naming the flag if ``--dtype`` cannot run here: int8 or bfloat16 with
    ``--gpus``, int8 on an MXNet build without oneDNN, bfloat16 without OpenVINO or on a
    CPU without bfloat16 instructions."""
    if args.dtype not in ('int8', 'bfloat16'):
        return
    if args.gpus:
        raise ValueError('--dtype %s runs on the CPU (%s): leave out --gpus %s' % (
            args.dtype, 'MXNet\'s INT8 operators are oneDNN ones' if args.dtype == 'int8'
            else 'in OpenVINO', args.gpus))
    try:
        if args.dtype == 'int8':
            from ..utils.deploy import check_mxnet_int8
            check_mxnet_int8()
        else:
            from ..utils.openvino_model import check_bfloat16
            check_bfloat16()
    except ImportError as err:
        raise ValueError('--dtype bfloat16 runs in OpenVINO, which cannot be imported here '
                         '(%s): pip install ".[openvino]"' % err) from None
    except RuntimeError as err:
        raise ValueError('--dtype %s: %s' % (args.dtype, err)) from None


def _input_dtype(args):
    """The dtype of the images fed to the model: INT8 and bfloat16 models take float32
    ones."""
    return 'float32' if args.dtype in ('int8', 'bfloat16') else args.dtype


def _for_dtype(net, args, ctx):
    """``(net, classes, record)``: ``net`` cast to float16, quantized to INT8 or compiled
    by OpenVINO in bfloat16 as ``--dtype`` says (hybridized), the classes it scores and
    what the JSON line adds about it (INT8: the calibration and the graph; bfloat16: the
    runtime)."""
    if args.dtype == 'float16':
        net.cast('float16')
    net.hybridize(static_alloc=True)
    classes = output_classes(net, args.input_size, ctx[0], _input_dtype(args))
    if args.dtype == 'bfloat16':
        return _openvino_bfloat16(net, args), classes, {'runtime': 'openvino'}
    if args.dtype != 'int8':
        return net, classes, {}
    from ..utils.deploy import for_inference
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    calibration = []
    for data, _, _ in batches(_validation_source(args, classes)):
        if data.shape == shape:                  # a short last batch does not calibrate
            calibration.append(data.asnumpy())
        if len(calibration) == args.calib_batches:
            break
    if not calibration:
        raise ValueError('--calib-batches: the validation data has no full batch of '
                         '--batch-size %d to calibrate with' % args.batch_size)
    symbol, params = inference_graph(net, shape)
    # one graph, not the fastest of several: a score must not depend on timings
    quantized = for_inference(symbol, params, shape, dtype='int8', calib_data=calibration,
                              calib_mode=args.calib_mode, merge=True)
    return quantized, classes, {'calib_batches': len(calibration), 'calib_mode': args.calib_mode,
                                'inference_graph': quantized.inference_graph}


def _openvino_bfloat16(net, args):
    """``net`` exported to ONNX and compiled by OpenVINO in bfloat16."""
    from ..utils.onnx_export import export_onnx
    from ..utils.openvino_model import OpenVINOBlock
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    symbol, params = inference_graph(net, shape)
    with tempfile.TemporaryDirectory(prefix='octconv-score-') as folder:
        path = export_onnx(symbol, params, shape, os.path.join(folder, 'model.onnx'))
        return OpenVINOBlock(path, 'bfloat16')


def _load_ablation_tar(path, ctx, network, depth, ratio):
    with tempfile.TemporaryDirectory(prefix='octconv-') as folder:
        with tarfile.open(path) as archive:
            archive.extractall(folder, filter='data')
        params = sorted(glob.glob(os.path.join(folder, '**', '*-[0-9][0-9][0-9][0-9].params'),
                                  recursive=True))
        if not params:
            raise DataError('%s: no PREFIX-NNNN.params inside' % path)
        prefix, epoch = params[-1][:-12], int(params[-1][-11:-7])
        return load_module_checkpoint(prefix, epoch, ctx, network, depth, ratio)


def build_parser():
    """The command-line flags of octconv-score: what to score, the shared model flags (for
    a checkpoint without a symbol file or a Gluon parameter file), data and devices."""
    parser = argparse.ArgumentParser(prog='octconv-score', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group('checkpoint')
    what.add_argument('--checkpoint', metavar='PREFIX',
                      help='Module checkpoint PREFIX (PREFIX-symbol.json, PREFIX-NNNN.params)')
    what.add_argument('--epoch', type=int, help='Module checkpoint epoch')
    what.add_argument('--params', metavar='FILE',
                      help='Gluon parameter file of --model (--api gluon, the default '
                           'here, or gluoncv)')
    what.add_argument('--table', metavar='DIR',
                      help='score every released checkpoint in DIR beside its published '
                           'figures')
    add_model_args(parser, depth=50, ratio=0, classes=None, batch_size=50)
    _set_help(parser, 'input_size', 'center crop H [W] (square; default: as trained, else 224)')
    _set_help(parser, 'classes', 'number of classes (default: the checkpoint\'s)')
    parser.add_argument('--data-shape', help='C,H,W (alternative to --input-size)')
    parser.add_argument('--calib-batches', type=int, default=5,
                        help='--dtype int8: validation batches to calibrate with (default 5, '
                        'as GluonCV\'s verify_pretrained.py)')
    parser.add_argument('--calib-mode', choices=('naive', 'entropy'), default='naive',
                        help='--dtype int8: naive (min and max, the default, as GluonCV\'s '
                        'script) or entropy (KL-divergence thresholds; slower)')
    parser.add_argument('--json-out', help='also append the JSON line(s) to this file')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    add_data_args(parser)
    add_device_args(parser)
    dtype = next(action for action in parser._actions if action.dest == 'dtype')
    dtype.choices = ('float32', 'float16', 'int8', 'bfloat16')
    dtype.help = ('float16 needs a GPU (MXNet has no float16 GEMM on CPU); int8 runs on the '
                  'CPU, calibrated (--calib-batches, --calib-mode); bfloat16 runs the '
                  'ONNX export in OpenVINO, on CPUs with bfloat16 instructions')
    return parser


def _set_help(parser, dest, text):
    """Give the flag of ``dest`` the help ``text`` (a shared flag whose default differs here)."""
    next(action for action in parser._actions if action.dest == dest).help = text


_SCORING_DEFAULTS = {'input_size': 224, 'crop_ratio': 0.875}


def output_classes(net, input_size, ctx, dtype='float32'):
    """The number of classes ``net`` scores (its output width for one image)."""
    return net(mx.nd.zeros((1, 3, input_size, input_size), ctx=ctx, dtype=dtype)).shape[1]


def _validation_source(args, classes):
    """The validation data of ``args``, its labels checked against the model's ``classes``."""
    if args.data_dir:
        from ..utils.im2rec import list_image_folder
        found, _ = list_image_folder(args.data_dir)
        if len(found) > classes:
            raise DataError('%s has %d class folders but the model scores %d classes'
                            % (args.data_dir, len(found), classes))
    return data_source(args, 'val', args.batch_size, args.input_size, classes)


def _data_scored(args):
    """What the score counts images of: the .rec file, the image folder, or the embedded
    demo digits."""
    if args.rec_val:
        return args.rec_val
    if args.data_dir:
        return args.data_dir
    return 'demo digits (validation split, embedded)'


def _check_flags(args):
    """Range-check the flags before anything is loaded; ValueError names the flag."""
    check_range('--batch-size', args.batch_size, 1)
    check_range('--input-size', args.input_size, MIN_INPUT_SIZE)
    check_range('--num-data-workers (-j)', args.workers, 1)
    check_range('--crop-ratio', args.crop_ratio, 0, 1, low_open=True)
    check_range('--calib-batches', args.calib_batches, 1)
    if args.epoch is not None:
        check_range('--epoch', args.epoch, 0)
    for flag, path in (('--rec-val', args.rec_val), ('--rec-val-idx', args.rec_val_idx),
                       ('--params', args.params)):
        check_data_path(flag, path)


def _preprocessing(args, typed, record_prefix, convention):
    """Set ``args.convention``, ``args.input_size`` (one side) and ``args.crop_ratio``: typed,
    else from the record beside ``record_prefix`` (if any), else the defaults; print a note
    for each typed value that contradicts the record. Returns the record (or None)."""
    if args.data_shape:
        typed['input_size'] = [int(v) for v in args.data_shape.split(',')[1:]]
    if 'input_size' in typed:
        sizes = typed['input_size']
        if len(sizes) > 2 or len(set(sizes)) != 1:
            raise ValueError('--input-size: octconv-score scores square center crops; give one '
                             'size, got %s' % ' '.join(str(v) for v in sizes))
        typed['input_size'] = sizes[0]
    record = preprocessing.read(record_prefix) if record_prefix else None
    values, notes = preprocessing.for_scoring(
        typed, record, (record_prefix or '') + preprocessing.SUFFIX,
        dict(_SCORING_DEFAULTS, convention=convention))
    for note in notes:
        print('octconv-score: note: %s' % note, file=sys.stderr)
    args.convention, args.input_size, args.crop_ratio = (values['convention'],
                                                         values['input_size'],
                                                         values['crop_ratio'])
    _check_flags(args)
    return record


def _identity_text(row):
    """`` (resnetv2-26, ratio 0.25)`` for a row that says what it scored, else ''."""
    if row.get('network') is None:
        return ''
    name = row['network'] + ('-%d' % row['depth'] if row.get('depth') else '') + \
        (' +SE' if row.get('use_se') else '')
    return ' (%s%s)' % (name, '' if row.get('ratio') is None else ', ratio %g' % row['ratio'])


def _what_was_scored(record, given):
    """``{api, network, depth, ratio, use_se}`` of the scored parameters: from the ``record``
    octconv-train wrote beside them when there is one, else ``given`` (what the flags said,
    None where they said nothing)."""
    return dict((record or {}).get('model') or given)


def _model_flags(typed, recorded):
    """``{api, network, depth, ratio, use_se}`` of a Gluon parameter file: each typed flag,
    else the value octconv-train recorded beside the file (``recorded``), else the
    default (the Gluon API's default model, ratio 0, no SE)."""
    api = typed.get('api', recorded.get('api', 'gluon'))
    return {'api': api,
            'network': typed.get('model', recorded.get('network') or default_model(api)),
            'depth': None, 'ratio': typed.get('ratio', recorded.get('ratio', 0.)),
            'use_se': typed.get('use_se', bool(recorded.get('use_se')))}


def _load_checkpoint(args, typed, ctx):
    """``(net, what the flags say it is, its octconv-train record or None)`` for
    ``--params FILE`` (a Gluon model) or ``--checkpoint PREFIX --epoch N`` (a Module
    checkpoint); sets the preprocessing in ``args``. ValueError names a missing or
    contradicting flag."""
    if args.params:
        if 'api' in typed and args.api == 'symbol':
            raise ValueError('--api %s: --params FILE is a Gluon parameter file (a Module '
                             'checkpoint is --checkpoint PREFIX --epoch N)' % args.api)
        if args.checkpoint or args.epoch is not None:
            raise ValueError('give either --params FILE (Gluon) or --checkpoint PREFIX '
                             '--epoch N (Module), not both')
        record = _preprocessing(args, typed, preprocessing.prefix_of_params(args.params),
                                'gluon')
        model = _model_flags(typed, (record or {}).get('model') or {})
        net = load_gluon_model(model['network'], model['ratio'], args.params, ctx,
                               model['use_se'], model['api'])
        return net, model, record
    if args.checkpoint:
        if args.epoch is None:
            raise ValueError('--checkpoint %s: give the epoch to score with --epoch N'
                             % args.checkpoint)
        if 'api' in typed and args.api != 'symbol':
            raise ValueError('--api %s: --checkpoint PREFIX is a Module checkpoint (a Gluon '
                             'or GluonCV model is --params FILE --model NAME)' % args.api)
        record = _preprocessing(args, typed, args.checkpoint, 'symbol')
        built = not os.path.isfile(args.checkpoint + '-symbol.json')
        network = args.model or default_model('symbol')
        net = load_module_checkpoint(args.checkpoint, args.epoch, ctx, network, args.depth,
                                     args.ratio, args.input_size)
        return net, {'api': 'symbol',
                     'network': network if built else typed.get('model'),
                     'depth': args.depth if built else typed.get('depth'),
                     'ratio': args.ratio if built else typed.get('ratio'),
                     'use_se': None}, record
    if args.model and (os.path.isfile(args.model + '-symbol.json') or args.epoch is not None):
        raise ValueError('--model %s: --model names a network; a Module checkpoint is '
                         '--checkpoint PREFIX --epoch N' % args.model)
    raise ValueError('give --checkpoint PREFIX --epoch N (a Module checkpoint), --params FILE '
                     '--model NAME (a Gluon model) or --table DIR')


def main(argv=None):
    """Score a checkpoint; exit 0 with the result, 2 on bad input (nothing written)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    typed = typed_flags(parser, argv)
    try:
        _check_dtype(args)
        ctx = contexts(args)
        if args.table:
            _preprocessing(args, typed, None, None)
            rows = _score_table(args.table, args, typed, ctx)
        else:
            net, scored, record = _load_checkpoint(args, typed, ctx)
            net, classes, extra = _for_dtype(net, args, ctx)
            if 'classes' in typed and typed['classes'] != classes:
                raise ValueError('--classes %d: the checkpoint scores %d classes'
                                 % (typed['classes'], classes))
            result = score(net, _validation_source(args, classes), ctx, _input_dtype(args),
                           progress=not args.quiet)
            result.update(checkpoint=args.params or args.checkpoint,
                          **_what_was_scored(record, scored), dtype=args.dtype,
                          data=_data_scored(args), **extra)
            result.update(convention=args.convention, input_size=args.input_size,
                          crop_ratio=args.crop_ratio)
            rows = [result]
    except (DataError, CheckpointMismatch, ValueError) as err:
        print('octconv-score: error: %s' % err, file=sys.stderr)
        return 2

    except MXNetError as err:
        print('octconv-score: error: MXNet: %s' % first_line(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('octconv-score: interrupted; nothing written', file=sys.stderr)
        return 130
    machine = dict(cpu_description(), mxnet=mx.__version__)     # INT8 results depend on it
    lines = [json.dumps(dict(row, machine=machine)) for row in rows]
    for row in rows:
        print('%s%s: top-1 %.4f, top-5 %.4f on %d images, %.1f images/s%s'
              % (row.get('file', row.get('checkpoint')), _identity_text(row), row['top1'],
                 row['top5'], row['images'],
                 row['images_per_s'], '' if row.get('published_top1') is None else
                 ' (published %.1f / %.1f)' % (row['published_top1'], row['published_top5'])))
    print('\n'.join(lines))
    if args.json_out:           # appended, through a new file renamed over the old one
        earlier = open(args.json_out).read() if os.path.isfile(args.json_out) else ''
        atomic_write_text(args.json_out, earlier + '\n'.join(lines) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
