"""Which INT8 graph of an octave network OpenVINO runs fastest: the graph ``export_onnx``
writes, against the same network with fewer of its passes.

    .venv/bin/python studies/openvino_int8_graphs/run.py [--out FILE.jsonl]

(with octconv installed with its ``[deploy]`` extra: make test builds .venv so). It builds
octconv's ``resnet50_v1b`` at 224 px, vanilla and at each octave ratio of ``RATIOS``, writes
each octave network in each form of ``FORMS`` as an INT8 ONNX file (``write_onnx``,
calibrated on the same random batches) and times the files in OpenVINO as
``octconv-bench --runtime openvino --dtype int8`` does (``python -m octconv.train.timing``:
one file open at a time, interleaved rounds, 2 threads), at batch 1 and 16. The forms are
exact: every one computes the network's outputs. One JSON line per batch, ratio and form
(the median and the fastest time, their ratios to vanilla's), with the CPU record of
``octconv-bench``, into ``results/openvino-int8-graphs/``; ``docs/generate.py`` makes the
table of ``docs/design.md`` from the kept files.
"""
import json
import os
import sys
import tempfile

from octconv.train.studies import keep_run, run_study, study_parser
from octconv.train.timing import time_in_child
from octconv.utils.onnx_export import INT8_PASSES, int8_graph, write_onnx

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'results',
                       'openvino-int8-graphs')
RATIOS = (0.25, 0.5)
# The passes of export_onnx's INT8 graph (octconv.utils.onnx_export.int8_graph) that each
# form runs, after the crops that change nothing are dropped and the BatchNorms folded.
FORMS = {'export_onnx': INT8_PASSES,
         'pooling kept': ('upsampling first', 'merged'),
         'not merged': ('upsampling first', 'pooling as convolution'),
         'upsampling first only': ('upsampling first',),
         'none': ()}


def _files(folder, batch, size, calibration):
    """The plan's models at ``batch``: vanilla (as export_onnx writes it), then each ratio
    in each form; ``[(ratio, form, path)]``."""
    import mxnet as mx
    from octconv.gluon import get_model
    shape = (batch, 3, size, size)
    files = []
    for ratio, forms in [(0., ('export_onnx',))] + [(r, tuple(FORMS)) for r in RATIOS]:
        net = get_model('resnet50_v1b', ratio=ratio)
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        symbol, params = net.export_graph(data_shape=shape)
        for form in forms:
            path = os.path.join(folder, 'b%d-r%g-%s.onnx' % (batch, ratio, form.replace(' ', '_')))
            write_onnx(*int8_graph(symbol, params, shape, passes=FORMS[form]), shape, path,
                       calibration[batch])
            files.append((ratio, form, path))
    return files


def main(argv=None):
    parser = study_parser(__doc__, RESULTS)
    parser.add_argument('--repeats', type=int, default=30, help='interleaved rounds')
    return run_study(_study, parser.parse_args(argv))


def _study(args):
    """Export, time and keep the study for ``args`` (see the module); 0."""
    import numpy as np
    from octconv.train.machine import describe_machine, machine_line
    from octconv.utils.openvino_model import import_openvino
    size = 224
    machine = describe_machine(args.threads, {'openvino': import_openvino().__version__})
    print('machine: %s' % machine_line(machine), flush=True)
    rng = np.random.default_rng(0)
    calibration = {b: [rng.uniform(-1, 1, (b, 3, size, size)).astype('float32')
                       for _ in range(2)] for b in args.batch_sizes}
    rows = []
    with tempfile.TemporaryDirectory(prefix='octconv-study-') as folder:
        for batch in args.batch_sizes:    # one batch size at a time: fewer files on disk
            files = _files(folder, batch, size, calibration)
            plan = {'runtime': 'openvino', 'dtype': 'int8', 'threads': args.threads,
                    'size': size, 'batch_sizes': [batch], 'warmup': 1,
                    'repeats': args.repeats if batch == 1 else max(5, args.repeats // 3),
                    'inner': 3 if batch == 1 else 1, 'profile': False,
                    'models': [{'label': '%g %s' % (ratio, form), 'ratio': ratio,
                                'files': {str(batch): path}} for ratio, form, path in files]}
            timed = [result['times'][str(batch)] for result in time_in_child(plan, folder)]
            for _, _, path in files:
                os.remove(path)
            vanilla = timed[0]
            for (ratio, form, _), times in zip(files, timed):
                rows.append(dict(
                    study='openvino-int8-graphs', model='resnet50_v1b', input=size,
                    ratio=ratio, form=form, passes=list(FORMS[form]), batch=batch,
                    ms=float(np.median(times)) * 1e3, min_ms=min(times) * 1e3,
                    time_ratio=float(np.median(times) / np.median(vanilla)),
                    min_time_ratio=min(times) / min(vanilla), machine=machine))
                print(json.dumps(rows[-1]), flush=True)
    keep_run(rows, args.out, RESULTS, machine)
    return 0


if __name__ == '__main__':
    sys.exit(main())
