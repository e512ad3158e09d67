#!/usr/bin/env python3
"""The shape of slipway's code, for reviews: the longest functions, and the
circles in the module graph (module A uses module B and B, through any path,
uses A). Reads src/ as text: a `fn` runs from its signature to the brace
that closes its body; a module uses another when it names `crate::x::y` or
`super::y` in a `use` or a path (comments aside). Test modules (`mod tests`) are left out.

    python3 scripts/code_shape.py [--top N] [--depth D]

--depth 1 looks at top-level modules only (config, notify, pipeline, …):
`config::notify` using `notify` and `notify` using `config` is then a circle.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    for root, _, files in os.walk(SRC):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            yield "::".join(rel) or "crate", path


def strip_tests(text):
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: m.start()] if m else text


def functions(text):
    """(name, first line, line count) of every fn with a body."""
    out = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", text):
        i = m.end()
        depth_paren = 0
        # find the body's opening brace (skip `;` = declaration without body)
        while i < len(text):
            c = text[i]
            if c == "(":
                depth_paren += 1
            elif c == ")":
                depth_paren -= 1
            elif c == ";" and depth_paren == 0:
                i = -1
                break
            elif c == "{" and depth_paren == 0:
                break
            i += 1
        if i < 0 or i >= len(text):
            continue
        depth, j = 0, i
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        start = text.count("\n", 0, m.start()) + 1
        end = text.count("\n", 0, j) + 1
        out.append((m.group(1), start, end - start + 1))
    return out


def uses(mod, text):
    # Paths named in comments (docs pointing at a module) are no dependency.
    text = re.sub(r"//[^\n]*", "", text)
    deps = set()
    parent = mod.rsplit("::", 1)[0] if "::" in mod else "crate"
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?", text):
        deps.add(m.group(1))
        if m.group(2):
            deps.add(m.group(1) + "::" + m.group(2))
    for m in re.finditer(r"\bsuper::([a-z_][a-z0-9_]*)", text):
        deps.add((parent + "::" if parent != "crate" else "") + m.group(1))
    return deps


def main():
    top = 10
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    depth = None
    if "--depth" in sys.argv:
        depth = int(sys.argv[sys.argv.index("--depth") + 1])
    mods = {}
    fns = []
    for mod, path in modules():
        with open(path, encoding="utf-8") as f:
            text = strip_tests(f.read())
        mods[mod] = text
        for name, line, n in functions(text):
            fns.append((n, f"{mod}::{name}", os.path.relpath(path, os.path.join(SRC, "..")), line))
    fns.sort(reverse=True)
    print(f"longest functions (top {top}):")
    for n, name, path, line in fns[:top]:
        print(f"  {n:4} lines  {name}  ({path}:{line})")
    # Module graph at the granularity of the modules that exist.
    graph = {}
    for mod, text in mods.items():
        deps = {d for d in uses(mod, text) if d in mods and d != mod}
        # a module does not "use" its own parent through `super::` for a cycle
        deps = {d for d in deps if not mod.startswith(d + "::")}
        graph[mod] = deps
    if depth:
        cut = lambda m: "::".join(m.split("::")[:depth])
        collapsed = {}
        for mod, deps in graph.items():
            collapsed.setdefault(cut(mod), set()).update(cut(d) for d in deps if cut(d) != cut(mod))
        graph = collapsed
    # Strongly connected components (Tarjan).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    print(f"module circles: {len(sccs)}")
    for comp in sccs:
        edges = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
        print(f"  {{{', '.join(comp)}}}")
        for e in edges:
            print(f"    {e}")


if __name__ == "__main__":
    main()
