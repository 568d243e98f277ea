"""ONNX files for onnxruntime and OpenVINO from MXNet graphs, fixed to run fast.

MXNet 1.9.1's exporter (``mx.onnx.export_model``) writes files that onnxruntime
runs, but slowly: it optimizes graphs only as far as they let it.
:func:`prepare_for_onnxruntime` mends three things, none of which changes an output:

- every weight is listed as a graph input too; as inputs they may be overridden at
  run time, so onnxruntime folds and fuses nothing ("Initializer ... appears in
  graph inputs");
- the model is labelled with the newest opset of the installed ``onnx`` package,
  while the exporter writes opset-13 operators (it has translations for 12 and 13
  only); onnxruntime's NCHWc layout pass takes ``Resize`` up to version 13;
- nearest upsampling is written as ``Resize`` with ``half_pixel`` coordinates and
  ``round_prefer_floor``; for integer scales that picks the same pixels as
  ``asymmetric`` with ``floor``, the form the NCHWc pass runs in its blocked layout.
  Without it every upsampling of an octave graph converts its map out of the
  blocked layout and back.

:func:`export_onnx` folds the BatchNorms first (:func:`~octconv.utils.deploy.fold_batchnorm`:
onnxruntime folds only a BatchNorm right after one convolution), exports and
prepares the file. OpenVINO reads the same file. With ``quantize='int8'`` it writes
onnxruntime's INT8 (QDQ) file of :func:`int8_graph` instead (:func:`quantize_int8`).
:func:`write_onnx` exports and prepares a graph as it is, in float32 or INT8.
"""
import contextlib
import os
import shutil
import tempfile

from .deploy import (_int8_checks, drop_noop_crops, fold_batchnorm, merge_summed_convolutions,
                     pooling_as_convolution, upsampling_first)

__all__ = ['export_onnx', 'write_onnx', 'int8_graph', 'quantize_int8', 'prepare_for_onnxruntime',
           'onnx_weights_as_constants', 'check_int8_export']

# The opset of the operators MXNet 1.9.1's exporter writes.
EXPORTER_OPSET = 13
# The passes of int8_graph, in the order they run.
INT8_PASSES = ('upsampling first', 'merged', 'pooling as convolution')


def export_onnx(symbol, params, data_shape, path, fold=True, quantize=None, calib_data=None,
                calib_mode='naive'):
    """Write ``symbol`` with ``params`` ({name: NDArray}) to the ONNX file ``path``.

    ``data_shape`` is the (N, C, H, W) of the input ``data``; ``fold`` folds the
    BatchNorms first. The file is ready for onnxruntime (:func:`prepare_for_onnxruntime`)
    and OpenVINO. Needs the ``onnx`` package. Returns ``path``.

    ``quantize='int8'`` writes an INT8 file instead (:func:`quantize_int8`), calibrated on
    ``calib_data`` (an iterable of float32 arrays of ``data_shape``) with ``calib_mode``
    'naive' (min and max, the default) or 'entropy'; it needs ``onnxruntime`` too.
    """
    if quantize not in (None, 'int8'):
        raise ValueError("export_onnx: quantize must be None or 'int8', not %r" % (quantize,))
    batches = None
    if quantize:
        batches = _int8_checks(calib_data, data_shape, calib_mode, None, 'export_onnx')
        check_int8_export()
        symbol, params = int8_graph(symbol, params, data_shape, fold)
    elif fold:
        symbol, params, _ = fold_batchnorm(symbol, params)
    return write_onnx(symbol, params, data_shape, path, batches, calib_mode)


def write_onnx(symbol, params, data_shape, path, calib_batches=None, calib_mode='naive'):
    """:func:`export_onnx` without its graph passes: ``symbol`` with ``params`` as they are,
    exported for input ``data`` of ``data_shape`` and prepared
    (:func:`prepare_for_onnxruntime`); with ``calib_batches`` (float32 arrays of
    ``data_shape``), quantized to INT8 on them (:func:`quantize_int8`). The file is
    written atomically. Returns ``path``."""
    import mxnet as mx
    import numpy as np
    with tempfile.TemporaryDirectory(prefix='octconv-onnx-') as folder:
        float32 = os.path.join(folder, 'float32.onnx')
        with _weights_as_raw_bytes():
            mx.onnx.export_model(symbol, dict(params), [tuple(data_shape)], [np.float32],
                                 float32)
        prepare_for_onnxruntime(float32)
        if calib_batches is not None:
            quantize_int8(float32, float32, calib_batches, calib_mode)
        _copy_atomically(float32, path)
    return path


