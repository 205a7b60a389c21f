"""Forward-only Monte Carlo statistics: kernel sampling against drawing every weight.

One run compares, on the same network and with the same per-layer statistics
(``initlab.core.montecarlo.dense_statistics``: moments, kurtosis, pair
correlation, post-activation moments, dead units):

  (k) ``simulate(..., backward=False)``: the kernel-sampling path, which draws
      each layer's pre-activations as H = L·Z and never a weight;
  (a) a plain numpy forward pass that draws every weight
      (``Generator.standard_normal``, float32) and multiplies;
  (b) a PyTorch CPU forward pass with real weights (``torch.randn``, float32),
      skipped with a message when torch is not installed
      (``pip install -r benchmarks/requirements.txt``).

Each path runs in its own subprocess, so its peak memory is its own: the
growth of the resident set (the peak, VmHWM, over the RSS before the work) and,
for the numpy paths, tracemalloc's peak. Then simulate's traced peak at depth
10 against depth 100. Defaults: width 4096, depth 24, batch 256, ReLU with
Kaiming-normal weights (std √(2/fan_in)).

Usage: python benchmarks/bench_montecarlo.py [--width N] [--depth N]
[--batch N] [--repeat N] [--threads N] [--check]   (each path runs
``--repeat`` times, interleaved, and its fastest run counts; ``--threads``
sets the BLAS/OpenMP threads of every path; ``--check`` exits 1 when an
acceptance ratio fails)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))

from initlab.core.activations import make_activation  # noqa: E402
from initlab.core.montecarlo import dense_statistics, simulate  # noqa: E402
from initlab.core.network import Dense, Draw, Network  # noqa: E402

ACTIVATION = make_activation("relu")
SPEEDUP_REQUIRED = 10.0
MEMORY_RATIO_ALLOWED = 1.2
SEED = 0
# Read by OpenBLAS (numpy), OpenMP and MKL (torch) when a process starts.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def kaiming_mlp(depth: int, width: int) -> Network:
    """ReLU layers of equal width, weights N(0, 2/fan_in), no biases."""
    std = math.sqrt(2.0 / width)
    layers = tuple(
        Dense(f"layer{i}", width, width, width, Draw("normal", std), None, ACTIVATION)
        for i in range(depth)
    )
    return Network(width, layers)


def unit_inputs(batch: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian rows scaled to mean square 1, float32 (as simulate's inputs)."""
    x = rng.standard_normal((batch, width))
    x *= math.sqrt(width) / np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


# --- the three paths ------------------------------------------------------------


def kernel_path(depth: int, width: int, batch: int) -> list[float]:
    result = simulate(
        kaiming_mlp(depth, width),
        batch_size=batch,
        seeds=1,
        seed=SEED,
        input_second_moment=1.0,
        backward=False,
    )
    assert {row.sampling for row in result.layers} == {"kernel"}
    return result.values["second_moment"][0].tolist()


def numpy_path(depth: int, width: int, batch: int) -> list[float]:
    rng = np.random.default_rng(SEED)
    std = np.float32(math.sqrt(2.0 / width))
    x = unit_inputs(batch, width, rng)
    second_moments = []
    for _ in range(depth):
        weight = rng.standard_normal((width, width), dtype=np.float32)
        weight *= std
        h = x @ weight.T
        del weight
        stats, x = dense_statistics(ACTIVATION, h)
        second_moments.append(stats["second_moment"])
    return second_moments


def torch_path(depth: int, width: int, batch: int) -> list[float]:
    import torch

    torch.manual_seed(SEED)
    std = math.sqrt(2.0 / width)
    x = torch.from_numpy(unit_inputs(batch, width, np.random.default_rng(SEED)))
    second_moments = []
    with torch.no_grad():
        for _ in range(depth):
            weight = torch.randn(width, width, dtype=torch.float32)
            weight *= std
            h = x @ weight.T
            del weight
            stats, activated = dense_statistics(ACTIVATION, h.numpy())
            x = torch.from_numpy(activated)
            second_moments.append(stats["second_moment"])
    return second_moments


PATHS = {"k": kernel_path, "a": numpy_path, "b": torch_path}
LABELS = {
    "k": "(k) simulate, kernel sampling",
    "a": "(a) numpy, every weight drawn",
    "b": "(b) torch CPU, every weight drawn",
}


# --- one measurement, in a subprocess of its own -----------------------------------


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(path: str, depth: int, width: int, batch: int, traced: bool) -> dict:
    """Time one path after a one-layer warm-up; its memory growth from the start.

    Growth is the peak resident set of this process image (VmHWM, which unlike
    ru_maxrss does not carry the parent's peak over fork and exec) less the
    resident set after the imports, before the warm-up, so buffers the
    libraries allocate on first use count.
    """
    if path == "b":
        import torch  # noqa: F401  (its import is not the path's memory)
    before = _status_kib("VmRSS")
    PATHS[path](1, width, batch)
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    second_moments = PATHS[path](depth, width, batch)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    peak = _status_kib("VmHWM")
    return {
        "seconds": seconds,
        "rss_growth_bytes": max(peak - before, 0) * 1024,
        "traced_peak_bytes": traced_peak,
        "second_moments": second_moments,
    }


