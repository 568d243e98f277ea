"""INT8 and bfloat16 models of a trained octave network: top-1 within a point of float32,
in MXNet (``for_inference(dtype='int8')``), in onnxruntime (``export_onnx(quantize='int8')``)
and in OpenVINO (bfloat16). ``octconv-score --dtype int8`` is run on trained checkpoints by
test_recipes (a Module checkpoint) and test_octavize (a converted GluonCV model)."""
import mxnet as mx
import numpy as np
import pytest

from conftest import small_octave_cnn
from octconv.train import score
from octconv.utils import demo_data
from octconv.utils.deploy import for_inference
from octconv.utils.onnx_export import export_onnx
from octconv.utils.openvino_model import OpenVINOBlock, import_openvino

BATCH = 40


@pytest.fixture(scope='module')
def trained():
    """``(symbol, params, val images, val labels, calibration batches)``: a small CNN
    octavized at ratio 0.25, trained 4 epochs on 1437 demo digits (32 px), and the 360
    digits it did not see."""
    images, labels = demo_data.load_digits()
    x = np.kron(images / 255., np.ones((4, 4)))[:, None].repeat(3, axis=1)
    x = ((x - 0.3) / 0.4).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(x))
    train, val = order[:1437], order[1437:]
    octave = small_octave_cnn((1, 2, 1, 2, 1), (BATCH, 3, 32, 32), seed=0)
    octave.hybridize()
    trainer = mx.gluon.Trainer(octave.collect_params(), 'adam', {'learning_rate': 3e-3})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for epoch in range(4):
        for start in range(0, len(train) - BATCH + 1, BATCH):
            rows = train[np.random.RandomState(epoch).permutation(len(train))][start:start + BATCH]
            with mx.autograd.record():
                loss = loss_fn(octave(mx.nd.array(x[rows])), mx.nd.array(labels[rows]))
            loss.backward()
            trainer.step(BATCH)
    params = {name: p.data() for name, p in octave.collect_params().items()}
    calibration = [x[train[i:i + BATCH]] for i in range(0, 4 * BATCH, BATCH)]
    return octave(mx.sym.var('data')), params, x[val], labels[val], calibration


def _top1(model, images, labels):
    """Top-1 of ``model`` (numpy batch of BATCH -> numpy logits) over ``images``."""
    hits = sum(int((model(images[i:i + BATCH]).argmax(1) == labels[i:i + BATCH]).sum())
               for i in range(0, len(images), BATCH))
    return hits / len(images)


def test_int8_keeps_top1_within_a_point_in_mxnet_and_onnxruntime(trained, tmp_path):
    import onnxruntime as ort
    symbol, params, images, labels, calibration = trained
    shape = (BATCH, 3, 32, 32)
    float32 = for_inference(symbol, params, shape, merge=False)
    path = export_onnx(symbol, params, shape, str(tmp_path / 'int8.onnx'), quantize='int8',
                       calib_data=calibration)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    models = {'onnxruntime int8': lambda b: session.run(None, {'data': b})[0]}
    for merge in (False, True):        # each graph for_inference may pick, not the fastest
        int8 = for_inference(symbol, params, shape, dtype='int8', calib_data=calibration,
                             merge=merge)
        models['mxnet int8 merge=%s' % merge] = \
            lambda b, int8=int8: int8(mx.nd.array(b)).asnumpy()
    top1 = {name: _top1(model, images, labels) for name, model in models.items()}
    top1['float32'] = _top1(lambda b: float32(mx.nd.array(b)).asnumpy(), images, labels)
    assert top1['float32'] > 0.9, top1                           # it learned
    assert set(top1) == {'float32', 'onnxruntime int8', 'mxnet int8 merge=False',
                         'mxnet int8 merge=True'}, top1
    point = 0.01 + 1e-9
    assert all(abs(value - top1['float32']) <= point for value in top1.values()), top1


def _calibrated_ranges(block):
    """The ``(min, max)`` thresholds MXNet's quantization calibrated, node by node."""
    import json
    nodes = json.loads(block(mx.sym.var('data')).tojson())['nodes']
    return [(node['name'], float(node['attrs']['min_calib_range']),
             float(node['attrs']['max_calib_range'])) for node in nodes
            if 'min_calib_range' in node.get('attrs', {})]


