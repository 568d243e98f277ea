"""Gluon-API octave blocks and models (built on ``octconv.utils.octave``)."""
