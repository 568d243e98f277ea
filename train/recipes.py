"""Recipe cards: one per released model, by its released name.

A recipe resolves everything a training run needs (network, ratio, input size,
preprocessing, initialiser, optimizer, learning rate and its batch scaling,
warm-up, schedule, weight decay, label smoothing, mixup, epochs, dtype), each
value with where it comes from:

- ``paper``: stated in the paper's text or tables;
- ``reference README``: stated in the reference implementation's README;
- ``reference code``: what the reference implementation's scripts do;
- ``assumption``: no source states it; the card says what was chosen and why.

The cards are derived from the released-model records (``octconv.symbol.released``
for table A, 33 cells named like ``a03_resnet-50_alpha-0.250``, the baseline at
``alpha-0.000``; ``octconv.gluon.released`` for table B's six rows, named like
``resnet152_v1f_alpha-0.125``).
"""
from collections import namedtuple

from ..gluon.released import MODELS
from ..symbol.released import ABLATION

__all__ = ['Setting', 'Recipe', 'PAPER', 'REFERENCE_README', 'REFERENCE', 'ASSUMPTION',
           'RECIPES', 'get_recipe', 'list_recipes', 'paper_training', 'scaled_lr', 'HEADLINE']

PAPER, REFERENCE_README, REFERENCE, ASSUMPTION = ('paper', 'reference README', 'reference code',
                                                  'assumption')

Setting = namedtuple('Setting', ['value', 'source', 'note'])
Recipe = namedtuple('Recipe', ['name', 'title', 'settings', 'record'])
Recipe.__doc__ = """One released model's card: ``settings`` maps octconv-train's option names
(``input_size``, ``lr``, ...) to :class:`Setting`; ``record`` is its
:class:`~octconv.utils.released.Released` record (accuracy and its source, size)."""

BASE_LR, BASE_BATCH = 0.4, 1024
_PUBLISHED = {record.network: record for record in MODELS}    # table B's training facts

_SYMBOL_SCRIPT = ('the ablation training script was not released; its score.py and the '
                  'authors\' Gluon training script are followed')
_GLUONCV = ("GluonCV's published ImageNet commands use --no-wd and --last-gamma for "
            'ResNet-152 and --no-wd with float16 for MobileNet')


def scaled_lr(total_batch):
    """The paper's lr 0.4, linearly scaled from a total batch of 1024 to ``total_batch``."""
    return BASE_LR * total_batch / BASE_BATCH


def paper_training(api, model):
    """The paper's training recipe for ``model`` of ``api`` ('symbol', 'gluon' or 'gluoncv':
    a GluonCV model trains with the reference's Gluon script settings): a dict of
    :class:`Setting` for every training option (the model options excluded)."""
    gluon = api != 'symbol'
    published = _PUBLISHED.get(model) if api == 'gluon' else None
    smoothing = bool(published and published.label_smoothing)
    mixup = bool(published and published.mixup)
    script = REFERENCE if gluon else ASSUMPTION
    script_note = "the reference's train_imagenet.py" if gluon else _SYMBOL_SCRIPT
    return {
        'input_size': Setting(224, REFERENCE, "224x224 crops: the reference's scripts train "
                                              'and score at 224'),
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
        'warmup_epochs': Setting(5, REFERENCE_README, 'linear warm-up over 5 epochs ("warm-up: '
                                                      '5 epochs")'),
        'warmup_lr': Setting(0., script, 'warm-up starts from 0 (%s)' % script_note),
        'lr': Setting(BASE_LR, REFERENCE_README, 'lr 0.4 ("lr: 0.4"), taken at a total batch '
                                                 'of %d and scaled linearly with the total '
                                                 'batch' % BASE_BATCH),
        'batch_size': Setting(128, ASSUMPTION,
                              'per device; no source gives the batch behind lr 0.4: '
                              "GluonCV's lr-0.4 recipes, on which the reference script is "
                              'based, use 128 x 8 devices = %d' % BASE_BATCH),
        'wd': Setting(1e-4, script, script_note),
        'no_wd': Setting(False, ASSUMPTION,
                         "decay on every parameter, biases and BatchNorm included: the "
                         "reference script's default, which its published runs may not have "
                         'used (%s)' % _GLUONCV),
        'label_smoothing': (Setting(0.1, REFERENCE, 'table B says this model used label '
                                                    'smoothing; 0.1 is the reference '
                                                    "script's value")
                            if smoothing else
                            Setting(0., PAPER, 'plain softmax loss' + (
                                ' (table B: no label smoothing for this model)' if published
                                else ''))),
        'mixup': Setting(mixup, PAPER, 'table B' if published else 'no mixup'),
        'mixup_alpha': Setting(0.2, REFERENCE, "the reference script's default"),
        'mixup_off_epoch': Setting(0, REFERENCE, "the reference script's default"),
        'num_epochs': Setting(200 if mixup else 120, ASSUMPTION,
                              'no source gives the epoch count: GluonCV\'s cosine ImageNet '
                              'recipes train %s%s' % (
                                  '200 epochs with mixup' if mixup else
                                  '120 epochs without mixup',
                                  '' if gluon else '; the paper says the ablation follows the '
                                                   "bL-Net recipe, whose alternative is 110 "
                                                   'epochs')),
        'dtype': Setting('float32', ASSUMPTION,
                         "float32 training, the reference script's default (%s; table B was "
                         'evaluated in float16 on GPUs)' % _GLUONCV if gluon
                         else 'float32 training (%s)' % script_note),
        'last_gamma': Setting(False, ASSUMPTION,
                              "the reference script's default (%s)" % _GLUONCV if gluon
                              else script_note),
        'final_drop': Setting(0., script, script_note),
    }


def _recipe(record):
    """The card of a released model's record."""
    where = 'paper table %s' % record.table
    settings = {'api': Setting(record.api, PAPER, 'Symbol API for the ablation, Gluon for '
                                                  'the others'),
                'model': Setting(record.network, PAPER, where),
                'depth': Setting(record.depth, PAPER, where),
                'ratio': Setting(record.ratio, PAPER, where + ('; 0 is the vanilla baseline'
                                                               if record.ratio == 0 else '')),
                'use_se': Setting(record.use_se, PAPER, where)}
    settings.update(paper_training(record.api, record.network))
    title = '%s, %s (table %s)' % (record.label, 'baseline' if record.ratio == 0 else
                                   'alpha %g' % record.ratio, record.table)
    return Recipe(record.name, title, settings, record)


RECIPES = {record.name: _recipe(record) for record in ABLATION + MODELS}

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
