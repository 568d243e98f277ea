"""Recipe cards against the manifests and the paper; typed values always win; the reference's
initialiser; a trained model scores as it was validated."""
import json

import mxnet as mx
import numpy as np
import pytest

from conftest import manifests
from octconv.gluon import get_model
from octconv.train import config as run_config
from octconv.train import fit, recipes, score, train_imagenet
from octconv.symbol.released import ABLATION
from octconv.utils import data, flops

RECIPES = recipes.list_recipes()
SOURCES = {'paper', 'reference README', 'reference code', 'assumption', 'user', 'default',
           'demo data'}


def _resolve(name, *argv):
    config, _ = train_imagenet.parse_config(['--recipe', name, '--rec-train', 'train.rec']
                                            + list(argv))
    return config


def _manifest(config):
    for _, manifest in manifests(config.api):
        if config.api == 'symbol':      # the manifests write the vanilla ratio as -1
            key = (manifest['builder'], manifest['depth'], max(manifest['ratio'], 0))
            if key == (config.model, config.depth, config.ratio):
                return manifest
        elif (manifest['model'], manifest['ratio'], manifest['use_se']) == (
                config.model, config.ratio, config.use_se):
            return manifest
    raise AssertionError('no manifest for %s' % config.recipe)


def test_recipes_are_the_33_ablation_cells_and_the_6_rows_of_table_b():
    ablation = [n for n in RECIPES if n.startswith('a0')]
    assert len(ablation) == len(ABLATION) == 33 and len(RECIPES) == 39
    assert 'a03_resnet-50_alpha-0.250' in RECIPES and 'a03_resnet-50_alpha-0.000' in RECIPES
    assert RECIPES[-6:] == ['mobilenet_v1_075_alpha-0.375', 'mobilenet_v1_100_alpha-0.5',
                            'mobilenet_v2_100_alpha-0.375', 'mobilenet_v2_1125_alpha-0.5',
                            'resnet152_v1f_alpha-0.125', 'se-resnet152_v1e_alpha-0.125']
    with pytest.raises(ValueError, match='unknown recipe .* a01_densenet-121_alpha-0.000'):
        recipes.get_recipe('a03_resnet-50_alpha-0.300')


@pytest.mark.parametrize('name', RECIPES)
def test_every_recipe_resolves_to_the_network_of_its_manifest(name):
    config = _resolve(name)
    assert config.recipe == name
    assert all(origin.source in SOURCES for origin in config.sources.values())
    recipe = recipes.get_recipe(name)
    for key, setting in recipe.settings.items():
        if key != 'lr':
            assert getattr(config, key) == setting.value, key
    assert (config.input_size, config.initializer, config.lr_mode, config.warmup_epochs) == (
        224, 'msraprelu', 'cosine', 5)
    assert config.convention == ('symbol' if config.api == 'symbol' else 'gluon')
    manifest = _manifest(config)
    net = fit.build_network(config, 1000)
    if config.api == 'symbol':
        net.infer_shape(mx.nd.zeros((1, 3, 224, 224)))
        shapes = {k: list(p.shape) for k, p in net.collect_params().items()}
        assert shapes == dict(manifest['arg'], **manifest['aux'])
    else:
        assert {k: list(p.shape) for k, p in net.collect_params().items()} == \
            manifest['prefixed']


@pytest.mark.parametrize('name', [n for n in RECIPES if recipes.get_recipe(n).record.gflops])
def test_recipe_flops_and_params_match_the_paper(name):
    recipe, config = recipes.get_recipe(name).record, _resolve(name)
    net = fit.build_network(config, 1000)
    if config.api == 'symbol':
        net.infer_shape(mx.nd.zeros((1, 3, 224, 224)))
    got = flops.count_block(net, (1, 3, config.input_size, config.input_size))
    assert abs(got.flops / 1e9 / recipe.gflops - 1) <= 0.025
    if recipe.params_m:
        assert abs(got.params / 1e6 - recipe.params_m) <= 0.05


def test_the_headline_is_the_se_resnet152_recipe_at_the_crop_of_22_2_gflops():
    headline = recipes.HEADLINE
    config = _resolve(headline['recipe'])
    net = get_model(config.model, ratio=config.ratio, use_se=config.use_se)
    size = headline['input_size']
    assert round(flops.count_block(net, (1, 3, size, size)).flops / 1e9, 1) == headline['gflops']
    assert round(flops.count_block(net, (1, 3, size - 32, size - 32)).flops / 1e9, 1) < 22.2


