"""The conformance suite itself, as a user runs it (``pytest --pyargs rope_suite.conformance``),
over the default targets (the first-party implementations; ``--impl`` or ROPE_SUITE_IMPL choose
others). The test functions live in the installed package; importing them here lets the
project's own ``pytest`` run collect them with the rest of tests/."""

from rope_suite.conformance.test_conformance import test_check, test_random_specs  # noqa: F401
