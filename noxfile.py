"""nox sessions: ``nox -s tests`` runs the test suite in a fresh virtual environment;
``nox -s bench`` times the implementations (``nox -s bench -- --quick`` for CI; other
arguments go to ``rope-suite bench``) and ``nox -s report`` writes the HTML + Markdown
report from ``results/`` (or from the files given after ``--``). ``nox -s vllm`` checks vLLM's
RoPE layer in a virtual environment of its own (not a default session; see its docstring).

On a CPU-only machine, ``.ci/constraints-cpu.txt`` pins torch's CPU build; set
ROPE_SUITE_CONSTRAINTS to another file (or to an empty string) to lift that on a GPU machine.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
CONSTRAINTS = os.environ.get("ROPE_SUITE_CONSTRAINTS", ".ci/constraints-cpu.txt")


def install(session: nox.Session, extras: str) -> None:
    args = ["-c", CONSTRAINTS] if CONSTRAINTS else []
    session.install(*args, "-e", f".[{extras}]")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The project's own tests (tests/)."""
    session.install("--no-deps", "-r", ".ci/thirdparty-no-deps.txt")  # why: that file
    install(session, "all")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against the copy roofline: results/bench.json (+ .jsonl stream, pytest-benchmark JSON)."""
    install(session, "all")
    session.run("rope-suite", "bench", *session.posargs)


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """The report (results/report.html + .md) from results/bench.json and results/check-all.json."""
    install(session, "bench")
    given = any(arg.endswith((".json", ".jsonl")) for arg in session.posargs)
    inputs = [] if given else [p for p in ("results/check-all.json", "results/bench.json") if os.path.isfile(p)]
    session.run("rope-suite", "report", *inputs, *session.posargs)


VLLM = "vllm==0.32.0"  # the newest vLLM whose torch pin (torch==2.13.0) has a CPU build here
VLLM_IMPORTS = (
    # What ``import vllm.config`` and its rotary_embedding package import, at vLLM 0.32.0's own
    # requirement specifiers; its CUDA kernels (flashinfer, cutlass, triton, ...), torchvision,
    # torchaudio and serving extras are not needed for the layer, so vLLM goes in with --no-deps.
    "transformers>=5.16.1,<5.20.0", "fastapi>=0.133.0,<0.137.0", "llguidance>=1.7.0,<1.8.0",
    "apache-tvm-ffi==0.1.11", "oss-harmony>=0.0.11", "openai>=2.25.0", "aiohttp>=3.14.3", "requests>=2.33.0",
    "pydantic>=2.12.0", "pillow>=12.3.0", "prometheus_client>=0.18.0", "pyzmq>=25.0.0", "numpy", "regex",
    "psutil", "cbor2", "pybase64", "cachetools", "msgspec", "cloudpickle", "py-cpuinfo", "partial-json-parser",
    "uvloop",
)


@nox.session(python="3.11", default=False)
def vllm(session: nox.Session) -> None:
    """vLLM's rotary embedding layer, in a virtual environment of its own: vLLM pins torch and an
    older transformers than rope-suite[all] installs, so it never joins the main environment.
    Installs torch 2.13.0 (CPU build under the CPU constraints), vLLM without its dependencies,
    then what its layer imports, then rope-suite; runs ``rope-suite check vllm`` (quick profile,
    results/check-vllm.json) and the project's tests of the vllm adapter (smoke test against the
    recorded run, reproduction, the published findings' scripts)."""
    args = ["-c", CONSTRAINTS] if CONSTRAINTS else []
    session.install(*args, "torch==2.13.0")
    session.install("--no-deps", VLLM)
    session.install("--no-deps", "xgrammar==0.2.8")  # its own dependencies pull triton, 1 GB the layer never uses
    session.install(*args, *VLLM_IMPORTS)
    session.install(*args, "-e", ".")
    session.run("rope-suite", "check", "vllm", "--json", "results/check-vllm.json", *session.posargs,
                success_codes=[0, 1])  # 1: non-conformant, which the findings explain
    session.run("pytest", "tests/test_conformance_table.py", "tests/test_reproductions.py", "tests/test_findings.py",
                "-k", "vllm")