def int8_graph(symbol, params, data_shape, fold=True, passes=INT8_PASSES):
    """``(symbol, params)``: the graph :func:`export_onnx` quantizes, the same outputs in
    float32: crops that change nothing at ``data_shape`` dropped
    (:func:`~octconv.utils.deploy.drop_noop_crops`), BatchNorms folded (``fold``), each
    nearest upsampling that follows a 1x1 convolution with at most a quarter as many
    inputs as outputs moved in front of it
    (:func:`~octconv.utils.deploy.upsampling_first`), summed convolutions merged
    (:func:`~octconv.utils.deploy.merge_summed_convolutions`) and 2x2 average pooling
    as a depthwise convolution (:func:`~octconv.utils.deploy.pooling_as_convolution`).
    onnxruntime's INT8 ``Resize`` and ``QLinearAveragePool`` are slow next to its INT8
    convolutions: these forms run fewer of the first and none of the second. ``passes``
    (names of :data:`INT8_PASSES`; all of them by default) says which of the last three run.
    """
    unknown = set(passes) - set(INT8_PASSES)
    if unknown:
        raise ValueError('int8_graph: unknown passes %s (the passes: %s)'
                         % (sorted(unknown), ', '.join(INT8_PASSES)))
    rewrites = {'upsampling first': lambda s, p: upsampling_first(s, p),
                'merged': lambda s, p: merge_summed_convolutions(s, p, data_shape),
                'pooling as convolution': lambda s, p: pooling_as_convolution(s, p, data_shape)}
    symbol, params, _ = drop_noop_crops(symbol, params, data_shape)
    if fold:
        symbol, params, _ = fold_batchnorm(symbol, params)
    for name in INT8_PASSES:
        if name in passes:
            symbol, params, _ = rewrites[name](symbol, params)
    return symbol, params


