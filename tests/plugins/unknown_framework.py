"""A deliberately broken plug-in: names a framework the suite does not know."""

framework = "mxnet"


def rope(x, positions, spec):
    return x
