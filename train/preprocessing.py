"""The preprocessing a model was trained with, written beside its parameters.

``PREFIX-preprocessing.json`` sits beside ``PREFIX-symbol.json`` /
``PREFIX-NNNN.params`` (a Module checkpoint) or ``PREFIX.params`` (Gluon), and
beside each checkpoint's ``model.params``. It records the normalisation
convention, the input size and the validation resize; ``octconv-score`` uses it
for every value the user does not type, so a checkpoint is scored as it was
validated during training. Its ``model`` entry says which network the parameters
belong to (API, network or model name, depth, ratio, SE), so that a score reports
what it scored.
"""
import json
import os

from ..utils.data import NORMALIZATIONS, DataError, validation_resize
from .checkpoint import atomic_write_text

__all__ = ['SUFFIX', 'KEYS', 'of_config', 'write', 'read', 'prefix_of_params', 'for_scoring']

SUFFIX = '-preprocessing.json'
KEYS = ('convention', 'input_size', 'crop_ratio')      # what scoring takes from the record
_INTERPOLATION = {1: 'bilinear', 2: 'bicubic'}


def of_config(config):
    """The record of a :class:`RunConfig`: the model (api, network, depth, ratio, use_se),
    convention, input size, crop ratio, and for the reader the resize, interpolation,
    mean and std they imply."""
    norm = NORMALIZATIONS[config.convention]
    model = {'api': config.api, 'network': config.model_name,
             'depth': config.depth if config.api == 'symbol' else None,
             'ratio': config.ratio, 'use_se': config.use_se}
    return {'model': model, 'convention': config.convention, 'input_size': config.input_size,
            'crop_ratio': config.crop_ratio,
            'resize': validation_resize(config.input_size, config.crop_ratio),
            'interpolation': _INTERPOLATION[norm.inter_method], 'mean': list(norm.mean),
            'std': list(norm.std)}


def write(prefix, record):
    """Write ``record`` to ``PREFIX-preprocessing.json`` atomically."""
    atomic_write_text(prefix + SUFFIX, json.dumps(record, indent=1) + '\n')


def prefix_of_params(path):
    """``model`` for ``model.params``: the prefix a Gluon parameter file's record has."""
    return path[:-len('.params')] if path.endswith('.params') else path


def read(prefix):
    """The record beside ``prefix`` as a dict, or None where there is none; DataError for a
    record that is not valid JSON or lacks a key scoring needs."""
    path = prefix + SUFFIX
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError) as err:
        raise DataError('%s: not a preprocessing record (%s)' % (path, err)) from None
    missing = [key for key in KEYS if key not in record]
    if missing or record['convention'] not in NORMALIZATIONS:
        raise DataError('%s: a preprocessing record needs %s, with convention one of %s'
                        % (path, ', '.join(KEYS), ', '.join(NORMALIZATIONS)))
    return record


def for_scoring(typed, record, record_path, defaults):
    """``(values, notes)``: the convention, input size and crop ratio to score with.

    Each is the value the user typed (``typed``), else the record's, else
    ``defaults``'s. ``notes`` has one line per typed value that contradicts the
    record (it is applied: a typed value wins, but not silently).
    """
    values, notes = {}, []
    for key in KEYS:
        trained = None if record is None else record[key]
        if key in typed:
            values[key] = typed[key]
            if trained is not None and typed[key] != trained:
                notes.append('--%s %s differs from the %s the model was trained with (%s); '
                             'scoring with %s' % (key.replace('_', '-'), typed[key], trained,
                                                  record_path, typed[key]))
        else:
            values[key] = trained if trained is not None else defaults[key]
    return values, notes
