"""Recipe cards: one per published cell of the paper's tables, by its released name.

A recipe resolves everything a training run needs (network, ratio, input size,
preprocessing, initialiser, optimizer, learning rate and its batch scaling,
warm-up, schedule, weight decay, label smoothing, mixup, epochs, dtype), each
value with where it comes from:

- ``paper``: stated in the paper or the reference README's tables;
- ``reference code``: what the reference implementation's scripts do;
- ``assumption``: the paper is silent; the card says what was chosen and why.

Table A (Symbol API, pre-activation networks) has 33 cells named like the
released ablation checkpoints (``a03_resnet-50_alpha-0.250``, the baseline at
``alpha-0.000``); table B (Gluon API) has six rows named like the released
parameter files (``resnet152_v1f_alpha-0.125``, ``se-resnet152_v1e_alpha-0.125``).
"""
from collections import namedtuple

from ..gluon.model_zoo import released_models
from ..utils.paper import RESNET50_GFLOPS, TABLE_A, TABLE_B

__all__ = ['Setting', 'Recipe', 'PAPER', 'REFERENCE', 'ASSUMPTION', 'RECIPES', 'get_recipe',
           'list_recipes', 'paper_training', 'scaled_lr', 'HEADLINE']

PAPER, REFERENCE, ASSUMPTION = 'paper', 'reference code', 'assumption'

Setting = namedtuple('Setting', ['value', 'source', 'note'])
Recipe = namedtuple('Recipe', ['name', 'title', 'settings', 'top1', 'top5', 'params_m',
                               'gflops'])
Recipe.__doc__ = """One published cell: ``settings`` maps octconv-train's option names
(``input_size``, ``lr``, ...) to :class:`Setting`; ``top1``/``top5`` are the paper's
accuracies (%), ``params_m``/``gflops`` its published size where it gives one."""

# Paper table B: MobileNet v2 used label smoothing, ResNet-152 both label smoothing and mixup.
LABEL_SMOOTHING = ('mobilenet_v2_100', 'mobilenet_v2_1125', 'resnet152_v1e', 'resnet152_v1f')
MIXUP = ('resnet152_v1e', 'resnet152_v1f')

BASE_LR, BASE_BATCH = 0.4, 1024

# Released ablation names: a<index>_<network>-<depth>_alpha-<ratio, 3 decimals>.
_ABLATION_NAMES = {('densenet', 121): 'a01_densenet-121', ('resnetv2', 26): 'a02_resnet-26',
                   ('resnetv2', 50): 'a03_resnet-50',
                   ('resnextv2_32x4d', 50): 'a04_resnext-50_32x4d',
                   ('seresnetv2', 50): 'a05_se-resnet-50', ('resnetv2', 101): 'a06_resnet-101',
                   ('resnextv2_32x4d', 101): 'a07_resnext-101_32x4d',
                   ('resnetv2', 200): 'a08_resnet-200'}

_SYMBOL_SCRIPT = ('the ablation training script was not released; its score.py and the '
                  'authors\' Gluon training script are followed')


def scaled_lr(total_batch):
    """The paper's lr 0.4, linearly scaled from a total batch of 1024 to ``total_batch``."""
    return BASE_LR * total_batch / BASE_BATCH


