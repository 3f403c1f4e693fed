#!/usr/bin/env python3
"""Prints the kernel's target ratios from one relu_kernel_bench JSON run.

    build/bench/relu_kernel_bench --benchmark_format=json > k.json
    python3 bench/kernel_ratios.py k.json

Every ratio compares bytes_per_second of two entries of the same run (read +
written bytes; copies move the same bytes as the kernel). "ours" is the best
SIMD path present (avx512, else avx2). Entries missing from the run (filtered
out, or a path this CPU lacks) are reported as missing, not as failures.
Exit status: 0 when every present target is met, 1 otherwise.
"""
import json
import sys

# Element counts, as the benchmark names carry them.
K, M = 1 << 10, 1 << 20
SIZES = [str(n) for n in (K, 16 * K, 256 * K, 4 * M, 64 * M)]
LARGE = SIZES[2:]
SIZE_64M, SIZE_1K = str(64 * M), str(K)


def load(path):
    with open(path) as f:
        data = json.load(f)
    # With --benchmark_repetitions the median aggregate is used; otherwise
    # the single run of each entry.
    runs, medians = {}, {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if name.endswith("/real_time"):
            name = name[: -len("/real_time")]
        if b.get("run_type", "iteration") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = float(b["bytes_per_second"])
        else:
            runs[name] = float(b["bytes_per_second"])
    runs.update(medians)
    return runs


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    rates = load(sys.argv[1])
    ours = "avx512" if any("/avx512/" in n for n in rates) else "avx2"
    rows = []  # (what, ratio or None, target)

    def ratio(num, den):
        if num in rates and den in rates and rates[den] > 0:
            return rates[num] / rates[den]
        return None

    def best_copy(dtype, size):
        names = [f"copy/{dtype}/{v}/1/{size}" for v in ("memcpy", "stream")]
        present = [n for n in names if n in rates]
        return max(present, key=lambda n: rates[n]) if present else names[0]

    for size in SIZES:
        relu = f"relu/float32/{ours}/1/{size}"
        if size in LARGE:
            den = best_copy("float32", size)
            rows.append((f"{relu} vs best copy ({den.split('/')[2]})",
                         ratio(relu, den), 0.95))
        else:
            rows.append((f"{relu} vs memcpy",
                         ratio(relu, f"copy/float32/memcpy/1/{size}"), 0.8))
    rows.append((f"relu_inplace/float32/{ours}/1/{SIZE_64M} vs memcpy",
                 ratio(f"relu_inplace/float32/{ours}/1/{SIZE_64M}",
                       f"copy/float32/memcpy/1/{SIZE_64M}"), 1.4))
    for dtype in ("float32", "float16", "bfloat16"):
        for threads in ("1", "2"):
            for size in SIZES:
                mine = f"relu/{dtype}/{ours}/{threads}/{size}"
                peer = f"onednn_relu/{dtype}/onednn/{threads}/{size}"
                if peer not in rates:
                    continue
                rows.append((f"{mine} vs oneDNN", ratio(mine, peer),
                             2.0 if size == SIZE_1K else 1.0))
    for size in SIZES[2:4]:
        rows.append((f"relu/float32/{ours} 2 threads vs 1 at {size}",
                     ratio(f"relu/float32/{ours}/2/{size}",
                           f"relu/float32/{ours}/1/{size}"), 1.6))
    for dtype in ("bfloat16", "float16"):
        den = best_copy(dtype, SIZE_64M)
        rows.append((f"relu/{dtype}/{ours}/1/{SIZE_64M} vs best copy "
                     f"({den.split('/')[2]})",
                     ratio(f"relu/{dtype}/{ours}/1/{SIZE_64M}", den), 0.9))

    failed = 0
    width = max(len(r[0]) for r in rows)
    for what, value, target in rows:
        if value is None:
            verdict, shown = "missing", "-"
        else:
            ok = value >= target
            failed += not ok
            verdict, shown = ("pass" if ok else "FAIL"), f"{value:.2f}"
        print(f"{what:<{width}}  {shown:>6}  target >= {target:<4}  {verdict}")
    print(f"targets: {sum(1 for r in rows if r[1] is not None) - failed} met, "
          f"{failed} missed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
