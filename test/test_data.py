"""RecordIO packing and checking, both iterators, the demo data, and score.py."""
import json
import os
import struct

import cv2
import mxnet as mx
import numpy as np
import pytest

from octconv.gluon import get_model
from octconv.train import evaluate, score
from octconv.utils import data, demo_data, im2rec
from octconv.utils.recordio_check import DataError, check_recordio

COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]     # BGR: red, green, blue classes


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """root/<class>/ with 7 constant-colour 40x56 images per class (21 images)."""
    root = tmp_path_factory.mktemp('tree')
    for label, colour in enumerate(COLOURS):
        folder = root / ('class%d' % label)
        folder.mkdir()
        for i in range(7):
            image = np.zeros((40, 56, 3), np.uint8) + np.array(colour, np.uint8)
            cv2.imwrite(str(folder / ('%d.png' % i)), image)
    return str(root)


@pytest.fixture(scope='module')
def packed(tree, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp('rec') / 'set')
    assert im2rec.main([tree, prefix, '--val-ratio', '0.3', '--threads', '2']) == 0
    return prefix


def test_packing_writes_lst_rec_idx_and_a_stratified_split(packed):
    for split, count in (('train', 15), ('val', 6)):
        for ext in ('.lst', '.rec', '.idx'):
            assert os.path.isfile('%s_%s%s' % (packed, split, ext))
        info = check_recordio(packed + '_%s.rec' % split, packed + '_%s.idx' % split,
                              num_classes=3, decode=True)
        assert info.count == count and info.labels == {0, 1, 2}
    assert open(packed + '_classes.txt').read().split() == ['class0', 'class1', 'class2']


@pytest.mark.parametrize('convention', ['gluon', 'symbol'])
def test_validation_iterator_normalises_constant_colours(packed, convention):
    it = data.val_iter(packed + '_val.rec', packed + '_val.idx', batch_size=4, input_size=32,
                       convention=convention)
    norm = data.NORMALIZATIONS[convention]
    seen = 0
    for x, y, valid in data.batches(it):
        assert x.shape[1:] == (3, 32, 32)
        for image, label in zip(x.asnumpy(), y.asnumpy().astype(int)):
            rgb = np.array(COLOURS[label][::-1], float)
            want = (rgb - np.array(norm.mean)) / np.array(norm.std)
            np.testing.assert_allclose(image.mean(axis=(1, 2)), want, atol=0.02)
            assert image.std(axis=(1, 2)).max() < 0.02
        seen += valid
    assert seen == 6          # 6 images, batch 4: the padded rows are dropped


def test_training_iterator_shapes_labels_and_parts(packed):
    parts = []
    for part in range(2):
        it = data.train_iter(packed + '_train.rec', packed + '_train.idx', batch_size=4,
                             input_size=24, num_parts=2, part_index=part, seed=1)
        x, y, _ = next(data.batches(it))
        assert x.shape == (4, 3, 24, 24) and set(y.asnumpy().astype(int)) <= {0, 1, 2}
        parts.append(it.num_images)
    assert parts == [7, 7]


def test_center_crop_geometry(tmp_path):
    root = tmp_path / 'geo'
    (root / 'a').mkdir(parents=True)
    image = np.zeros((64, 96, 3), np.uint8)
    image[16:48, 32:64] = 255                        # a centred 32x32 white square
    cv2.imwrite(str(root / 'a' / 'x.png'), image)
    prefix = str(tmp_path / 'geo')
    im2rec.pack(str(root), prefix, val_ratio=0)
    it = data.val_iter(prefix + '.rec', prefix + '.idx', batch_size=1, input_size=28,
                       crop_ratio=0.875)
    x = next(data.batches(it))[0].asnumpy()[0, 0]
    # shorter side 64 -> 32 (x0.5): square at rows 8..24, cols 16..32; crop 28 at (2, 10)
    bright = np.argwhere(x > 0)
    assert np.allclose(bright.mean(axis=0), (13.5, 13.5), atol=0.6)
    assert 14 <= bright[:, 0].max() - bright[:, 0].min() + 1 <= 18
    loader = data.image_folder_loader(str(root), 1, train=False, input_size=28)
    y = next(data.batches(loader))[0].asnumpy()[0, 0]
    assert np.allclose(np.argwhere(y > 0).mean(axis=0), (13.5, 13.5), atol=0.6)


