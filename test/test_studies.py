"""The oneDNN floor study (studies/onednn_floor) times the network octconv builds: the layers
it reads from the exported graph carry the FLOP counter's multiply-adds, path by path."""
import importlib.util
import pathlib

import pytest

from octconv.gluon import get_model
from octconv.utils.flops import count_block

RUN = pathlib.Path(__file__).resolve().parent.parent / 'studies' / 'onednn_floor' / 'run.py'


@pytest.fixture(scope='module')
def study():
    spec = importlib.util.spec_from_file_location('onednn_floor_run', RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('ratio', [0., 0.25])
def test_the_floor_study_reads_every_convolution_of_the_graph(study, ratio):
    layers = study.convolution_layers(ratio, size=64)
    counted = count_block(get_model('resnet50_v1b', ratio=ratio), (1, 3, 64, 64))
    assert study.convolution_macs(layers) == sum(
        row.macs for row in counted.layers if 'Convolution' in row.ops)
    fields = {layer[0]: layer[1:] for layer in layers}
    # the stem reads the image; the first octave layer splits a high map (alpha_in 0)
    assert fields['R50_conv1_fwd'][:8] == (7, 2, 3, 3, 0, 64, 0, 64)
    first = fields['R50_L1_B0_conv1']
    assert first[3:7] == ((64, 0, 48, 16) if ratio else (64, 0, 64, 0))
