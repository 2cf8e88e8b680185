"""Loads the rope-suite pytest plugin for ``pytest conformance``."""

from conformance.plugin import *  # noqa: F401,F403  (hooks and fixtures)