def test_image_folder_loaders(tree):
    train = data.image_folder_loader(tree, 5, train=True, input_size=24)
    x, y, valid = next(data.batches(train))
    assert x.shape == (5, 3, 24, 24) and valid == 5
    val = data.image_folder_loader(tree, 8, train=False, input_size=24)
    assert sum(valid for _, _, valid in data.batches(val)) == 21


def test_score_counts_every_image_once_and_matches_numpy(packed):
    # 10 outputs for the 3 labels, so that top-5 can miss
    net = get_model('mobilenet_v1_075', ratio=0.375, classes=10)
    net.initialize(mx.init.Xavier(magnitude=3))
    source = data.val_iter(packed + '_val.rec', None, batch_size=4, input_size=32)
    result = evaluate.score(net, source, progress=False)
    assert result['images'] == 6
    one_by_one = data.val_iter(packed + '_val.rec', None, batch_size=1, input_size=32)
    ranks = [int((net(x).asnumpy()[0] > net(x).asnumpy()[0][int(y.asscalar())]).sum())
             for x, y, _ in data.batches(one_by_one)]       # classes scored above the label
    assert len(ranks) == 6
    assert result['top1'] == pytest.approx(np.mean([r == 0 for r in ranks]))
    assert result['top5'] == pytest.approx(np.mean([r < 5 for r in ranks]))


def test_topk_against_hand_values():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5]])
    assert evaluate.topk_correct(logits, np.array([1, 2, 0]), k=2) == (1, 2)


def test_score_cli_with_a_gluon_checkpoint(packed, tmp_path, capsys):
    net = get_model('resnet50_v1b', ratio=0.25, classes=3)
    net.initialize()
    params = str(tmp_path / 'r50.params')
    net.save_parameters(params)
    out = str(tmp_path / 'result.jsonl')
    assert score.main(['--model', 'resnet50_v1b', '--ratio', '0.25', '--params', params,
                       '--rec-val', packed + '_val.rec', '--input-size', '32',
                       '--batch-size', '4', '--quiet', '--json-out', out]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line['images'], line['api'], line['network'], line['ratio'], line['checkpoint']) == (
        6, 'gluon', 'resnet50_v1b', 0.25, params)
    assert json.loads(open(out).read()) == line


def test_score_cli_with_a_module_checkpoint(packed, tmp_path, capsys):
    import octconv.symbol as S
    symbol = S.get_symbol('resnetv2', 26, num_classes=3, ratio=0.25)
    mod = mx.mod.Module(symbol)
    mod.bind(data_shapes=[('data', (1, 3, 32, 32))], label_shapes=[('softmax_label', (1,))])
    mod.init_params(mx.init.Xavier())
    prefix = str(tmp_path / 'a02_resnet-26')
    mod.save_checkpoint(prefix, 3)
    args = ['--checkpoint', prefix, '--epoch', '3', '--rec-val', packed + '_val.rec',
            '--input-size', '32', '--batch-size', '4', '--quiet']
    assert score.main(args) == 0
    with_json = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    os.remove(prefix + '-symbol.json')          # only the parameters: build the symbol
    assert score.main(args + ['--network', 'resnetv2', '--depth', '26', '--ratio', '0.25']) == 0
    built = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert built['top1'] == with_json['top1'] and built['images'] == 6
    assert (built['network'], built['depth'], built['ratio']) == ('resnetv2', 26, 0.25)
    assert score.main(args + ['--network', 'resnetv2', '--depth', '26', '--ratio', '0.5']) == 2
    assert 'has shape' in capsys.readouterr().err
    assert score.main(args + ['--depth', '26', '--ratio', '0.25', '--classes', '10']) == 2
    assert '--classes 10: the checkpoint scores 3 classes' in capsys.readouterr().err


