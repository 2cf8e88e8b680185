"""A deliberately broken plug-in: importing it fails (a dependency that is not installed)."""

import rope_suite_no_such_dependency  # noqa: F401

framework = "numpy"


def rope(x, positions, spec):
    return x
