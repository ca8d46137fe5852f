"""``bundler diff``: what changed between two bundles' manifests."""

from __future__ import annotations

from typing import Any

from ..bundle.manifest import Environment, Manifest
from ..model.pins import Pin


def _pinned(p: Pin) -> str:
    return p.pinned


def _match(a: list[Pin], b: list[Pin]) -> tuple[list[Pin], list[Pin], list[tuple[Pin, Pin]]]:
    """Pair models by (source, id) where that is unambiguous, else by their whole key."""
    def groups(pins: list[Pin]) -> dict[tuple, list[Pin]]:
        g: dict[tuple, list[Pin]] = {}
        for p in pins:
            g.setdefault((p.source, p.id), []).append(p)
        return g

    ga, gb = groups(a), groups(b)
    removed: list[Pin] = []
    added: list[Pin] = []
    pairs: list[tuple[Pin, Pin]] = []
    for k in sorted(set(ga) | set(gb)):
        la, lb = ga.get(k, []), gb.get(k, [])
        if len(la) == 1 and len(lb) == 1:
            pairs.append((la[0], lb[0]))
            continue
        kb = {p.key: p for p in lb}
        for p in la:
            if p.key in kb:
                pairs.append((p, kb.pop(p.key)))
            else:
                removed.append(p)
        added.extend(kb.values())
    return added, removed, pairs


def diff(a: Manifest, b: Manifest) -> dict[str, Any]:
    added, removed, pairs = _match(a.pins, b.pins)
    changed = []
    for old, new in pairs:
        if old == new:
            continue
        oldf = {f.path: f for f in old.files}
        newf = {f.path: f for f in new.files}
        changed.append(
            {
                "source": new.source,
                "id": new.id,
                "old": {"revision": old.revision, "pinned": _pinned(old)},
                "new": {"revision": new.revision, "pinned": _pinned(new)},
                "files_added": sorted(set(newf) - set(oldf)),
                "files_removed": sorted(set(oldf) - set(newf)),
                "files_changed": sorted(p for p in set(oldf) & set(newf) if not oldf[p].same_file(newf[p])),
            }
        )
    sa = {f.path: f for f in a.sources}
    sb = {f.path: f for f in b.sources}
    ra, rb = a.requirements, b.requirements
    return {
        "identical": a.digest == b.digest,
        "a": {"name": a.name, "version": a.version, "digest": a.digest},
        "b": {"name": b.name, "version": b.version, "digest": b.digest},
        "models": {
            "added": [{"source": p.source, "id": p.id, "pinned": _pinned(p)} for p in added],
            "removed": [{"source": p.source, "id": p.id, "pinned": _pinned(p)} for p in removed],
            "changed": changed,
        },
        "sources": {
            "added": sorted(set(sb) - set(sa)),
            "removed": sorted(set(sa) - set(sb)),
            "changed": sorted(p for p in set(sa) & set(sb) if sa[p] != sb[p]),
        },
        "requirements": {
            "added": [r for r in rb if r not in ra],
            "removed": [r for r in ra if r not in rb],
        },
        "arguments": _arguments_diff(a.arguments, b.arguments),
        "packages": _packages_diff(a.environment, b.environment),
        "entrypoint": None if a.entrypoint == b.entrypoint else [a.entrypoint, b.entrypoint],
    }


def _arguments_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        "added": {k: b[k] for k in sorted(set(b) - set(a))},
        "removed": {k: a[k] for k in sorted(set(a) - set(b))},
        "changed": {k: [a[k], b[k]] for k in sorted(set(a) & set(b)) if a[k] != b[k]},
    }


def _packages_diff(a: Environment | None, b: Environment | None) -> dict[str, Any]:
    """Locked Python packages added, removed and changed (old -> new version), and the target."""
    pa, pb = a.packages if a else {}, b.packages if b else {}
    target = lambda e: e.target if e else None  # noqa: E731
    return {
        "added": {n: pb[n] for n in sorted(set(pb) - set(pa))},
        "removed": {n: pa[n] for n in sorted(set(pa) - set(pb))},
        "changed": {n: [pa[n], pb[n]] for n in sorted(set(pa) & set(pb)) if pa[n] != pb[n]},
        "target": None if target(a) == target(b) else [target(a), target(b)],
    }


def render_text(d: dict[str, Any]) -> list[str]:
    if d["identical"]:
        return [f"identical ({d['a']['digest']})"]
    lines = [f"a: {d['a']['name']} {d['a']['version']}", f"b: {d['b']['name']} {d['b']['version']}"]
    if d["entrypoint"]:
        lines.append(f"entrypoint: {d['entrypoint'][0]} -> {d['entrypoint'][1]}")
    m = d["models"]
    lines += [f"+ model {x['id']} ({x['pinned'][:12]})" for x in m["added"]]
    lines += [f"- model {x['id']} ({x['pinned'][:12]})" for x in m["removed"]]
    for c in m["changed"]:
        lines.append(f"~ model {c['id']}: {c['old']['pinned'][:12]} -> {c['new']['pinned'][:12]}")
        lines += [f"    + {p}" for p in c["files_added"]]
        lines += [f"    - {p}" for p in c["files_removed"]]
        lines += [f"    ~ {p}" for p in c["files_changed"]]
    s = d["sources"]
    lines += [f"+ source {p}" for p in s["added"]]
    lines += [f"- source {p}" for p in s["removed"]]
    lines += [f"~ source {p}" for p in s["changed"]]
    r = d["requirements"]
    lines += [f"+ requirement {x}" for x in r["added"]]
    lines += [f"- requirement {x}" for x in r["removed"]]
    args = d["arguments"]
    lines += [f"+ argument {k}={v!r}" for k, v in args["added"].items()]
    lines += [f"- argument {k}={v!r}" for k, v in args["removed"].items()]
    lines += [f"~ argument {k}: {o!r} -> {n!r}" for k, (o, n) in args["changed"].items()]
    pk = d["packages"]
    if pk["target"]:
        lines.append(f"~ environment: {pk['target'][0] or 'none'} -> {pk['target'][1] or 'none'}")
    lines += [f"+ package {n} {v}" for n, v in pk["added"].items()]
    lines += [f"- package {n} {v}" for n, v in pk["removed"].items()]
    lines += [f"~ package {n}: {o} -> {v}" for n, (o, v) in pk["changed"].items()]
    if len(lines) == 2:
        lines.append("~ manifest metadata (name, services or version)")
    return lines
