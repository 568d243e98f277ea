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
prepares the file. OpenVINO reads the same file.
"""
import contextlib

from .deploy import fold_batchnorm

__all__ = ['export_onnx', 'prepare_for_onnxruntime', 'onnx_weights_as_constants',
           'import_openvino']

# The opset of the operators MXNet 1.9.1's exporter writes.
EXPORTER_OPSET = 13


def export_onnx(symbol, params, data_shape, path, fold=True):
    """Write ``symbol`` with ``params`` ({name: NDArray}) to the ONNX file ``path``.

    ``data_shape`` is the (N, C, H, W) of the input ``data``; ``fold`` folds the
    BatchNorms first. The file is ready for onnxruntime (:func:`prepare_for_onnxruntime`)
    and OpenVINO. Needs the ``onnx`` package. Returns ``path``.
    """
    import mxnet as mx
    import numpy as np
    if fold:
        symbol, params, _ = fold_batchnorm(symbol, params)
    with _weights_as_raw_bytes():
        mx.onnx.export_model(symbol, dict(params), [tuple(data_shape)], [np.float32], path)
    prepare_for_onnxruntime(path)
    return path


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