# Two values for each option a recipe sets: the RunConfig default first, then another.
TYPED = {'api': ['symbol', 'gluon'], 'model': [None, 'resnet50_v1b'], 'depth': ['26', '50'],
         'ratio': ['0.25', '-1'], 'input_size': ['224', '160'],
         'convention': [None, 'gluon'], 'crop_ratio': ['0.875', '0.9'],
         'min_random_area': ['0.08', '0.3'], 'initializer': ['msraprelu', 'xavier'],
         'optimizer': ['nag', 'sgd'], 'momentum': ['0.9', '0.8'], 'lr_mode': ['cosine', 'step'],
         'warmup_epochs': ['0', '1'], 'warmup_lr': ['0', '0.01'], 'lr': ['0.1', '0.05'],
         'batch_size': ['64', '32'], 'wd': ['0.0001', '0.00005'],
         'label_smoothing': ['0', '0.2'], 'mixup_alpha': ['0.2', '0.4'],
         'mixup_off_epoch': ['0', '3'], 'num_epochs': ['8', '90'],
         'dtype': ['float32', 'float16'], 'final_drop': ['0', '0.2']}
SWITCHES = ('use_se', 'no_wd', 'mixup', 'last_gamma')


def test_the_typed_values_cover_every_recipe_option_and_start_at_the_default():
    keys = set().union(*(recipes.get_recipe(n).settings for n in RECIPES))
    assert keys == set(TYPED) | set(SWITCHES)
    for key, (default, _) in TYPED.items():
        if default is not None:
            parsed = type(getattr(run_config.RunConfig, key))(default)
            assert parsed == getattr(run_config.RunConfig, key), key


def _typed(key, text):
    """``text`` as the type of the option ``key``."""
    default = getattr(run_config.RunConfig, key)
    return text if default is None else type(default)(text)


@pytest.mark.parametrize('name', ['a03_resnet-50_alpha-0.250', 'resnet152_v1f_alpha-0.125'])
@pytest.mark.parametrize('key', sorted(TYPED) + list(SWITCHES))
def test_a_typed_value_is_never_replaced(name, key):
    """Typed equal to the default (TYPED's first value) and typed different: the typed value
    is kept, and every other value of the recipe stays the recipe's."""
    flag = '--' + key.replace('_', '-')
    if key in SWITCHES:
        cases = [([flag], True)]
    else:
        cases = [([flag, text], _typed(key, text)) for text in TYPED[key] if text is not None]
    recipe = recipes.get_recipe(name)
    for argv, want in cases:
        config = _resolve(name, *argv)
        assert getattr(config, key) == want and config.sources[key].source == 'user', argv
        for other in recipe.settings:
            if other not in (key, 'lr'):         # lr follows a typed batch size
                assert getattr(config, other) == recipe.settings[other].value, (argv, other)


def test_the_recipe_lr_scales_with_the_total_batch_unless_typed():
    name = 'a03_resnet-50_alpha-0.250'
    assert _resolve(name).lr == pytest.approx(0.4 * 128 / 1024)
    assert _resolve(name, '--batch-size', '64').lr == pytest.approx(0.4 * 64 / 1024)
    assert _resolve(name, '--batch-size', '256', '--lr', '0.4').lr == 0.4


def test_without_a_recipe_real_data_trains_at_224_and_the_demo_digits_at_32():
    real, _ = train_imagenet.parse_config(['--rec-train', 'train.rec'])
    assert (real.input_size, real.initializer, real.convention) == (224, 'msraprelu', 'symbol')
    demo, _ = train_imagenet.parse_config([])
    assert demo.input_size == 32 and demo.sources['input_size'].source == 'demo data'
    gluon, _ = train_imagenet.parse_config(['--api', 'gluon', '--data-dir', 'images'])
    assert (gluon.input_size, gluon.convention) == (224, 'gluon')


