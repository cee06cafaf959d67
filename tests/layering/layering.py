#!/usr/bin/python3
"""layering.py - checks that the broker's files call only downward (broker/README.md).

Reads the layer table (broker/layers.txt: one line per file, "file rank
layer"), runs nm on the given object files and static archives, maps
every undefined symbol of a file to the file that defines it, and fails
when a file calls a file of a higher rank, an endpoint calls another
endpoint of its own rank, files of one rank call each other in a circle,
or an object file is missing from the table.

    layering.py --table broker/layers.txt libgdbroker.a main.c.o
    layering.py --table T --expect-violation low:high OBJECTS...

With --expect-violation CALLER:CALLEE it succeeds only when that call is
among the violations found (the check's own test).
"""
import argparse
import os
import subprocess
import sys

DEFINED = set("TDBRCGSVW")
SIDEWAYS_FORBIDDEN = {"endpoint"}


def read_table(path):
    table = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                sys.exit(f"{path}:{n}: expected 'file rank layer', got {line!r}")
            try:
                rank = float(parts[1])
            except ValueError:
                sys.exit(f"{path}:{n}: rank {parts[1]!r} is not a number")
            table[parts[0]] = (rank, parts[1], parts[2])
    return table


def module_of(member, table):
    """'store.c.o' or 'store.o' -> 'store'. Meson names the object of a
    source in a subdirectory after its path ('layering_low.c.o'): that is
    the table's 'low'."""
    name = os.path.basename(member)
    for suffix in (".c.o", ".o"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name in table:
        return name
    for key in sorted(table, key=len, reverse=True):
        if name.endswith("_" + key):
            return key
    return name


def read_symbols(paths, table):
    """Returns (defined: symbol -> module, undefined: module -> set of symbols)."""
    defined, undefined = {}, {}
    for path in paths:
        out = subprocess.run(["nm", path], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"nm {path} failed: {out.stderr.strip()}")
        module = None if path.endswith(".a") else module_of(path, table)
        if module:
            undefined.setdefault(module, set())
        for line in out.stdout.splitlines():
            if line.endswith(":") and " " not in line:  # archive member header
                module = module_of(line[:-1], table)
                undefined.setdefault(module, set())
                continue
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                undefined[module].add(parts[1])
            elif len(parts) == 3 and parts[1] in DEFINED:
                defined[parts[2]] = module
    return defined, undefined


def find_cycles(edges):
    """Circles in a graph {node: set(nodes)}; each as a list of nodes."""
    cycles, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return cycles


def check(table, defined, undefined):
    problems, violations = [], set()
    for module in sorted(undefined):
        if module not in table:
            problems.append(f"{module}.c is not in the layer table: give it a layer")
    calls = {}
    for caller in sorted(undefined):
        for sym in sorted(undefined[caller]):
            callee = defined.get(sym)
            if callee is None or callee == caller:
                continue
            calls.setdefault(caller, {}).setdefault(callee, []).append(sym)
    same_rank = {}
    for caller, callees in sorted(calls.items()):
        if caller not in table:
            continue
        crank, cname, clayer = table[caller]
        for callee, syms in sorted(callees.items()):
            if callee not in table:
                continue
            erank, ename, elayer = table[callee]
            if erank > crank:
                why = "a file may call only files of lower layers"
            elif erank == crank and clayer in SIDEWAYS_FORBIDDEN:
                why = "an endpoint may not call an endpoint of its own rank"
            else:
                if erank == crank:
                    same_rank.setdefault(caller, set()).add(callee)
                continue
            violations.add((caller, callee))
            problems.append(
                f"{caller}.c (layer {cname} {clayer}) calls {', '.join(syms)} "
                f"in {callee}.c (layer {ename} {elayer}): {why}; "
                f"go through the effects (broker/effects.h) or move the code down")
    for cycle in find_cycles(same_rank):
        violations.add(tuple(cycle[:2]))
        problems.append("files of one layer call each other in a circle: "
                        + " -> ".join(f"{m}.c" for m in cycle))
    return problems, violations


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--expect-violation", metavar="CALLER:CALLEE")
    ap.add_argument("objects", nargs="+")
    args = ap.parse_args()
    table = read_table(args.table)
    defined, undefined = read_symbols(args.objects, table)
    if not undefined:
        sys.exit("no object files read")
    problems, violations = check(table, defined, undefined)
    if args.expect_violation:
        want = tuple(args.expect_violation.split(":", 1))
        for p in problems:
            print(p)
        if want in violations:
            print(f"ok: the call {want[0]} -> {want[1]} is reported")
            return 0
        print(f"FAIL: the call {want[0]} -> {want[1]} is not reported")
        return 1
    for p in problems:
        print("layering:", p)
    if problems:
        return 1
    print(f"ok: {len(undefined)} files, every call goes downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
