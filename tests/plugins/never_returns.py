"""A deliberately broken plug-in whose rope() never returns, whatever it is asked: a Python-level
hang that a timeout signal interrupts, in a process that ignores SIGINT and SIGTERM (so neither
pytest-xdist's worker shutdown nor a polite kill ends it). If the environment variable
ROPE_SUITE_TEST_HANGING names a file, each call creates it on the way in, so a test knows a
process is stuck."""

import os
import signal
import time

framework = "numpy"


def rope(x, positions, spec):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    marker = os.environ.get("ROPE_SUITE_TEST_HANGING")
    if marker:
        open(marker, "a").close()
    while True:
        time.sleep(3600)