def quantize_int8(source, path, batches, calib_mode='naive'):
    """onnxruntime's static quantization of the float32 ONNX file ``source`` into ``path``
    (which may be ``source``): QDQ format, weights INT8 per output channel with 7 bits
    (``reduce_range``: CPUs without VNNI sum pairs of 8-bit products in 16 bits, which
    full-range weights can overflow), activations UINT8 with ranges from ``batches``
    (float32 arrays fed as ``data``) by ``calib_mode`` 'naive' (min and max, the default)
    or 'entropy' (the thresholds of least KL divergence over a histogram of
    :data:`ENTROPY_BINS` bins). Every operator onnxruntime can run in INT8 is quantized."""
    quantization = _import_quantization()

    class Batches(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {'data': batch}
    method = {'naive': quantization.CalibrationMethod.MinMax,
              'entropy': quantization.CalibrationMethod.Entropy}[calib_mode]
    with tempfile.TemporaryDirectory(prefix='octconv-quantize-') as folder, \
            _entropy_histogram(method == quantization.CalibrationMethod.Entropy):
        target = os.path.join(folder, 'int8.onnx')
        with _quiet_onnxruntime():
            quantization.quantize_static(
                source, target, Batches(), quant_format=quantization.QuantFormat.QDQ,
                per_channel=True, reduce_range=True, activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8, calibrate_method=method)
        _copy_atomically(target, path)
    return path


def _copy_atomically(source, path):
    """Copy ``source`` to ``path`` through a temporary file beside ``path``: a reader of
    ``path`` sees the old file or the whole new one, never a part."""
    partial = '%s.partial-%d' % (path, os.getpid())
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@contextlib.contextmanager
def _quiet_onnxruntime():
    """For the duration, onnxruntime logs errors only (its quantizer's sessions warn
    about every initializer they drop) and Python's root logger warnings only from
    level ERROR (the quantizer's advice to pre-process the file first). Afterwards
    onnxruntime logs from its default level, warnings (it has no getter for the level)."""
    import logging
    import onnxruntime
    root = logging.getLogger()
    level = root.level
    onnxruntime.set_default_logger_severity(3)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        onnxruntime.set_default_logger_severity(2)


def check_int8_export():
    """Raise RuntimeError naming what is missing unless INT8 ONNX files can be made here
    (onnxruntime's quantization imports)."""
    _import_quantization()


def _import_quantization():
    try:
        from onnxruntime import quantization
    except ImportError as err:
        raise RuntimeError('INT8 ONNX files are made by onnxruntime\'s quantization, and '
                           'onnxruntime cannot be imported here (%s): pip install '
                           '"octconv[onnx]"' % err) from None
    return quantization


# The histogram bins of the entropy calibration (onnxruntime's default, 128, equals its
# number of quantized bins: the one threshold it then tries is the maximum, min/max's).
ENTROPY_BINS = 512


@contextlib.contextmanager
def _entropy_histogram(active):
    """For the duration, onnxruntime's ``quantize_static`` builds its entropy calibrator with
    :data:`ENTROPY_BINS` histogram bins and 128 quantized ones (it passes no such option
    through). Restored on exit; nothing changes unless ``active``."""
    import importlib
    module = importlib.import_module('onnxruntime.quantization.quantize')
    original = module.create_calibrator
    if not active:
        yield
        return

    def create_calibrator(*args, **kwargs):
        kwargs['extra_options'] = dict(kwargs.get('extra_options') or {},
                                       num_bins=ENTROPY_BINS, num_quantized_bins=128)
        return original(*args, **kwargs)
    module.create_calibrator = create_calibrator
    try:
        yield
    finally:
        module.create_calibrator = original


@contextlib.contextmanager
def _weights_as_raw_bytes():
    """For the duration, MXNet's exporter writes each weight as the raw bytes of its array
    (``numpy_helper.from_array``) instead of through a Python list of its values, the same
    tensor in the file 5-10x faster for large weights (VGG-16: 25 s to 4 s). Restored on
    exit."""
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    originals = {version: ops['null'] for version, ops in MXNetGraph.registry_.items()
                 if 'null' in ops}

    def convert(original):
        def weights_and_inputs(node, **kwargs):
            if kwargs['is_input']:
                return original(node, **kwargs)
            name = node['name']
            array = kwargs['weights'][name]
            kwargs['initializer'].append(onnx.numpy_helper.from_array(array, name))
            info = onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
            return [info], (array.dtype,)
        return weights_and_inputs
    for version, original in originals.items():
        MXNetGraph.registry_[version]['null'] = convert(original)
    try:
        yield
    finally:
        for version, original in originals.items():
            MXNetGraph.registry_[version]['null'] = original


def prepare_for_onnxruntime(path):
    """Rewrite an ONNX file from MXNet's exporter in place, for onnxruntime (see above).

    Returns the number of ``Resize`` operators changed to ``asymmetric`` / ``floor``.
    """
    import onnx
    model = onnx.load(path)
    _weights_as_constants(model)
    for opset in model.opset_import:
        if opset.domain in ('', 'ai.onnx'):
            opset.version = min(opset.version, EXPORTER_OPSET)
    initializers = {init.name: init for init in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != 'Resize':
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scales = initializers.get(node.input[2]) if len(node.input) == 3 else None
        scales = None if scales is None else onnx.numpy_helper.to_array(scales)
        if attrs.get('mode', b'nearest') != b'nearest' \
                or attrs.get('coordinate_transformation_mode', b'half_pixel') != b'half_pixel' \
                or attrs.get('nearest_mode', b'round_prefer_floor') != b'round_prefer_floor' \
                or scales is None or (scales != scales.round()).any() or (scales < 1).any():
            continue
        for attr in [a for a in node.attribute
                     if a.name in ('coordinate_transformation_mode', 'nearest_mode')]:
            node.attribute.remove(attr)
        node.attribute.extend([
            onnx.helper.make_attribute('coordinate_transformation_mode', 'asymmetric'),
            onnx.helper.make_attribute('nearest_mode', 'floor')])
        changed += 1
    onnx.save(model, path)
    return changed


def onnx_weights_as_constants(path):
    """Only the first fix of :func:`prepare_for_onnxruntime`: weights not graph inputs."""
    import onnx
    model = onnx.load(path)
    _weights_as_constants(model)
    onnx.save(model, path)


def _weights_as_constants(model):
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