@pytest.mark.parametrize('flags, message', [
    (['--model', 'PREFIX', '--epoch', '3'], '--model PREFIX: --model names a network; a Module '
                                            'checkpoint is --checkpoint PREFIX --epoch N'),
    (['--checkpoint', 'PREFIX'], '--checkpoint PREFIX: give the epoch to score with --epoch N'),
    (['--checkpoint', 'PREFIX', '--epoch', '3', '--api', 'gluon'], '--api gluon: --checkpoint'),
    (['--params', 'FILE', '--api', 'symbol'], '--api symbol: --params FILE is a Gluon'),
    (['--params', 'FILE', '--checkpoint', 'PREFIX', '--epoch', '1'], 'not both'),
    ([], 'give --checkpoint PREFIX --epoch N'),
])
def test_score_cli_names_the_checkpoint_flag_that_is_missing_or_contradicts(
        flags, message, tmp_path, monkeypatch, capsys):
    (tmp_path / 'FILE').write_bytes(b'')
    monkeypatch.chdir(tmp_path)
    assert score.main(flags + ['--quiet']) == 2
    assert message in capsys.readouterr().err


def test_released_file_names_resolve_to_their_recipes():
    def model(filename):
        settings = score.released_file_recipe(filename).settings
        return tuple(settings[k].value for k in ('api', 'model', 'depth', 'ratio', 'use_se'))
    assert model('a03_resnet-50_alpha-0.250.tar') == ('symbol', 'resnetv2', 50, 0.25, False)
    assert model('a04_resnext-50_32x4d_alpha-0.500.tar') == (
        'symbol', 'resnextv2_32x4d', 50, 0.5, False)
    assert model('a05_se-resnet-50_alpha-0.250.tar') == ('symbol', 'seresnetv2', 50, 0.25, False)
    assert model('se-resnet152_v1e_alpha-0.125.params') == (
        'gluon', 'resnet152_v1e', None, 0.125, True)
    for other in ('notes.txt', 'a03_resnet-50_alpha-0.250.params', 'a03_resnet-50_alpha-0.3.tar',
                  'a05_se-resnet-50_alpha-0.000.tar'):        # a baseline: figures only
        assert score.released_file_recipe(other) is None


def _copy(src, dst, transform=lambda b: b):
    with open(src, 'rb') as f:
        content = f.read()
    with open(dst, 'wb') as f:
        f.write(transform(content))
    return dst


def test_bad_files_raise_errors_instead_of_crashing(packed, tmp_path):
    rec, idx = packed + '_val.rec', packed + '_val.idx'
    with pytest.raises(DataError, match=r'missing\.idx: \.idx file not found'):
        data.val_iter(rec, str(tmp_path / 'missing.idx'), batch_size=2, input_size=32)
    truncated = _copy(rec, str(tmp_path / 't.rec'), lambda b: b[:len(b) - 100])
    with pytest.raises(DataError, match=r't\.rec, record 5 at byte \d+: .*truncated file'):
        check_recordio(truncated)
    bad_magic = _copy(rec, str(tmp_path / 'm.rec'), lambda b: b'\x00\x00\x00\x00' + b[4:])
    with pytest.raises(DataError, match=r'm\.rec, record 0 at byte 0: wrong magic number'):
        data.val_iter(bad_magic, None, batch_size=2, input_size=32)
    with pytest.raises(DataError, match=r'label [12] is not a class index in \[0, 1\)'):
        check_recordio(rec, idx, num_classes=1)
    # a payload that is no image at all (MXNet's iterator dies of SIGFPE on it): refused
    # by the fast scan; a JPEG signature over broken bytes only by decoding
    for name, payload in (('text', b'not a jpeg' * 9), ('broken', b'\xff\xd8\xff' + b'x' * 90),
                          ('bmp', b'BM' + b'\x00' * 60)):
        writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / (name + '.idx')),
                                               str(tmp_path / (name + '.rec')), 'w')
        writer.write_idx(0, mx.recordio.pack(mx.recordio.IRHeader(0, 0., 0, 0), payload))
        writer.close()
    text, broken = str(tmp_path / 'text'), str(tmp_path / 'broken')
    with pytest.raises(DataError, match=r'text\.rec, record 0 \(key 0\) at byte 0: the payload is '
                                        r'not an encoded image'):
        check_recordio(text + '.rec', text + '.idx')
    with pytest.raises(DataError, match=r'broken\.rec, record 0 \(key 0\) at byte 0: the JPEG is '
                                        r'cut off inside its header'):
        check_recordio(broken + '.rec', broken + '.idx')
    bmp = str(tmp_path / 'bmp')
    check_recordio(bmp + '.rec', bmp + '.idx')                      # the fast scan passes
    with pytest.raises(DataError, match=r'bmp\.rec, record 0 \(key 0\) at byte 0: .*cannot be '
                                        r'decoded'):
        check_recordio(bmp + '.rec', bmp + '.idx', decode=True)
    with open(str(tmp_path / 'idx_bad.idx'), 'w') as f:
        f.write('0\t3\n')
    with pytest.raises(DataError, match='not the start of a record'):
        check_recordio(rec, str(tmp_path / 'idx_bad.idx'))


