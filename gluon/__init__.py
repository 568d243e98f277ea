"""Gluon-API octave blocks (``octconv.gluon.nn``) and models (``get_model``).

Models: ``get_model(name, ratio=..., classes=..., pretrained=False, root=..., ctx=...)``
with names from ``get_model_list()``; ``register_gluoncv()`` adds them to
GluonCV's model zoo under the ``oct_`` prefix (at the paper's ratio) and the released names.
``octavize(net, ratio)`` makes the octave version of any other HybridBlock (video and signal
networks too); ``inflate(net_2d, net_3d)`` carries a 2-D network's values into its 3-D version.
"""
from . import nn
from .base import Backbone, CheckpointMismatch, trainable_parameters
from .inflate import inflate
from .octavize import octavize
from .model_zoo import (get_model, get_model_list, paper_ratio, register_gluoncv, released_file,
                        released_models)

__all__ = ['nn', 'Backbone', 'octavize', 'inflate', 'get_model', 'get_model_list', 'paper_ratio',
           'register_gluoncv', 'released_file', 'released_models', 'trainable_parameters',
           'CheckpointMismatch']
