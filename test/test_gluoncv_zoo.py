"""GluonCV's classifiers made octave by name, called as GluonCV's scripts call them (name,
``classes``, ``ctx``, ``pretrained``), at each model's own input size."""
import mxnet as mx
import numpy as np
import pytest
from gluoncv import model_zoo

from octconv.gluon import register_gluoncv
from octconv.gluon.gluoncv_zoo import (NOT_CONVERTED, convertible_classifiers,
                                       gluoncv_classifiers, input_size)

# One model of each family GluonCV has (the paper's families are tested against octconv's
# own networks elsewhere).
FAMILIES = ['alexnet', 'dla34', 'googlenet', 'hrnet_w18_small_v1_c', 'inceptionv3',
            'mobilenetv3_small', 'nasnet_4_1056', 'residualattentionnet56', 'resnest14',
            'resnet18_v2', 'resnet50_v1d', 'se_resnet18_v1', 'shufflenet_v2', 'squeezenet1.1',
            'vgg11_bn', 'xception']


def built_as_gluoncv_scripts_do(name):
    """``oct_<name>`` from GluonCV's zoo with 10 classes, initialised as GluonCV's
    train_imagenet.py does, and its output in training mode (BatchNorm on the batch's
    statistics, as training runs it) for two random images of its own size."""
    register_gluoncv()
    net = model_zoo.get_model('oct_' + name, ctx=mx.cpu(), pretrained=False, classes=10)
    net.initialize(mx.init.MSRAPrelu())
    size = input_size(name)
    with mx.autograd.train_mode():
        out = net(mx.nd.random.uniform(shape=(2, 3, size, size)))
    return net, out[0] if isinstance(out, (list, tuple)) else out     # NASNet: (out, aux)


@pytest.mark.parametrize('name', FAMILIES)
def test_each_family_builds_and_runs_at_its_own_size(name):
    net, out = built_as_gluoncv_scripts_do(name)
    assert out.shape == (2, 10)
    assert np.isfinite(out.asnumpy()).all()
    assert any('_h2l_' in param for param in net.collect_params())      # octave layers


def test_hrnet_takes_classes_although_gluoncvs_own_ignores_it():
    gluoncv_own = model_zoo.get_model('hrnet_w18_small_v1_c', classes=10)
    gluoncv_own.initialize()
    assert gluoncv_own(mx.nd.zeros((1, 3, 224, 224))).shape == (1, 1000)
    _, out = built_as_gluoncv_scripts_do('hrnet_w18_small_v1_c')
    assert out.shape == (2, 10)


def test_models_that_do_not_convert_are_not_offered_and_say_why():
    offered = set(register_gluoncv())
    for name, reason in NOT_CONVERTED.items():
        assert 'oct_' + name not in offered and reason
    assert len(convertible_classifiers()) >= 0.9 * len(gluoncv_classifiers())


@pytest.mark.slow
@pytest.mark.parametrize('name', convertible_classifiers())
def test_every_offered_name_builds_and_runs_at_its_own_size(name):
    _, out = built_as_gluoncv_scripts_do(name)
    assert out.shape == (2, 10)
    assert np.isfinite(out.asnumpy()).all()
