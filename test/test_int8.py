"""INT8 models of a trained octave network: top-1 within a point of float32, in MXNet
(``for_inference(dtype='int8')``) and in onnxruntime (``export_onnx(quantize='int8')``).
``octconv-score --dtype int8`` is run on trained checkpoints by test_recipes (a Module
checkpoint) and test_octavize (a converted GluonCV model)."""
import mxnet as mx
import numpy as np
import pytest

from conftest import small_octave_cnn
from octconv.train import score
from octconv.utils import demo_data
from octconv.utils.deploy import for_inference
from octconv.utils.onnx_export import export_onnx

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
    int8 = for_inference(symbol, params, shape, dtype='int8', calib_data=calibration)
    path = export_onnx(symbol, params, shape, str(tmp_path / 'int8.onnx'), quantize='int8',
                       calib_data=calibration)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    top1 = {'float32': _top1(lambda b: float32(mx.nd.array(b)).asnumpy(), images, labels),
            'mxnet int8': _top1(lambda b: int8(mx.nd.array(b)).asnumpy(), images, labels),
            'onnxruntime int8': _top1(lambda b: session.run(None, {'data': b})[0], images,
                                      labels)}
    assert top1['float32'] > 0.9, top1                           # it learned
    point = 0.01 + 1e-9
    assert abs(top1['mxnet int8'] - top1['float32']) <= point, top1
    assert abs(top1['onnxruntime int8'] - top1['float32']) <= point, top1


def test_int8_scoring_calibrates_by_entropy_unless_told():
    """Naive calibration loses points on the demo model that entropy keeps (docs)."""
    flags = score.build_parser().parse_args(['--dtype', 'int8'])
    assert (flags.calib_mode, flags.calib_batches) == ('entropy', 5)


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