def test_int8_calibrates_naive_unless_told(trained):
    """for_inference (and octconv-score, which calls it) calibrates by min and max unless
    told, as GluonCV does."""
    symbol, params, _, _, calibration = trained
    shape = (BATCH, 3, 32, 32)
    ranges = {mode: _calibrated_ranges(for_inference(
        symbol, params, shape, dtype='int8', calib_data=calibration[:2], merge=False,
        **({} if mode == 'default' else {'calib_mode': mode})))
        for mode in ('default', 'entropy', 'naive')}
    assert ranges['default'] and ranges['default'] == ranges['naive'] != ranges['entropy']
    flags = score.build_parser().parse_args(['--dtype', 'int8'])
    assert (flags.calib_mode, flags.calib_batches) == ('naive', 5)


@pytest.mark.parametrize('flags, message', [
    (['--dtype', 'int8', '--gpus', '0'], '--dtype int8 runs on the CPU'),
    (['--dtype', 'int8', '--calib-batches', '0'], '--calib-batches'),
])
def test_int8_scoring_refuses_what_it_cannot_run(flags, message, tmp_path, capsys):
    assert score.main(['--params', str(tmp_path / 'absent.params')] + flags) == 2
    assert message in capsys.readouterr().err


def test_int8_without_a_runtime_for_it_is_exit_2_naming_it(tmp_path, capsys, monkeypatch):
    import sys
    import onnxruntime
    from octconv.train import bench

    class NoOneDNN:
        def is_enabled(self, feature):
            return feature != 'MKLDNN'
    monkeypatch.setattr(mx.runtime, 'Features', NoOneDNN)
    assert score.main(['--params', str(tmp_path / 'absent.params'), '--dtype', 'int8']) == 2
    assert 'this MXNet build has no oneDNN' in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        bench.main(['--api', 'gluon', '--dtype', 'int8'])
    assert stopped.value.code == 2 and 'no oneDNN' in capsys.readouterr().err
    monkeypatch.delattr(onnxruntime, 'quantization', raising=False)
    monkeypatch.setitem(sys.modules, 'onnxruntime.quantization', None)   # import fails
    with pytest.raises(SystemExit) as stopped:
        bench.main(['--api', 'gluon', '--dtype', 'int8', '--runtime', 'onnxruntime'])
    assert stopped.value.code == 2
    assert "onnxruntime's quantization" in capsys.readouterr().err


def _has_bfloat16():
    return 'BF16' in import_openvino().Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def test_bfloat16_keeps_top1_within_a_point_in_openvino(trained, tmp_path):
    if not _has_bfloat16():
        pytest.skip('this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX): OpenVINO '
                    'would run float32 (the refusal is tested below)')
    symbol, params, images, labels, _ = trained
    shape = (BATCH, 3, 32, 32)
    path = export_onnx(symbol, params, shape, str(tmp_path / 'float32.onnx'))
    float32 = for_inference(symbol, params, shape, merge=False)
    bfloat16 = OpenVINOBlock(path, 'bfloat16')
    top1 = {dtype: _top1(lambda b: model(mx.nd.array(b)).asnumpy(), images, labels)
            for dtype, model in (('float32', float32), ('bfloat16', bfloat16))}
    assert top1['float32'] > 0.9 and abs(top1['bfloat16'] - top1['float32']) <= 0.01 + 1e-9, \
        top1
    # bfloat16 rounds: the logits are close to float32's, not equal
    x = mx.nd.array(images[:BATCH])
    got, want = bfloat16(x).asnumpy(), float32(x).asnumpy()
    assert 0 < np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_bfloat16_on_a_cpu_without_it_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    openvino = import_openvino()
    monkeypatch.setattr(openvino.Core, 'get_property', lambda self, device, name: ['FP32',
                                                                                   'INT8'])
    with pytest.raises(RuntimeError, match='this CPU has no bfloat16 instructions'):
        OpenVINOBlock(str(tmp_path / 'absent.onnx'), 'bfloat16')
    assert score.main(['--params', str(tmp_path / 'absent.params'), '--dtype',
                       'bfloat16']) == 2
    assert '--dtype bfloat16: this CPU has no bfloat16' in capsys.readouterr().err
