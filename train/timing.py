"""How ``octconv-bench`` times, and its child process for ONNX files.

Candidates are warmed up, then timed in interleaved rounds (:func:`time_rounds`; the
method is described in :mod:`octconv.train.bench`). ONNX files are timed by
``python -m octconv.train.timing PLAN`` (:func:`time_files`), a process that imports
neither MXNet nor anything of octconv that does: this module imports only the standard
library at its top, and numpy, onnxruntime and OpenVINO where they are used.
"""
import argparse
import json
import os
import sys
import time

__all__ = ['Candidate', 'time_rounds', 'OneAtATime', 'time_files', 'time_in_child',
           'PROFILED_RUNS', 'memory_mb', 'peak_rss_reset']


def memory_mb(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MB."""
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


def peak_rss_reset():
    """Reset the peak to the current RSS; returns the current RSS (MB)."""
    try:
        with open('/proc/self/clear_refs', 'w') as handle:
            handle.write('5')
    except OSError:
        pass
    return memory_mb('VmRSS')


class Candidate:
    """One runnable model: a name, a ratio, and callables for inference and training."""

    def __init__(self, label, ratio, infer, train=None):
        self.label, self.ratio, self.infer, self.train = label, ratio, infer, train
        self.times, self.train_times, self.peak = {}, [], 0.
        self.graphs = {}         # batch -> the graph for_inference chose ('merge' auto)
        self.profile = None      # {operator: ms per run} at the first batch size (--profile)

    def release(self):
        """Drop the model (its callables hold it); the timings stay."""
        self.infer = self.train = None


def time_rounds(candidates, args):
    """Warm every candidate up, then time them in interleaved rounds (the method:
    :mod:`octconv.train.bench`); each candidate's ``times`` ({batch: [seconds]}),
    ``train_times`` and ``peak`` (MB) fill in."""
    for cand in candidates:                    # warm-up: graph building, memory planning
        for _ in range(args.warmup):
            for batch in args.batch_sizes:
                cand.infer(batch)
        if cand.train and args.train_batch:
            cand.train()
    for _ in range(args.repeats):               # interleaved rounds
        for cand in candidates:
            resident = peak_rss_reset()
            for batch in args.batch_sizes:
                cand.infer(batch)               # back in the caches after the other models
                for _ in range(args.inner):
                    start = time.perf_counter()
                    cand.infer(batch)
                    cand.times.setdefault(batch, []).append(time.perf_counter() - start)
            if cand.train and args.train_batch:
                start = time.perf_counter()
                cand.train()
                cand.train_times.append(time.perf_counter() - start)
            cand.peak = max(cand.peak, memory_mb('VmHWM') - resident)


PROFILED_RUNS = 10


def openvino_profile(path, x, args):
    """``{node type: ms per run}`` of ``path`` on ``x`` by OpenVINO's performance counters,
    over PROFILED_RUNS runs after two that are left out; a type's name carries the kernel
    it ran (``Convolution brgconv_avx512_amx_1x1_I8``)."""
    from ..utils.openvino_model import import_openvino, openvino_config
    core = import_openvino().Core()
    config = dict(openvino_config(args.threads, 'float32' if args.dtype == 'int8'
                                  else args.dtype), PERF_COUNT='YES')
    request = core.compile_model(core.read_model(path), 'CPU', config).create_infer_request()
    totals = {}
    for run in range(PROFILED_RUNS + 2):
        request.infer({0: x})
        if run < 2:
            continue
        for node in request.profiling_info:
            if node.status == node.Status.EXECUTED:
                key = '%s %s' % (node.node_type, node.exec_type)
                totals[key] = totals.get(key, 0.) + \
                    node.real_time.total_seconds() * 1000. / PROFILED_RUNS
    return totals


def onnxruntime_profile(path, x, args):
    """``{operator type: ms per run}`` of ``path`` on ``x`` by onnxruntime's profiler: its
    kernels' times over PROFILED_RUNS runs, after two (the first runs of a session
    allocate) that are left out."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.splitext(path)[0] + '-profile'
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    for _ in range(PROFILED_RUNS + 2):
        session.run(None, {name: x})
    trace = session.end_profiling()
    with open(trace) as handle:
        events = json.load(handle)
    os.remove(trace)
    runs = sorted(e['ts'] for e in events if e.get('name') == 'model_run')
    totals = {}
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time') and \
                event['ts'] >= runs[2]:
            op = event['args']['op_name']
            totals[op] = totals.get(op, 0.) + event['dur'] / 1000. / PROFILED_RUNS
    return totals