def in_subprocess(
    path: str, depth: int, width: int, batch: int, traced: bool, threads: int | None
) -> dict:
    environment = dict(os.environ)
    if threads is not None:
        for variable in THREAD_VARIABLES:
            environment[variable] = str(threads)
    command = [
        sys.executable,
        __file__,
        "--measure",
        path,
        "--depth",
        str(depth),
        "--width",
        str(width),
        "--batch",
        str(batch),
    ]
    if traced:
        command.append("--traced")
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout)


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


# --- the report ----------------------------------------------------------------------


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=24)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--measure", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        result = measure(args.measure, args.depth, args.width, args.batch, args.traced)
        print(json.dumps(result))
        return 0

    torch_version = _torch_version()
    print(
        f"width {args.width}, depth {args.depth}, batch {args.batch}, ReLU, Kaiming"
        f" normal (std √(2/{args.width})), float32"
    )
    threads = args.threads or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch"
        f" {torch_version or 'not installed'}, {os.cpu_count()} CPUs,"
        f" {platform.processor() or platform.machine()}, BLAS threads {threads}"
    )
    print()

    available = [path for path in PATHS if path != "b" or torch_version]
    if torch_version is None:
        print(
            f"{LABELS['b']}: skipped, torch is not installed"
            " (pip install -r benchmarks/requirements.txt)"
        )
    # Interleaved repeats, the fastest run of each path kept: other work on the
    # machine only ever slows a run down.
    results: dict[str, dict] = {}
    for _ in range(args.repeat):
        for path in available:
            run = in_subprocess(
                path, args.depth, args.width, args.batch, path != "b", args.threads
            )
            best = results.get(path)
            if (
                best is None
                or "error" in best
                or ("error" not in run and run["seconds"] < best["seconds"])
            ):
                results[path] = run
    print(f"fastest of {args.repeat} interleaved runs per path")

    header = f"{'path':36} {'time s':>8} {'ms/layer':>9} {'RSS MiB':>8} {'traced':>8}"
    print(header)
    for path, result in results.items():
        if "error" in result:
            print(f"{LABELS[path]:36} failed: {result['error']}")
            continue
        seconds = result["seconds"]
        print(
            f"{LABELS[path]:36} {seconds:8.2f} {1000 * seconds / args.depth:9.1f}"
            f" {_mib(result['rss_growth_bytes'])} {_mib(result['traced_peak_bytes'])}"
        )

    kernel = results.get("k", {})
    verdicts = []
    if "seconds" in kernel:
        print()
        for path in ("a", "b"):
            if "seconds" in results.get(path, {}):
                ratio = results[path]["seconds"] / kernel["seconds"]
                passed = ratio >= SPEEDUP_REQUIRED
                verdicts.append(passed)
                print(
                    f"{path}/k = {ratio:5.1f}  (at least {SPEEDUP_REQUIRED:g}×:"
                    f" {'yes' if passed else 'NO'})"
                )
        layers = sorted({0, args.depth // 2, args.depth - 1})
        print()
        print("second moment of the pre-activations (Kaiming keeps 2.0; each path")
        print("draws its own network, so they differ by the finite-width spread):")
        for path, result in results.items():
            if "second_moments" in result:
                values = ", ".join(
                    f"layer {i + 1}: {result['second_moments'][i]:.3f}" for i in layers
                )
                print(f"  {path}: {values}")

    print()
    shallow = in_subprocess("k", 10, args.width, args.batch, True, args.threads)
    deep = in_subprocess("k", 100, args.width, args.batch, True, args.threads)
    if "error" in shallow or "error" in deep:
        print(
            f"memory at depth 10/100 failed: {shallow.get('error', deep.get('error'))}"
        )
        verdicts.append(False)
    else:
        ratio = deep["traced_peak_bytes"] / shallow["traced_peak_bytes"]
        rss_ratio = deep["rss_growth_bytes"] / max(shallow["rss_growth_bytes"], 1)
        passed = ratio <= MEMORY_RATIO_ALLOWED
        verdicts.append(passed)
        print(
            "simulate's peak memory, forward-only: depth 10"
            f" {_mib(shallow['traced_peak_bytes']).strip()} MiB traced"
            f" ({_mib(shallow['rss_growth_bytes']).strip()} MiB RSS), depth 100"
            f" {_mib(deep['traced_peak_bytes']).strip()} MiB traced"
            f" ({_mib(deep['rss_growth_bytes']).strip()} MiB RSS)"
        )
        print(
            f"depth 100 / depth 10 = {ratio:.3f} traced, {rss_ratio:.3f} RSS"
            f"  (at most {MEMORY_RATIO_ALLOWED}×: {'yes' if passed else 'NO'})"
        )

    if args.check and not all(verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
