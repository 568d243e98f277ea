"""Where a speed figure holds: the CPU, its vector ISA, the threads, and the runtime's kernels.

oneDNN picks other kernels on other CPUs (AVX2, AVX-512, AMX), and the ratio of an
octave network's time to vanilla's moves a lot with them, so every figure
``octconv-bench`` prints names the machine it was measured on.
"""
import os
import subprocess
import sys

__all__ = ['ISA_FLAGS', 'cpu_description', 'onednn_description', 'describe_machine',
           'machine_line']

# /proc/cpuinfo flags that decide which oneDNN kernels run.
ISA_FLAGS = ('avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16',
             'amx_tile', 'amx_bf16', 'amx_int8')

# One convolution under DNNL_VERBOSE: oneDNN prints its version and the ISA it dispatches to.
_PROBE = ('import octconv, mxnet as mx\n'
          'x = mx.nd.ones((1, 8, 8, 8))\n'
          'mx.nd.Convolution(x, mx.nd.ones((8, 8, 3, 3)), kernel=(3, 3), num_filter=8, '
          'no_bias=True).wait_to_read()\n')


def cpu_description(cpuinfo='/proc/cpuinfo'):
    """``{'vendor', 'model_name', 'family', 'model', 'isa', 'logical_cpus'}`` of this CPU
    (``isa``: the :data:`ISA_FLAGS` it has); fields it cannot read are None."""
    fields, flags = {}, set()
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(':')
                key, value = key.strip(), value.strip()
                if key == 'flags' and not flags:
                    flags = set(value.split())
                elif key in ('vendor_id', 'model name', 'cpu family', 'model'):
                    fields.setdefault(key, value)
    except OSError:
        pass
    return {'vendor': fields.get('vendor_id'), 'model_name': fields.get('model name'),
            'family': fields.get('cpu family'), 'model': fields.get('model'),
            'isa': [flag for flag in ISA_FLAGS if flag in flags],
            'logical_cpus': os.cpu_count()}


def onednn_description(python=sys.executable, timeout=120):
    """``{'onednn', 'onednn_isa'}``: the oneDNN version inside MXNet and the ISA it runs on
    this CPU, read from ``DNNL_VERBOSE`` in a child process; empty if it cannot be read.
    Read once per ``python`` in a process (the child takes seconds, and neither the CPU
    nor that interpreter's MXNet changes while a process runs); an empty answer is asked
    again."""
    if python not in _ONEDNN_READ:
        found = _read_onednn(python, timeout)
        if not found:
            return found
        _ONEDNN_READ[python] = found
    return dict(_ONEDNN_READ[python])


_ONEDNN_READ = {}                # python -> what _read_onednn found


def _read_onednn(python, timeout):
    env = dict(os.environ, DNNL_VERBOSE='1', MKLDNN_VERBOSE='1', OMP_NUM_THREADS='1')
    try:
        done = subprocess.run([python, '-c', _PROBE], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        parts = line.split(',')
        if len(parts) >= 3 and parts[0].endswith('_verbose') and parts[1] == 'info':
            if parts[2].startswith('oneDNN'):
                found['onednn'] = parts[2].split()[1]
            elif parts[2] == 'cpu' and len(parts) > 3 and parts[3].startswith('isa:'):
                found['onednn_isa'] = parts[3][len('isa:'):]
    return found


def describe_machine(threads, runtime_versions=None):
    """The machine of a measurement: :func:`cpu_description`, ``threads`` the runtime uses,
    :func:`onednn_description`, and ``runtime_versions`` ({package: version})."""
    return dict(cpu_description(), threads=threads, **onednn_description(),
                **(runtime_versions or {}))


def machine_line(machine):
    """One line of :func:`describe_machine`'s dict, for a table header."""
    return ('%s %s (family %s model %s), ISA %s; %d threads of %s logical CPUs; oneDNN %s (%s)%s'
            % (machine.get('vendor'), machine.get('model_name'), machine.get('family'),
               machine.get('model'), ' '.join(machine.get('isa') or ['none known']),
               machine['threads'], machine.get('logical_cpus'), machine.get('onednn', '?'),
               machine.get('onednn_isa', 'ISA unknown'),
               ''.join('; %s %s' % (k, v) for k, v in sorted(machine.items())
                       if k in ('mxnet', 'onnxruntime', 'openvino'))))