class OneAtATime:
    """Runs ONNX files with at most one open: each is opened for its turn, in every round.

    So the timed model's threads are the only ones, with the runtime's defaults, as
    deployed. With every onnxruntime session open, 2 runs of 5 had the octave models at
    batch 1 20-30% slower (idle sessions' threads spin between operators); with spinning
    turned off, every run had them 5% slower than this (vanilla 1-2%)."""

    def __init__(self, opener):
        self.opener, self.path, self.run = opener, None, None

    def __call__(self, path, x):
        if path != self.path:
            self.path = self.run = None          # the previous session and its threads go
            self.run = self.opener(path)
            for _ in range(2):                   # the first runs allocate
                self.run(x)
            self.path = path
        return self.run(x)


def onnxruntime_opener(args):
    """``open_file(path)``: an onnxruntime session of ``path`` on the CPU with ``args.threads``
    threads, as a callable of one input array."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads

    def open_file(path):
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})
    return open_file


def openvino_opener(args):
    """``open_file(path)``: ``path`` compiled by OpenVINO for the CPU (``args.threads``, the
    precision of ``args.dtype``), as a callable of one input array."""
    from ..utils.openvino_model import import_openvino, openvino_config
    openvino = import_openvino()
    core = openvino.Core()
    # the dtype asked for (an INT8 file's own operators decide its precision), threads
    # pinned to cores, as for a latency-bound deployment
    config = openvino_config(args.threads, 'float32' if args.dtype == 'int8' else args.dtype)

    def open_file(path):
        request = core.compile_model(core.read_model(path), 'CPU', config).create_infer_request()
        return lambda x: request.infer({0: x})
    return open_file


def time_files(plan_path):
    """Time the ONNX files that the plan ``plan_path`` (JSON, written by octconv-bench)
    lists, one file open at a time; write their times (and profiles) to
    ``plan_path + '.times'``. Returns 0."""
    import numpy as np
    with open(plan_path) as handle:
        plan = json.load(handle)
    args = argparse.Namespace(**{k: plan[k] for k in ('threads', 'warmup', 'repeats', 'inner',
                                                       'batch_sizes', 'dtype')}, train_batch=0)
    opener = (openvino_opener if plan['runtime'] == 'openvino' else onnxruntime_opener)(args)
    model_in_turn = OneAtATime(opener)
    size = plan['size']
    inputs = {b: np.random.uniform(size=(b, 3, size, size)).astype('float32')
              for b in args.batch_sizes}
    candidates = []
    for model in plan['models']:
        def infer(batch, files=model['files']):
            model_in_turn(files[str(batch)], inputs[batch])
        candidates.append(Candidate(model['label'], model['ratio'], infer))
    time_rounds(candidates, args)
    if plan.get('profile'):
        profile = (onnxruntime_profile if plan['runtime'] == 'onnxruntime' else
                   openvino_profile)
        for cand, model in zip(candidates, plan['models']):
            batch = args.batch_sizes[0]
            cand.profile = profile(model['files'][str(batch)], inputs[batch], args)
    with open(plan_path + '.times', 'w') as handle:
        json.dump([{'times': c.times, 'profile': c.profile} for c in candidates], handle)
    return 0


def time_in_child(plan, folder):
    """Time the ONNX files of ``plan`` (the JSON :func:`time_files` reads) in a child process,
    ``python -m octconv.train.timing``, which imports no MXNet; the plan is written into
    ``folder``. Returns what the child wrote: per model of the plan, ``{'times': {batch
    (a string): [seconds]}, 'profile': {operator: ms} or None}``."""
    import subprocess
    plan_path = os.path.join(folder, 'plan.json')
    with open(plan_path, 'w') as handle:
        json.dump(plan, handle)
    subprocess.run([sys.executable, '-m', 'octconv.train.timing', plan_path], check=True)
    with open(plan_path + '.times') as handle:
        return json.load(handle)


if __name__ == '__main__':
    sys.exit(time_files(sys.argv[1]))
