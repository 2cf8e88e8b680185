"""``rope-suite check`` against plug-ins that crash, hang, lie or break the contract: real
subprocesses over the deliberately broken plug-ins in tests/plugins/.

Each run picks a few cases with ``-k`` so the whole file stays around two and a half minutes;
the runs over a plug-in that never returns take every case, to show that the run ends anyway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rope_suite.conformance.budget import format_bytes, machine_memory, parse_bytes
from rope_suite.conformance.crashes import condense_stderr
from rope_suite.conformance.hangs import HangWatch
from rope_suite.conformance.plan import plan

from conftest import PLUGINS, rope_suite, sigint_as_in_a_terminal

CRASHING = "agreement/gpt-j-6b/float32/per_row"  # where the crashing plug-ins crash; the cases around it run
AROUND = "agreement and float32/per_row and (llama2-7b or gpt-j-6b or linear-x4) and not int32 and not b2s4h4"


def plugin(name: str) -> str:
    return str(PLUGINS / f"{name}.py")


def by_target(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text())
    return {Path(r["target"]).stem: r for r in (data if isinstance(data, list) else [data])}


def case(report: dict, case_id: str) -> dict:
    return next(c for c in report["checks"] if c["id"] == case_id)


# --- crash isolation ---------------------------------------------------------------------------------

def test_crashing_plugins_are_reported_and_every_other_case_and_target_still_runs(tmp_path: Path) -> None:
    crashing = {"segfaults": "killed by SIGSEGV (signal 11)", "aborts": "killed by SIGABRT (signal 6)",
                "exits": "exited with code 3", "killed": "killed by SIGKILL (signal 9)",
                "exhausts_memory": "rope() raised MemoryError"}
    proc = rope_suite("check", *map(plugin, crashing), "numpy", "-k", AROUND, "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    reports = by_target(tmp_path / "r.json")
    for name, how in crashing.items():
        report = reports[name]
        crashed = case(report, CRASHING)
        assert crashed["status"] == "crashed" and how in crashed["reason"], crashed
        assert report["verdict"] == "non-conformant" and report["summary"]["crashed"] == 1, report["summary"]
        # the case before the crash is kept, the one after ran in a fresh worker
        assert case(report, "agreement/llama2-7b/float32/per_row")["status"] == "passed"
        assert case(report, "agreement/linear-x4/float32/per_row")["status"] == "passed"
        assert f"{plugin(name)}: crashed while running {CRASHING}" in proc.stdout or name == "exhausts_memory"
    segv = case(reports["segfaults"], CRASHING)["reason"]
    assert "segfaults.py: about to read address 0" in segv and "Fatal Python error: Segmentation fault" in segv
    assert 'segfaults.py", line' in segv  # the tail of stderr shows where it died
    assert "assertion `rotary_dim == head_dim' failed" in case(reports["aborts"], CRASHING)["reason"]
    assert "(out of memory)" in case(reports["exhausts_memory"], CRASHING)["reason"]
    assert reports["numpy"]["verdict"] == "conformant" and reports["numpy"]["summary"]["passed"] == 3


def test_a_crash_in_another_projects_tests_keeps_xdists_own_report(tmp_path: Path) -> None:
    """The plugin is active wherever rope-suite is installed: it must leave other crashes alone."""
    (tmp_path / "test_other.py").write_text("import os\n\ndef test_crash():\n    os.abort()\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "1", "test_other.py"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1 and "crashed while running 'test_other.py::test_crash'" in proc.stdout, proc.stdout
    assert "rope-suite" not in proc.stdout


# --- hangs ---------------------------------------------------------------------------------------------

def test_hanging_cases_time_out_with_their_case_id_and_the_run_goes_on(tmp_path: Path) -> None:
    # gpt-j-6b sleeps (the timeout signal stops it); sam2 blocks the signal first, so the
    # faulthandler watchdog has to kill its worker
    proc = rope_suite("check", plugin("hangs"), "--case-timeout", "2", "--json", "r.json", "-k",
                      "agreement and float32/per_row and (llama2-7b or gpt-j-6b or sam2 or linear-x4) "
                      "and not int32 and not b2s4h4", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = by_target(tmp_path / "r.json")["hangs"]
    signalled, watchdog = case(report, CRASHING), case(report, "agreement/sam2/float32/per_row")
    assert signalled["status"] == "timed out" and "still running after 2 s, at hangs.py:" in signalled["reason"]
    assert watchdog["status"] == "timed out" and "its worker was killed" in watchdog["reason"]
    assert 'hangs.py", line' in watchdog["reason"]  # faulthandler's stack of the stuck case
    assert [case(report, f"agreement/{s}/float32/per_row")["status"] for s in ("llama2-7b", "linear-x4")] == \
        ["passed", "passed"]
    assert report["summary"]["timed_out"] == 2 and report["verdict"] == "non-conformant"
    assert f"timed out: {CRASHING} still running" in proc.stdout


def test_a_target_that_never_returns_is_stopped_after_three_timeouts_and_the_next_target_runs(
        tmp_path: Path) -> None:
    planned = len(plan("quick")) + 1  # and random_specs
    start = time.monotonic()
    proc = rope_suite("check", plugin("never_returns"), "numpy", "--case-timeout", "2", "--json", "r.json",
                      cwd=tmp_path)
    elapsed = time.monotonic() - start
    # every case waiting for its timeout would take planned * 2 s (over five minutes) for the first target alone
    assert elapsed < 120, f"{elapsed:.0f} s"
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    reports = by_target(tmp_path / "r.json")
    hung = reports["never_returns"]
    statuses = [c["status"] for c in hung["checks"]]
    assert statuses.count("timed out") == 3 and statuses.count("not run") == planned - 3, hung["summary"]
    assert hung["summary"]["passed"] == 0 and hung["summary"]["failed"] == planned
    assert hung["verdict"] == "non-conformant" and "hung" in hung["stopped"]
    assert all(c["reason"] == f"{plugin('never_returns')}: not run: the target hung"
               for c in hung["checks"] if c["status"] == "not run")
    lines = [line for line in proc.stdout.splitlines() if ": hung: " in line]
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith(f"{plugin('never_returns')}: hung: 3 cases in a row timed out after 2 s (agreement/")
    assert lines[0].endswith(f"so its run was stopped; {planned - 3} cases not run (--max-timeouts 3)")
    assert reports["numpy"]["verdict"] == "conformant" and reports["numpy"]["summary"]["not_run"] == 0


def test_the_timeout_count_starts_again_when_a_case_ends_any_other_way() -> None:
    timed_out, passed = {"implementation": "p.py", "id": "a", "status": "timed out", "timeout_s": 2.0}, \
        {"implementation": "p.py", "id": "b", "status": "passed"}
    watch = HangWatch(3)
    assert watch.see([timed_out, timed_out, passed, timed_out]) is None
    assert watch.see([timed_out]) is None
    assert watch.see([timed_out]) == "3 cases in a row timed out"
    assert watch.diagnosis(7) == ("p.py: hung: 3 cases in a row timed out after 2 s (a, a, a), so its run was "
                                  "stopped; 7 cases not run (--max-timeouts 3)")
    assert HangWatch(0).see([timed_out] * 10) is None


def test_max_timeouts_0_lets_every_case_time_out(tmp_path: Path) -> None:
    proc = rope_suite("check", plugin("never_returns"), "--case-timeout", "1", "--max-timeouts", "0", "--json",
                      "r.json", "-k", "agreement and float32/per_row and (llama2-7b or gpt-j-6b or sam2 or linear-x4) "
                      "and not int32 and not b2s4h4", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    report = by_target(tmp_path / "r.json")["never_returns"]
    assert report["summary"]["timed_out"] == 4 and report["summary"]["not_run"] == 0 and "stopped" not in report
    assert ": hung: " not in proc.stdout


# --- bad plug-ins ----------------------------------------------------------------------------------------

BAD = {
    "wrong_shape": "rope() returned shape (2, 6, 3, 126), but x has shape (2, 6, 3, 128)",
    "wrong_dtype": "rope() returned dtype float64, but x is float32",
    "not_an_array": "rope() returned builtins.list, not a numpy array",
    "nan_output": "rope() returned 2 non-finite values (first nan at x[0, 0, 0, 0]) for finite x",
    "supports_raises": "supports(spec, 'float32') raised TypeError: 'NoneType' object is not subscriptable",
    "rope_raises": "rope() raised ValueError: convention 'interleaved' is not implemented",
}
UNLOADABLE = {
    "import_error": "importing {path} failed: ModuleNotFoundError: No module named 'rope_suite_no_such_dependency'",
    "no_rope": "rope missing: has no callable rope(x, positions, spec)",
    "unknown_framework": "unknown framework: framework='mxnet' is invalid",
}
TWO_CASES = "agreement/llama2-7b/float32/per_row or agreement/gpt-j-6b/float32/per_row"


def test_broken_plugins_get_a_one_line_diagnosis_and_exit_1(tmp_path: Path) -> None:
    proc = rope_suite("check", *map(plugin, BAD), "-k", TWO_CASES, "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    reports = by_target(tmp_path / "r.json")
    for name, diagnosis in BAD.items():
        line = f"{plugin(name)}: {diagnosis}"
        assert any(out.startswith(line) for out in proc.stdout.splitlines()), f"{line!r} not in:\n{proc.stdout}"
        assert reports[name]["verdict"] == "non-conformant"
        assert any(c["reason"] == line for c in reports[name]["checks"]), reports[name]["checks"]


def test_unloadable_plugins_exit_2_with_one_line_each(tmp_path: Path) -> None:
    proc = rope_suite("check", *map(plugin, UNLOADABLE), "-k", TWO_CASES, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    for name, diagnosis in UNLOADABLE.items():
        lines = [out for out in proc.stdout.splitlines() if out.startswith(f"{plugin(name)}: cannot load: ")]
        assert len(lines) == 1 and diagnosis.format(path=plugin(name)) in lines[0], proc.stdout


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    proc = rope_suite("check", plugin("rope_raises"), "--verbose", "-k", "agreement/gpt-j-6b/float32/per_row",
                      cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stdout and 'rope_raises.py", line' in proc.stdout


# --- no lost results ---------------------------------------------------------------------------------

def test_a_killed_run_keeps_finished_cases_and_resume_runs_only_the_rest(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "rope_suite.conformance.cli", "check", plugin("slow"), "-k", "agreement and float32/per_row",
            "--json", "r.json"]
    stream = tmp_path / "r.json.jsonl"
    run = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # its own process group: kill the run, pytest and its worker
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not stream.exists() or stream.read_text().count("\n") < 4):
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    kept = [json.loads(line) for line in stream.read_text().splitlines() if line.endswith("}")]
    kept_ids = [r["id"] for r in kept]
    planned = len([p for p in plan("quick") if p.check == "agreement" and "float32/per_row" in p.id])
    assert 4 <= len(kept_ids) < planned and len(set(kept_ids)) == len(kept_ids), kept_ids
    assert all(r["status"] == "passed" for r in kept)
    assert not (tmp_path / "r.json").exists()  # the final report was never half-written

    proc = rope_suite("check", plugin("slow"), "-k", "agreement and float32/per_row", "--json", "r.json",
                      "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"resumed: {len(kept_ids)} cases" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    ids = [c["id"] for c in report["checks"]]
    assert len(ids) == planned and len(set(ids)) == planned and set(kept_ids) <= set(ids)
    assert report["summary"]["passed"] == planned and report["verdict"] == "conformant"
    # the stream is append-only: a finished case run again would appear twice
    lines = [json.loads(line)["id"] for line in stream.read_text().splitlines() if line.strip()]
    assert sorted(lines) == sorted(ids), "a finished case was run again"


def test_resume_needs_the_report_it_continues(tmp_path: Path) -> None:
    proc = rope_suite("check", "numpy", "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "--resume continues the run of --json FILE" in proc.stderr


# --- stopping ------------------------------------------------------------------------------------------

TAG = "ROPE_SUITE_TEST_TAG"  # in the environment of the run under test, so of everything it starts


def tagged(tag: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment has TAG=tag (a zombie has none)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"{TAG}={tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal and /proc are Linux's")
@pytest.mark.parametrize("command, sig, code", [
    ("check", signal.SIGKILL, -signal.SIGKILL),  # a CI job's timeout: no chance to clean up
    ("check", signal.SIGTERM, 128 + signal.SIGTERM),
    ("check", signal.SIGINT, 130),
    ("bench", signal.SIGKILL, -signal.SIGKILL),
], ids=["check-SIGKILL", "check-SIGTERM", "check-SIGINT", "bench-SIGKILL"])
def test_a_stopped_run_leaves_none_of_its_processes_running(tmp_path: Path, command: str, sig: signal.Signals,
                                                            code: int) -> None:
    tag, marker = uuid.uuid4().hex, tmp_path / "hanging"
    env = {**os.environ, TAG: tag, "ROPE_SUITE_TEST_HANGING": str(marker)}
    args = ["--case-timeout", "600"] if command == "check" else ["--quick", "--results", "out/bench.json"]
    run = subprocess.Popen([sys.executable, "-m", "rope_suite.conformance.cli", command, plugin("never_returns"),
                            *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           preexec_fn=sigint_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"the plug-in was never called (exit {run.poll()})"
        started = tagged(tag)
        assert len(started) >= (3 if command == "check" else 2), started  # the CLI, pytest (and its xdist worker)
        os.kill(run.pid, sig)  # this process alone, as a CI job's timeout would: not its group
        assert run.wait(timeout=60) == code
        deadline = time.monotonic() + 5
        while tagged(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not tagged(tag), f"still running after the run was stopped: {tagged(tag)}"
    finally:
        for pid in tagged(tag):  # started by this test: do not leave them to the next one
            os.kill(pid, signal.SIGKILL)


# --- resource guard ------------------------------------------------------------------------------------

def test_cases_over_the_memory_budget_are_skipped_before_allocating(tmp_path: Path) -> None:
    # exhausts_memory.py runs out of memory on gpt-j-6b: skipped, it never gets the chance
    proc = rope_suite("check", plugin("exhausts_memory"), "--memory-budget", "100KiB", "--json", "r.json",
                      "-k", "agreement and float32/per_row and (gpt-j-6b or linear-x4)", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = by_target(tmp_path / "r.json")["exhausts_memory"]
    skipped = case(report, CRASHING)
    assert skipped["status"] == "skipped", skipped
    assert skipped["reason"] == ("needs about 360.1 KiB for its inputs and outputs, over the memory budget of "
                                 "100.0 KiB (--memory-budget)")
    assert case(report, "agreement/linear-x4/float32/per_row")["status"] == "passed"
    assert report["summary"]["crashed"] == 0


def test_memory_budget_values() -> None:
    assert parse_bytes("100KiB") == 102400 and parse_bytes("2GB") == 2 * 10**9 and parse_bytes("4096") == 4096
    assert parse_bytes("50%") == machine_memory() // 2
    assert format_bytes(368_736) == "360.1 KiB"
    with pytest.raises(ValueError, match="memory budget 'lots' is invalid"):
        parse_bytes("lots")


def test_invalid_memory_budget_is_a_usage_error(tmp_path: Path) -> None:
    proc = rope_suite("check", "numpy", "--memory-budget", "lots", cwd=tmp_path)
    assert proc.returncode == 2 and "memory budget 'lots' is invalid" in proc.stderr


def test_condensed_stderr_keeps_the_plugin_frames_not_the_runners() -> None:
    dump = "\n".join([
        "my_rope.py: about to crash",
        "Fatal Python error: Segmentation fault",
        "",
        "Thread 0x00007f01 (most recent call first):",
        '  File "/venv/site-packages/execnet/gateway_base.py", line 534 in read',
        "",
        "Current thread 0x00007f02 (most recent call first):",
        '  File "/src/my_rope.py", line 9 in rope',
        '  File "/venv/site-packages/_pytest/runner.py", line 179 in pytest_runtest_call',
        "",
        "Extension modules: numpy.core._multiarray_umath (total: 1)",
    ])
    assert condense_stderr(dump).splitlines() == [
        "my_rope.py: about to crash", "Fatal Python error: Segmentation fault",
        "Current thread 0x00007f02 (most recent call first):", '  File "/src/my_rope.py", line 9 in rope']
