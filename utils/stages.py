"""Stage tables both APIs read."""

__all__ = ['DENSENET_STAGES']

# DenseNet (BC): depth -> (stem width, growth rate, dense layers in stages 2, 3, 4, 5)
DENSENET_STAGES = {121: (64, 32, (6, 12, 24, 16)),
                   161: (96, 48, (6, 12, 36, 24)),
                   169: (64, 32, (6, 12, 32, 32)),
                   201: (64, 32, (6, 12, 48, 32))}