def test_dry_run_prints_every_value_with_its_source_and_one_json_line(capsys):
    assert train_imagenet.main(['--recipe', 'se-resnet152_v1e_alpha-0.125', '--dry-run',
                                '--gpus', '0,1', '--num-epochs', '120']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('recipe se-resnet152_v1e_alpha-0.125') and '81.6 / 95.7' in lines[0]
    table = {line.split()[0]: line.split()[1:3] for line in lines[2:-1]}
    assert table['num_epochs'] == ['120', 'user'] and table['mixup'] == ['true', 'paper']
    assert table['batch_size'] == ['128', 'assumption']
    resolved = json.loads(lines[-1])
    for key in ('input_size', 'lr', 'lr_mode', 'warmup_epochs', 'optimizer', 'label_smoothing',
                'mixup', 'ratio', 'depth', 'use_se', 'initializer', 'sources'):
        assert key in resolved
    assert resolved['lr'] == pytest.approx(0.4 * 256 / 1024)       # 128 x 2 GPUs
    assert (resolved['sources']['lr'], resolved['sources']['num_epochs']) == (
        'reference README', 'user')
    assert set(resolved['sources'].values()) <= SOURCES


def test_each_recipe_value_names_the_source_that_states_it():
    sources = {key: (s.source, s.note) for key, s in
               recipes.get_recipe('resnet152_v1f_alpha-0.125').settings.items()}
    assert sources['input_size'][0] == sources['crop_ratio'][0] == 'reference code'
    assert sources['label_smoothing'][0] == 'reference code'      # used: table B; 0.1: script
    assert sources['mixup'][0] == sources['lr_mode'][0] == 'paper'
    assert sources['warmup_epochs'][0] == sources['lr'][0] == 'reference README'
    for key in ('no_wd', 'last_gamma', 'dtype'):       # the reference script's defaults
        assert sources[key][0] == 'assumption'
        assert '--no-wd and --last-gamma for ResNet-152' in sources[key][1], key
    mobilenet = recipes.get_recipe('mobilenet_v2_100_alpha-0.375').settings
    assert 'float16 for MobileNet' in mobilenet['dtype'].note
    assert '110 epochs' in recipes.get_recipe('a03_resnet-50_alpha-0.250').settings[
        'num_epochs'].note


def test_list_recipes_gives_the_paper_accuracies_and_the_headline(capsys):
    assert train_imagenet.main(['--list-recipes']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(RECIPES) + 1
    row = next(line for line in lines if line.startswith('a03_resnet-50_alpha-0.250 '))
    assert row.split()[-3:] == ['78.0', '/', '93.8']
    assert lines[-1].startswith('headline: se-resnet152_v1e_alpha-0.125 tested at 320 px')


def _variances(net, magnitude):
    """``{kind: (pooled variance of weight / expected std, samples)}`` by layer kind, where
    the expected variance is MSRAPrelu's: magnitude / ((fan_in + fan_out) / 2)."""
    kinds = {}
    for name, param in net.collect_params().items():
        if not name.endswith('weight') or param.data().ndim not in (2, 4):
            continue
        weight = param.data().asnumpy()
        receptive = int(np.prod(weight.shape[2:]))
        fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
        expected = magnitude / ((fan_in + fan_out) / 2)
        if 'classifier' in name:
            kind = 'classifier'
        elif weight.shape[1] == 1 and receptive == 9:
            kind = 'depthwise 3x3'
        elif receptive == 1:
            kind = '1x1 expansion' if weight.shape[0] > weight.shape[1] else '1x1 reduction'
        else:
            kind = 'kxk'
        kinds.setdefault(kind, []).append((weight / np.sqrt(expected)).ravel())
    pooled = {kind: np.concatenate(parts) for kind, parts in kinds.items()}
    return {kind: (float(np.var(values)), values.size) for kind, values in pooled.items()}


@pytest.mark.parametrize('api,model', [('gluon', 'mobilenet_v1_075'), ('symbol', 'resnetv2')])
def test_initialiser_has_the_reference_msraprelu_statistics(api, model):
    config = run_config.RunConfig(api=api, model=model, ratio=0.375 if api == 'gluon' else 0.25)
    net = fit.build_network(config, 1000)
    if api == 'symbol':
        net.infer_shape(mx.nd.zeros((1, 3, 224, 224)))
    mx.random.seed(0)
    fit.initialize(net, config.initializer, mx.cpu())
    found = _variances(net, magnitude=2 / (1 + 0.25 ** 2))
    want_kinds = {'classifier', '1x1 expansion', '1x1 reduction'} | (
        {'depthwise 3x3'} if api == 'gluon' else {'kxk'})
    assert want_kinds <= set(found)
    for kind, (ratio, samples) in found.items():
        # five standard deviations of a sample variance (a factor off would be far outside)
        assert ratio == pytest.approx(1, abs=5 * np.sqrt(2 / samples)), (kind, samples)


def test_a_recipe_run_scores_exactly_as_it_was_validated(digits60, tmp_path, capsys):
    save = tmp_path / 'run'
    assert train_imagenet.main(['--recipe', 'a02_resnet-26_alpha-0.250', '--rec-train',
                                digits60 + '_train.rec', '--rec-val', digits60 + '_val.rec',
                                '--input-size', '32', '--batch-size', '8', '--num-epochs', '2',
                                '--warmup-epochs', '0', '--lr', '0.05', '--min-random-area',
                                '0.5', '-j', '1', '--quiet', '--save-dir', str(save)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (final['recipe'], final['published_top1'], final['published_top5']) == (
        'a02_resnet-26_alpha-0.250', 76.1, 92.6)
    assert final['published_source'] == 'reference README (table of released checkpoints)'
    recorded = json.loads((save / 'run.json').read_text())
    assert recorded['recipe'] == 'a02_resnet-26_alpha-0.250'
    assert (recorded['sources']['input_size'], recorded['sources']['warmup_epochs']) == (
        'user', 'user')
    assert (recorded['convention'], recorded['sources']['convention']) == (
        'symbol', 'assumption')
    meta = json.loads((save / 'checkpoints' / 'epoch-0002' / 'meta.json').read_text())
    assert dict(meta['config'], segments=meta['segments']) == recorded
    trained = json.loads((save / 'model-preprocessing.json').read_text())
    assert (trained['convention'], trained['input_size'], trained['resize']) == ('symbol', 32, 37)
    # no preprocessing flag: the record decides, and the score is the trainer's validation
    assert score.main(['--checkpoint', str(save / 'model'), '--epoch', '2', '--rec-val',
                       digits60 + '_val.rec', '--quiet', '--batch-size', '4']) == 0
    captured = capsys.readouterr()
    scored = json.loads(captured.out.strip().splitlines()[-1])
    assert (scored['top1'], scored['top5']) == (final['top1'], final['top5'])
    assert (scored['convention'], scored['input_size']) == ('symbol', 32)
    assert 'note' not in captured.err
    # its INT8 model (calibrated on 2 batches) scores the same images
    assert score.main(['--checkpoint', str(save / 'model'), '--epoch', '2', '--rec-val',
                       digits60 + '_val.rec', '--quiet', '--batch-size', '4', '--dtype', 'int8',
                       '--calib-batches', '2', '--calib-mode', 'naive']) == 0
    int8 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (int8['dtype'], int8['calib_batches'], int8['calib_mode'], int8['images'],
            int8['inference_graph']) == ('int8', 2, 'naive', scored['images'], 'merged')
    # and scores what float32 scores, within two of the 20 images
    assert abs(int8['top1'] - scored['top1']) <= 0.1 and abs(int8['top5'] - scored['top5']) <= 0.1
    # it says what it scored, from the checkpoint's records (no model flag was typed)
    assert (scored['api'], scored['network'], scored['depth'], scored['ratio'],
            scored['use_se']) == ('symbol', 'resnetv2', 26, 0.25, False)
    assert '(resnetv2-26, ratio 0.25): top-1 %.4f, top-5 %.4f' % (scored['top1'],
                                                                  scored['top5']) in captured.out
    # a Module bound with label shapes, as the reference score.py and MXNet's
    # example/image-classification score, reads the export unchanged and agrees
    symbol, args, auxs = mx.model.load_checkpoint(str(save / 'model'), 2)
    assert symbol.list_outputs() == ['softmax_output']
    images = data.check_recordio(digits60 + '_val.rec').count     # one batch: no padding
    source = data.val_iter(digits60 + '_val.rec', None, batch_size=images, input_size=32,
                           crop_ratio=0.875, convention='symbol')
    module = mx.mod.Module(symbol, context=mx.cpu(), label_names=['softmax_label'])
    module.bind(for_training=False, data_shapes=source.provide_data,
                label_shapes=source.provide_label)
    module.set_params(args, auxs)
    top1, top5 = mx.metric.Accuracy(), mx.metric.TopKAccuracy(5)
    module.score(source, [top1, top5])
    assert (top1.get()[1], top5.get()[1]) == pytest.approx((scored['top1'], scored['top5']))
    # a typed contradicting flag is applied and reported
    assert score.main(['--checkpoint', str(save / 'model'), '--epoch', '2', '--rec-val',
                       digits60 + '_val.rec', '--quiet', '--batch-size', '4', '--convention',
                       'gluon']) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])['convention'] == 'gluon'
    assert '--convention gluon differs from the symbol the model was trained with' in \
        captured.err and 'model-preprocessing.json' in captured.err
