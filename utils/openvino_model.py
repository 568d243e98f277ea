"""Models run by OpenVINO: an ONNX file of :func:`~octconv.utils.onnx_export.export_onnx`
compiled for a precision, and called like a Gluon block.

``float32`` runs as MXNet computes. ``bfloat16`` runs the same file with OpenVINO's
``INFERENCE_PRECISION_HINT`` ``bf16``: convolutions in bfloat16 with float32 sums, on
CPUs that have bfloat16 instructions (AVX-512 BF16: AMD Zen 4 and later, Intel Cooper
Lake; AMX: Intel Sapphire Rapids and later). Elsewhere OpenVINO would fall back to
float32 without a word: :func:`check_bfloat16` refuses instead.
"""
__all__ = ['PRECISIONS', 'import_openvino', 'openvino_config', 'check_bfloat16', 'OpenVINOBlock']

# octconv's dtype names and OpenVINO's precision hints.
PRECISIONS = {'float32': 'f32', 'bfloat16': 'bf16'}


def import_openvino():
    """The ``openvino`` module, imported with OpenVINO's telemetry declined for this process.

    OpenVINO sends telemetry at import unless the user opted out, from a worker thread
    that forks a process; a fork from a thread while MXNet's engine runs aborts the
    whole process ("Fatal Python error: Aborted"). The consent check is answered
    "declined" here, in this process only; nothing is written to the user's files.
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:             # an OpenVINO without its telemetry package
        pass
    else:
        OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    import openvino
    return openvino


def openvino_config(threads=None, dtype='float32'):
    """The CPU plugin's configuration: ``dtype`` as the inference precision (see
    :data:`PRECISIONS`; float32 is asked for explicitly, since OpenVINO picks bfloat16 by
    itself on CPUs that have it), latency-bound, threads pinned to cores."""
    if dtype not in PRECISIONS:
        raise ValueError('OpenVINO runs %s, not %r' % (' or '.join(PRECISIONS), dtype))
    config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': PRECISIONS[dtype],
              'ENABLE_CPU_PINNING': 'YES'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = str(threads)
    return config


def check_bfloat16():
    """Raise RuntimeError unless OpenVINO runs bfloat16 natively on this CPU (its
    ``OPTIMIZATION_CAPABILITIES`` list ``BF16``), naming what it has instead."""
    capabilities = import_openvino().Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    if 'BF16' not in capabilities:
        raise RuntimeError('this CPU has no bfloat16 instructions (OpenVINO runs %s here); '
                           'bfloat16 needs AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake) or AMX '
                           '(Intel Sapphire Rapids and later)' % ', '.join(capabilities))


class OpenVINOBlock:
    """The ONNX file ``path`` compiled by OpenVINO for the CPU in ``dtype``, any batch size:
    ``block(x)`` takes an NDArray (N, C, H, W) of float32 and returns its first output as
    a float32 NDArray, as a Gluon block would."""

    def __init__(self, path, dtype='float32', threads=None):
        if dtype == 'bfloat16':
            check_bfloat16()
        openvino = import_openvino()
        core = openvino.Core()
        model = core.read_model(path)
        shape = model.input(0).get_partial_shape()
        shape[0] = -1                              # any batch: a short last batch runs too
        model.reshape({model.input(0): shape})
        self.dtype = dtype
        self.request = core.compile_model(model, 'CPU', openvino_config(threads, dtype)) \
            .create_infer_request()

    def __call__(self, x):
        import mxnet as mx
        result = self.request.infer({0: x.asnumpy().astype('float32', copy=False)})
        return mx.nd.array(next(iter(result.values())), ctx=x.context)
