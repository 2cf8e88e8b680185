"""The machine fingerprint stored with every benchmark run: CPU (model, family and the SIMD
extensions the kernels use), cores, memory, GPU and driver, framework versions, and the suite's
own git commit."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# Distributions whose versions decide the numbers (absent ones are left out).
DISTRIBUTIONS: tuple[str, ...] = ("numpy", "torch", "triton", "jax", "jaxlib", "tensorflow", "keras", "keras-hub",
                                  "transformers", "onnx", "onnxruntime", "torchtune", "liger-kernel",
                                  "rotary-embedding-torch", "ultralytics", "pytest-benchmark")
ROOT = Path(__file__).resolve().parents[1]
# The SIMD extensions a CPU kernel's code path depends on (x86 ``flags`` and Arm ``Features``
# names of /proc/cpuinfo), in the order they are listed: the model name alone ("AMD EPYC") does
# not tell a Zen 3 from a Zen 4, whose AVX-512 BF16 changes torch-cpp's bfloat16 path.
SIMD_FLAGS: tuple[str, ...] = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                               "avx512_fp16", "amx_bf16", "asimd", "asimdhp", "bf16", "sve", "sve2")


def cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor's fields in ``text``, by default /proc/cpuinfo's ({} where there is none)."""
    fields: dict[str, str] = {}
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return fields
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_id(info: dict[str, str] | None = None) -> str | None:
    """Vendor, family, model and stepping ("AuthenticAMD family 25 model 17 stepping 1"): the
    microarchitecture behind a model name; None where ``info`` (:func:`cpuinfo`) gives no family."""
    info = cpuinfo() if info is None else info
    if "cpu family" in info:
        return (f"{info.get('vendor_id', '?')} family {info['cpu family']} model {info.get('model', '?')} "
                f"stepping {info.get('stepping', '?')}")
    if "CPU implementer" in info:  # Arm
        return f"implementer {info['CPU implementer']} part {info.get('CPU part', '?')}"
    return None


def cpu_simd(info: dict[str, str] | None = None) -> list[str]:
    """Which of :data:`SIMD_FLAGS` the CPU of ``info`` (:func:`cpuinfo`) has."""
    info = cpuinfo() if info is None else info
    have = set((info.get("flags") or info.get("Features") or "").split())
    return [flag for flag in SIMD_FLAGS if flag in have]


def memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def last_level_cache_bytes() -> int | None:
    """Size of the largest CPU cache (sysfs), or None where it cannot be read. A case whose
    bytes fit in it is timed against cache bandwidth, not memory bandwidth."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        if text[:-1].isdigit() and text[-1] in units:
            sizes.append(int(text[:-1]) * units[text[-1]])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes, default=None)


def available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gpus() -> tuple[list[str], str | None]:
    """(GPU names, driver version) from nvidia-smi; ([], None) without an NVIDIA GPU."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return [], None
    rows = [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not rows:
        return [], None
    return [r[0] for r in rows], rows[0][1] if len(rows[0]) > 1 else None


def git_commit() -> tuple[str | None, bool | None]:
    """(commit, working tree dirty) of the suite's checkout; (None, None) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=20)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, timeout=20)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def fingerprint() -> dict[str, Any]:
    """Everything that identifies the machine and the software a run measured."""
    names, driver = gpus()
    commit, dirty = git_commit()
    try:
        suite = metadata.version("rope-suite")
    except metadata.PackageNotFoundError:
        suite = None
    machine = {
        "cpu_model": cpu_model(),
        "cpu_id": cpu_id(),
        "cpu_simd": cpu_simd(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "llc_bytes": last_level_cache_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "gpus": names,
        "gpu_driver": driver,
        "versions": versions(),
        "rope_suite_version": suite,
        "git_commit": commit,
        "git_dirty": dirty,
    }
    machine["machine_id"] = machine_id(machine)
    return machine


def machine_id(machine: dict[str, Any]) -> str:
    """A short stable id of the hardware (CPU, cores, memory, GPUs), not of the software."""
    key = json.dumps([machine.get("cpu_model"), machine.get("cpu_cores"), machine.get("memory_bytes"),
                      machine.get("gpus")], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:10]
