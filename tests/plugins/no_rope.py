"""A deliberately broken plug-in: names its framework but has no rope()."""

framework = "numpy"


def apply_rotary(x, positions, spec):
    return x
