"""rope-suite's conformance engine, and the map of the whole package.

The repository's four folders install as one namespace, ``rope_suite``: ``conformance/`` is
``rope_suite.conformance``, ``implementations/`` is ``rope_suite.implementations``, and so on.
Their modules form the layers below, lowest first. A module imports only from its own layer
and the layers before it, and no import goes round in a cycle; ``tests/test_architecture.py``
walks every import and fails on an upward import or a cycle.

- **core**: what RoPE is. The spec, the presets, the float64 reference, the accuracy model
  and the framework dtype tables; the record of a diagnosed deviation (``deviations``).
- **implementations**: the first-party implementations, the third-party adapters and the
  mutants. They import core only: each is a plug-in like any user's.
- **results**: the results schema, the rows and their atomic files, and the machine
  fingerprint. Benchmarks write them and reports read them.
- **checks**: the cases, the checks and the plan, the mismatch a failed check reports, the
  hypothesis strategies, and the loaded plug-in under its contract (``subject``).
- **runner**: resolving targets (the registry), the followed subprocess, the pytest plug-in
  (``plugin``: wiring; ``selection``, ``records``, ``isolation``, ``summary``: its work) and its
  test module, crash and hang handling, and ``check`` and ``mutants`` over subprocesses; test
  vectors for other languages (``vectors``: the cases as files, and their outputs judged as
  ``check`` judges).
- **benchmarks**: timing against the copy roofline, one process per target.
- **reports**: the conformance table, the HTML and Markdown report, and compare.
- **commands**: the one ``rope-suite`` command line.
"""

# (layer, module prefixes under rope_suite), lowest layer first; read by tests/test_architecture.py
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("conformance.spec", "conformance.presets", "conformance.reference", "conformance.accuracy",
              "conformance.frameworks", "conformance.budget", "conformance.deviations")),
    ("implementations", ("implementations",)),
    ("results", ("reports.schema", "reports.results", "reports.machine")),
    ("checks", ("conformance.cases", "conformance.strategies", "conformance.mismatch", "conformance.checks",
                "conformance.plan", "conformance.subject")),
    ("runner", ("conformance.targets", "conformance.process", "conformance.crashes", "conformance.hangs",
                "conformance.records", "conformance.selection", "conformance.isolation", "conformance.summary",
                "conformance.plugin", "conformance.test_conformance", "conformance.check_command",
                "conformance.mutation", "conformance.vectors")),
    ("benchmarks", ("benchmarks",)),
    ("reports", ("reports",)),
    ("commands", ("conformance.cli",)),
)