def paper_training(api, model):
    """The paper's training recipe for ``model`` of ``api`` ('symbol' or 'gluon'): a dict
    of :class:`Setting` for every training option (the model options excluded)."""
    gluon = api == 'gluon'
    smoothing = gluon and model in LABEL_SMOOTHING
    mixup = gluon and model in MIXUP
    script = REFERENCE if gluon else ASSUMPTION
    script_note = "the reference's train_imagenet.py" if gluon else _SYMBOL_SCRIPT
    return {
        'input_size': Setting(224, PAPER, '224x224 crops for training and for the single '
                                          'center crop of the tables'),
        'convention': Setting(
            'gluon' if gluon else 'symbol', script,
            'mean 123.68/116.779/103.939, std 58.393/57.12/57.375, bilinear '
            "(the reference's train_imagenet.py)" if gluon else
            'mean 124/117/104, scale 0.0167, bicubic: what the reference score.py feeds the '
            'released ablation checkpoints, so they were trained with it'),
        'crop_ratio': Setting(0.875, REFERENCE, 'validation: shorter side to 256, center '
                                                 'crop 224'),
        'min_random_area': Setting(0.08, script, 'random-resized crop of 8-100%% of the '
                                                 'area (%s)' % script_note),
        'initializer': Setting('msraprelu', script, 'MSRAPrelu: Xavier gaussian, fan avg, '
                                                    'magnitude 2/(1+0.25^2) (%s)' % script_note),
        'optimizer': Setting('nag', script, 'Nesterov SGD (%s)' % script_note),
        'momentum': Setting(0.9, script, script_note),
        'lr_mode': Setting('cosine', PAPER, 'cosine decay'),
        'warmup_epochs': Setting(5, PAPER, 'linear warm-up'),
        'warmup_lr': Setting(0., script, 'warm-up starts from 0 (%s)' % script_note),
        'lr': Setting(BASE_LR, PAPER, 'lr 0.4 at a total batch of %d, scaled linearly with '
                                      'the total batch' % BASE_BATCH),
        'batch_size': Setting(128, ASSUMPTION,
                              'per device; the paper does not give the batch behind lr 0.4: '
                              "GluonCV's lr-0.4 recipes, on which the reference script is "
                              'based, use 128 x 8 devices = %d' % BASE_BATCH),
        'wd': Setting(1e-4, script, script_note),
        'no_wd': Setting(False, script, 'decay on every parameter, biases and BatchNorm '
                                        'included (%s; the paper is silent)' % script_note),
        'label_smoothing': Setting(0.1 if smoothing else 0., PAPER,
                                   'table B' if smoothing else 'plain softmax loss'),
        'mixup': Setting(mixup, PAPER, 'table B' if mixup else 'no mixup'),
        'mixup_alpha': Setting(0.2, REFERENCE, "the reference script's default"),
        'mixup_off_epoch': Setting(0, REFERENCE, "the reference script's default"),
        'num_epochs': Setting(200 if mixup else 120, ASSUMPTION,
                              'the paper gives no epoch count: GluonCV\'s cosine ImageNet '
                              'recipes train %s' % ('200 epochs with mixup' if mixup
                                                    else '120 epochs without mixup')),
        'dtype': Setting('float32', script, 'float32 training (%s); table B was evaluated '
                                            'in float16 on GPUs' % script_note if gluon
                         else script_note),
        'last_gamma': Setting(False, script, script_note),
        'final_drop': Setting(0., script, script_note),
    }


def _model(api, model, depth, ratio, use_se, table):
    where = 'paper %s' % table
    return {'api': Setting(api, PAPER, 'Symbol API for the ablation, Gluon for the others'),
            'model': Setting(model, PAPER, where),
            'depth': Setting(depth, PAPER, where),
            'ratio': Setting(ratio, PAPER, where + ('; 0 is the vanilla baseline'
                                                    if ratio == 0 else '')),
            'use_se': Setting(use_se, PAPER, where)}


def _ablation_recipes():
    recipes = []
    for row in TABLE_A:
        name = '%s_alpha-%.3f' % (_ABLATION_NAMES[row.network, row.depth], row.ratio)
        settings = dict(_model('symbol', row.network, row.depth, row.ratio, False, 'table A'),
                        **paper_training('symbol', row.network))
        gflops = RESNET50_GFLOPS.get(row.ratio) if (row.network, row.depth) == (
            'resnetv2', 50) else None
        title = '%s, %s (table A)' % (row.label, 'baseline' if row.ratio == 0
                                      else 'alpha %g' % row.ratio)
        recipes.append(Recipe(name, title, settings, row.top1, row.top5, None, gflops))
    return recipes


def _gluon_recipes():
    names = {config: name for name, config in released_models().items()}
    recipes = []
    for row in TABLE_B:
        settings = dict(_model('gluon', row.model, None, row.ratio, row.use_se, 'table B'),
                        **paper_training('gluon', row.model))
        title = '%s, alpha %g (table B)' % (row.label, row.ratio)
        recipes.append(Recipe(names[row.model, row.ratio, row.use_se], title, settings, row.top1,
                              row.top5, row.params_m, row.flops / 1e9))
    return recipes


RECIPES = {recipe.name: recipe for recipe in _ablation_recipes() + _gluon_recipes()}

# The paper's headline: Oct-ResNet-152 + SE, 82.9% top-1 at 22.2 GFLOPs, is the table-B
# network tested at a larger center crop; 320 px is the size at which it counts 22.2 GFLOPs.
HEADLINE = {'recipe': 'se-resnet152_v1e_alpha-0.125', 'input_size': 320, 'gflops': 22.2,
            'top1': 82.9}


def get_recipe(name):
    """The recipe ``name``; ValueError listing the names for an unknown one."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError('unknown recipe %r; valid recipes (octconv-train --list-recipes): %s'
                         % (name, ', '.join(RECIPES))) from None


def list_recipes():
    """The recipe names, table A first, in the tables' order."""
    return list(RECIPES)
