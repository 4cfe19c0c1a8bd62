#!/usr/bin/env python3
"""What including durable costs a compiler: g++ -std=c++20 -fsyntax-only of one line,
`#include <durable/durable.hpp>`, against the same for the standard headers that durable.hpp
needs (every `#include <...>` of durable's own headers that it reaches), in one run, interleaved.

    benchmarks/include_cost.py [--compiler g++] [--repetitions 7] [--json out.json]
    benchmarks/include_cost.py --instructions          # counted under valgrind instead

Prints both times (medians of wall-clock and CPU time, and the fastest CPU time) and their
ratio. With --json, also writes them as Google Benchmark JSON (median aggregates), which
scripts/bench hands to scripts/bench-report for BENCHMARKS.md (group include_cost_<header>,
baseline = the standard headers).

Times on a shared machine move by a fifth from one minute to the next. With --instructions,
each compile runs once under `valgrind --tool=cachegrind --cache-sim=no` (about 15x slower)
and the instructions the compiler executed are counted instead: the same on every run, so a
change to the headers shows its effect exactly, though instructions leave out what memory
costs. Python standard library only.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "include")
QUOTED = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ANGLED = re.compile(r"^\s*#\s*include\s+<([^>]+)>", re.M)


def standard_headers_of(header):
    """The <...> includes of `header` and of every durable header it includes, transitively."""
    seen, found, todo = set(), [], [os.path.join(INCLUDE, header)]
    while todo:
        path = os.path.normpath(todo.pop())
        if path in seen:
            continue
        seen.add(path)
        text = open(path, encoding="utf-8").read()
        for name in ANGLED.findall(text):
            if name.startswith("durable/"):
                todo.append(os.path.join(INCLUDE, name))
            elif name not in found:
                found.append(name)
        for name in QUOTED.findall(text):
            todo.append(os.path.join(os.path.dirname(path), name))
    return sorted(found)


def compile_once(compiler, source):
    """(wall seconds, CPU seconds of the compiler) of one -fsyntax-only compile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([compiler, "-std=c++20", "-fsyntax-only", "-I", INCLUDE, source], check=True,
                   stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions_once(compiler, source):
    """Instructions executed by one -fsyntax-only compile (the driver and the compiler proper)."""
    run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                          "--cachegrind-out-file=/dev/null", compiler, "-std=c++20", "-fsyntax-only", "-I",
                          INCLUDE, source], check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    counts = re.findall(r"^==\d+== I\s+refs:\s+([\d,]+)", run.stderr, re.M)
    if not counts:
        raise SystemExit("include_cost: valgrind printed no instruction count")
    return sum(int(c.replace(",", "")) for c in counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compiler", default="g++")
    ap.add_argument("--repetitions", type=int, default=7)
    ap.add_argument("--header", action="append", help="durable header(s) to measure (default: durable/durable.hpp)")
    ap.add_argument("--json", help="also write Google Benchmark JSON here")
    ap.add_argument("--instructions", action="store_true",
                    help="count the compiler's instructions under valgrind (once each) instead of timing")
    args = ap.parse_args()
    headers = args.header or ["durable/durable.hpp"]
    version = subprocess.run([args.compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    with tempfile.TemporaryDirectory() as tmp:
        cases = []  # (group, role name, source)
        for header in headers:
            group = "include_cost_" + os.path.basename(header)
            std = os.path.join(tmp, group + "_std.cpp")
            with open(std, "w") as f:
                f.write("".join(f"#include <{h}>\n" for h in standard_headers_of(header)))
            ours = os.path.join(tmp, group + ".cpp")
            with open(ours, "w") as f:
                f.write(f"#include <{header}>\n")
            cases.append((group, "baseline:its_standard_headers", std))
            cases.append((group, "durable:" + header, ours))

        if args.instructions:
            print(f"{args.compiler} -std=c++20 -fsyntax-only, instructions under cachegrind ({version})")
            baseline = {}
            for group, role, source in cases:
                count = instructions_once(args.compiler, source)
                if role.startswith("baseline"):
                    baseline[group] = count
                    ratio = ""
                else:
                    ratio = f"  {count / baseline[group]:.3f}x the standard headers"
                print(f"  {group}/{role}: {count / 1e6:,.0f}M instructions{ratio}")
            return 0

        for _, _, source in cases:  # warm the file cache
            compile_once(args.compiler, source)
        samples = {i: [] for i in range(len(cases))}
        for _ in range(args.repetitions):  # interleaved
            for i, (_, _, source) in enumerate(cases):
                samples[i].append(compile_once(args.compiler, source))

    print(f"{args.compiler} -std=c++20 -fsyntax-only, median of {args.repetitions} interleaved runs ({version})")
    benchmarks, baseline_cpu = [], {}
    for i, (group, role, _) in enumerate(cases):
        wall = statistics.median(s[0] for s in samples[i])
        cpu = statistics.median(s[1] for s in samples[i])
        fastest = min(s[1] for s in samples[i])
        if role.startswith("baseline"):
            baseline_cpu[group] = (cpu, fastest)
            ratio = ""
        else:
            ratio = (f"  {cpu / baseline_cpu[group][0]:.2f}x the standard headers (CPU time; fastest runs: "
                     f"{fastest / baseline_cpu[group][1]:.2f}x)")
        print(f"  {group}/{role}: {wall:.2f} s wall, {cpu:.2f} s CPU, fastest {fastest:.2f} s CPU{ratio}")
        for aggregate in ("median",):
            benchmarks.append({
                "name": f"{group}/{role}_{aggregate}", "run_name": f"{group}/{role}",
                "run_type": "aggregate", "aggregate_name": aggregate, "family_index": i,
                "per_family_instance_index": 0, "repetitions": args.repetitions, "threads": 1,
                "iterations": args.repetitions, "real_time": wall * 1e3, "cpu_time": cpu * 1e3,
                "time_unit": "ms",
            })
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"context": {"executable": "benchmarks/include_cost.py"}, "benchmarks": benchmarks}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
