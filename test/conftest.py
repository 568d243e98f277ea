"""Shared test helpers: the checkpoint manifests shipped in test/data, graph inspection,
demo-digit RecordIO files, and the suite's own cache folder."""
import json
import os
import pathlib

import pytest

import octconv  # noqa: F401  (first: its numpy shim lets mxnet 1.9.1 import on numpy 1.26)

DATA = pathlib.Path(__file__).parent / 'data'


def manifests(api):
    """``[(file name, manifest dict)]`` for ``api`` ('symbol' or 'gluon')."""
    return [(path.name, json.loads(path.read_text()))
            for path in sorted(DATA.glob('%s_*.json' % api))]


def ops_of(symbol):
    """The operator names of ``symbol``'s nodes, in graph order ('null' for variables)."""
    return [node['op'] for node in json.loads(symbol.tojson())['nodes']]


def leftovers(marker):
    """Processes (other than this one) whose command line or environment holds ``marker``
    (bytes)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/environ' % pid, 'rb') as env, \
                    open('/proc/%s/cmdline' % pid, 'rb') as cmd:
                if marker in env.read() + cmd.read() and int(pid) != os.getpid():
                    found.append(pid)
        except OSError:
            pass
    return found


# The caches the suite writes, each in its own temporary folder rather than the user's home:
# the demo digits unpacked for runs without data flags, Matplotlib's font cache (curves),
# MXNet's model folder.
CACHES = ('OCTCONV_CACHE', 'MPLCONFIGDIR', 'MXNET_HOME')


@pytest.fixture(scope='session', autouse=True)
def own_cache(tmp_path_factory):
    """:data:`CACHES` in the suite's temporary folders; the variables are restored at the
    end."""
    before = {name: os.environ.get(name) for name in CACHES}
    for name in CACHES:
        os.environ[name] = str(tmp_path_factory.mktemp(name.lower()))
    yield
    for name, value in before.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope='session')
def forked_python(tmp_path_factory):
    """A :class:`forked_python.ForkedPython` for the tests of this worker: new processes
    forked from one that has imported MXNet and octconv; ended with the session."""
    from forked_python import ForkedPython
    runner = ForkedPython(tmp_path_factory.mktemp('forked'))
    yield runner
    runner.close()


@pytest.fixture(scope='session')
def digits60(tmp_path_factory):
    """60 demo digits (6 per class) at 32 px packed as ``<prefix>_train.rec`` and
    ``<prefix>_val.rec`` (a third of each class), with their .idx; the prefix. Read by the
    tests of several files, written by none."""
    return pack_demo_digits(tmp_path_factory.mktemp('digits60'), per_class=6, val_ratio=0.34)


def pack_demo_digits(root, per_class, val_ratio):
    """Pack ``per_class`` demo digits per class, at 32 px, into RecordIO files under
    ``root`` (a pathlib.Path); returns the prefix of ``<prefix>_train.rec`` / ``_val.rec``,
    or of ``<prefix>.rec`` alone when ``val_ratio`` is 0."""
    from octconv.utils import demo_data, im2rec
    demo_data.write_image_folder(str(root / 'img'), per_class=per_class)
    prefix = str(root / 'tiny')
    im2rec.pack(str(root / 'img'), prefix, val_ratio=val_ratio, threads=1)
    return prefix


def small_octave_cnn(strides, data_shape, seed):
    """Five 3x3 convolutions (16-32-32-64-64 channels, ``strides``), each with BatchNorm
    and ReLU, global pooling and 10 classes, octavized at 0.25 for ``data_shape`` and
    initialised (Xavier, MXNet's random ``seed``): a small octave network to quantize."""
    import mxnet as mx
    from mxnet.gluon import nn
    from octconv.gluon import octavize
    mx.random.seed(seed)
    net = nn.HybridSequential()
    for channels, stride in zip((16, 32, 32, 64, 64), strides):
        net.add(nn.Conv2D(channels, 3, strides=stride, padding=1), nn.BatchNorm(),
                nn.Activation('relu'))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    octave = octavize(net, 0.25, data_shape=data_shape)
    octave.initialize(mx.init.Xavier())
    return octave


def small_model(name, **kwargs):
    """octconv's Gluon model ``name``, with the ResNet-152s built at depth 4-4-4-2 units
    (1, 2, 2, 1 blocks) from the same code (deep stem, strides in the last 1x1, the
    big-little stem of v1f): the graph tests check each family's code, not its depth."""
    from octconv.gluon import get_model
    from octconv.gluon.resnet import ResNetV1
    shallow = {'resnet152_v1e': dict(deep_stem=True), 'resnet152_v1f': dict(
        deep_stem=True, big_little=True)}
    if name not in shallow:
        return get_model(name, **kwargs)
    use_se = kwargs.pop('use_se', False)
    return ResNetV1(name, (1, 2, 2, 1), down_pos=2, use_se=use_se, extra_bn=use_se,
                    prefix='R152_', **shallow[name], **kwargs)