def test_score_cli_refuses_bad_data_and_writes_nothing(packed, tmp_path, capsys):
    net = get_model('mobilenet_v1_075', ratio=0.375, classes=3)
    net.initialize()
    params = str(tmp_path / 'm.params')
    net.save_parameters(params)
    truncated = _copy(packed + '_val.rec', str(tmp_path / 'v.rec'), lambda b: b[:-50])
    out = tmp_path / 'result.jsonl'
    assert score.main(['--model', 'mobilenet_v1_075', '--ratio', '0.375', '--params', params,
                       '--rec-val', truncated, '--json-out', str(out), '--quiet']) == 2
    assert 'v.rec, record 5' in capsys.readouterr().err and not out.exists()


def test_empty_folders_are_errors(tmp_path):
    with pytest.raises(DataError, match='no class folders'):
        im2rec.list_image_folder(str(tmp_path))
    (tmp_path / 'cat').mkdir()
    (tmp_path / 'dog').mkdir()
    cv2.imwrite(str(tmp_path / 'cat' / 'a.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="class folder 'dog' holds no image"):
        data.image_folder_loader(str(tmp_path), 2, train=False)
    assert im2rec.main([str(tmp_path), str(tmp_path / 'out')]) == 2


def test_demo_data_builds_from_the_scikit_learn_wheel(tmp_path):
    images, labels = demo_data.load_digits()
    assert images.shape == (1797, 8, 8) and set(labels) == set(range(10))
    paths = demo_data.demo_records(str(tmp_path))
    train = check_recordio(paths['train'], paths['train'][:-4] + '.idx', num_classes=10,
                           decode=True)
    val = check_recordio(paths['val'], paths['val'][:-4] + '.idx', num_classes=10)
    assert train.count + val.count == 1797 and val.count == 359
    assert len(os.listdir(os.path.join(paths['folder'], '7'))) == int((labels == 7).sum())


def test_record_header_layout():
    # the 24-byte IRHeader the checker parses is what mxnet writes
    packed = mx.recordio.pack(mx.recordio.IRHeader(0, 3., 7, 0), b'xyz')
    assert struct.unpack('<IfQQ', packed[:24]) == (0, 3.0, 7, 0) and packed[24:] == b'xyz'


def test_score_table_finds_released_files_by_name(packed, tmp_path, capsys):
    import tarfile
    import octconv.symbol as S
    folder = tmp_path / 'released'
    folder.mkdir()
    net = get_model('mobilenet_v1_075', ratio=0.375, classes=3)
    net.initialize()
    net.save_parameters(str(folder / 'mobilenet_v1_075_alpha-0.375.params'))
    mod = mx.mod.Module(S.get_symbol('resnetv2', 26, num_classes=3, ratio=0.25))
    mod.bind(data_shapes=[('data', (1, 3, 32, 32))], label_shapes=[('softmax_label', (1,))])
    mod.init_params(mx.init.Xavier())
    mod.save_checkpoint(str(tmp_path / 'resnet-26'), 90)
    with tarfile.open(str(folder / 'a02_resnet-26_alpha-0.250.tar'), 'w') as archive:
        for name in ('resnet-26-symbol.json', 'resnet-26-0090.params'):
            archive.add(str(tmp_path / name), arcname='a02/' + name)
    (folder / 'notes.txt').write_text('not a checkpoint')
    assert score.main(['--table', str(folder), '--rec-val', packed + '_val.rec',
                       '--input-size', '32', '--batch-size', '4', '--quiet']) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith('{')]
    assert [(r['file'], r['published_top1'], r['images'], r['convention']) for r in rows] == [
        ('a02_resnet-26_alpha-0.250.tar', 76.1, 6, 'symbol'),
        ('mobilenet_v1_075_alpha-0.375.params', 70.5, 6, 'gluon')]


def test_one_scan_serves_every_class_count_and_a_bad_label_is_still_placed(packed, monkeypatch):
    calls = []
    real = data.check_recordio

    def counted(*args, **kwargs):
        calls.append(kwargs.get('num_classes'))
        return real(*args, **kwargs)
    monkeypatch.setattr(data, 'check_recordio', counted)
    data._scan.cache_clear()
    rec = packed + '_train.rec'
    idx = data.index_beside(rec)
    assert idx == packed + '_train.idx' and data.index_beside(rec, 'given.idx') == 'given.idx'
    first = data.check_once(rec, idx, None, False)
    assert data.check_once(rec, idx, 10, False) is first       # the same scan, labels checked
    assert calls == [None]
    with pytest.raises(DataError, match=r'_train\.rec, record \d+ at byte \d+: label \d+ is '
                                        r'not a class index in \[0, 2\)'):
        data.check_once(rec, idx, 2, False)
    assert calls == [None, 2]                   # a second scan only to place the bad label


def _mxnet_decodes(image):
    try:
        mx.image.imdecode(image).wait_to_read()
        return True
    except mx.base.MXNetError:
        return False


def test_the_structure_check_refuses_every_cut_jpeg_that_mxnet_cannot_decode():
    from octconv.utils.recordio_check import image_problem
    import cv2
    picture = (np.random.RandomState(0).rand(40, 48, 3) * 255).astype(np.uint8)
    jpeg = cv2.imencode('.jpg', picture)[1].tobytes()
    cuts = list(range(2, 400)) + [len(jpeg) // 2, len(jpeg) - 2, len(jpeg)]
    for cut in cuts:            # what passes the check decodes (decoding only those is quicker)
        if image_problem(jpeg[:cut]) is None:
            assert _mxnet_decodes(jpeg[:cut]), cut
    assert image_problem(jpeg) is None and image_problem(jpeg[:len(jpeg) // 2]) is None
    png = cv2.imencode('.png', picture)[1].tobytes()     # libpng aborts on a cut PNG: any cut
    assert image_problem(png) is None                    # is refused before MXNet sees it
    assert all(image_problem(png[:cut]) is not None for cut in (10, 40, len(png) - 1))


def test_a_copy_without_bad_records_reads_back_every_other_record(packed, tmp_path):
    from octconv.utils.recordio_check import write_without
    rec, idx = packed + '_train.rec', packed + '_train.idx'
    reader = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
    originals = {key: reader.read_idx(key) for key in reader.keys}
    reader.close()
    keys = sorted(originals)
    bad_keys = {keys[0], keys[3], keys[-1]}
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'bad.idx'), str(tmp_path / 'bad.rec'),
                                           'w')
    for key in keys:
        header, payload = mx.recordio.unpack(originals[key])
        if key in bad_keys:
            payload = payload[:20]                         # cut off inside the JPEG header
        writer.write_idx(key, mx.recordio.pack(header, payload))
    writer.close()
    info = check_recordio(str(tmp_path / 'bad.rec'), str(tmp_path / 'bad.idx'), skip_bad=True)
    assert sorted(b.id for b in info.bad) == sorted(bad_keys)
    assert info.count == len(keys) - 3
    out_rec, out_idx = write_without(str(tmp_path / 'bad.rec'), str(tmp_path / 'bad.idx'),
                                     info.bad, str(tmp_path / 'usable'))
    assert check_recordio(out_rec, out_idx).count == len(keys) - 3
    reader = mx.recordio.MXIndexedRecordIO(out_idx, out_rec, 'r')
    assert sorted(reader.keys) == [k for k in keys if k not in bad_keys]
    assert all(reader.read_idx(key) == originals[key] for key in reader.keys)
    reader.close()
    assert sorted(os.listdir(tmp_path)) == ['bad.idx', 'bad.rec', 'usable.idx', 'usable.rec']
