"""The fused fast path of the alerting chain ``from → where… → alert``.

Most points of a healthy system change nothing: they pass the filters, their group is at
OK and no level expression is true. For a chain of that shape this module generates ONE
Python function that, per point, checks the measurement (and database, retention policy),
evaluates every ``where`` lambda and the level expressions inline (each ``"name"`` read
once), finds the group's state and, when all is OK-after-OK, only counts the point.

Exactness: the fused function handles just two outcomes itself, "filtered" and
"OK after OK", counting them exactly as the nodes would. A point at a non-OK level or of
a group seen for the first time goes through the alert node's :meth:`AlertNode.observe`
with the level already chosen, and anything unusual (an expression raising, a missing
field) falls back to the nodes' own code path, which re-evaluates the (stateless, so
side-effect free) lambdas and logs the error. Chains with a stateful lambda (``sigma``,
``count``, ``spread``), flapping detection, time truncation or another node shape are not
fused.

The generated source is kept in :attr:`FusedChain.source` for debugging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kapacity.alert.levels import CRITICAL, INFO, WARNING
from kapacity.models import Point
from kapacity.pipeline.alert import AlertNode
from kapacity.pipeline.base import Node
from kapacity.pipeline.lambdas import GroupedLambda
from kapacity.pipeline.nodes import FromNode, WhereNode
from kapacity.pipeline.row import Row
from kapacity.tick import ast
from kapacity.tick.compiler import inline_predicates


class FusedChain:
    """The generated ``accept(point)`` of one fused chain, with the nodes it stands for."""

    __slots__ = ("accept", "alert", "source", "wheres")

    def __init__(self, accept: Callable[[Point], None], alert: AlertNode, wheres: list[WhereNode], source: str) -> None:
        self.accept = accept
        self.alert = alert
        self.wheres = wheres
        self.source = source


def _chain(source: FromNode) -> tuple[list[WhereNode], AlertNode] | None:
    """The where nodes and the alert node below ``source``, if the chain has the fusable shape."""
    wheres: list[WhereNode] = []
    node: Node = source
    while True:
        if len(node.children) != 1:
            return None
        node = node.children[0]
        if type(node) is WhereNode:
            wheres.append(node)
            continue
        if type(node) is AlertNode and node.kind == "alert":
            return wheres, node
        return None


def _exprs(lams: list[GroupedLambda]) -> list[ast.Expr] | None:
    out = []
    for lam in lams:
        if lam.stateful or lam.expr is None:
            return None
        out.append(lam.expr)
    return out


def fuse(source: FromNode, scope: dict[str, Any]) -> FusedChain | None:
    """The fused fast path for the chain below ``source``, or None when it does not qualify.

    ``source.accept`` must already be wired (it is the fallback for unusual points).
    """
    found = _chain(source)
    if found is None or source.truncate or source.round:
        return None
    wheres, alert = found
    if not alert._ok_fast or alert.stateful:
        return None
    levels = [(lv, alert._level_lams[lv]) for lv in (CRITICAL, WARNING, INFO)]
    present = [(lv, lam) for lv, lam in levels if lam is not None]
    from_exprs = _exprs(list(source.wheres))
    where_exprs = _exprs([w.lam for w in wheres])
    level_exprs = _exprs([lam for _, lam in present])
    if from_exprs is None or where_exprs is None or level_exprs is None:
        return None
    sections = [[e] for e in from_exprs] + [[e] for e in where_exprs] + [level_exprs]
    inline = inline_predicates(sections, scope)
    if inline.stateful:  # pragma: no cover - excluded above through GroupedLambda.stateful
        return None
    src = _generate(source, wheres, inline.sections, [lv for lv, _ in present])
    namespace = inline.namespace
    namespace.update(_Row=Row, Exception=Exception, _src=source, _alert=alert, _slow=source.accept,
                     _wheres=tuple(wheres), _key=source.keyer.key, _kcache=source.keyer._cache)
    exec(compile(src, f"<fused {source.name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    accept: Callable[[Point], None] = namespace["_accept"]
    return FusedChain(accept, alert, wheres, src)


def _generate(source: FromNode, wheres: list[WhereNode], sections: list[Any], levels: list[int]) -> str:
    n_from = len(source.wheres)
    lines = ["def _accept(p):"]
    emit = lines.append
    checks = [("name", source.measurement), ("database", source.database),
              ("retention_policy", source.retention_policy)]
    for attr, want in checks:
        if want:
            emit(f"    if p.{attr} != {want!r}:")
            emit("        return")
    emit("    fields = p.fields")
    emit("    tags = p.tags")
    emit("    time_ns = p.time")
    emit("    level = -1")
    emit("    try:")
    for i, section in enumerate(sections[:-1]):
        for local, code in section.loads:
            emit(f"        {local} = {code}")
        emit(f"        if {section.exprs[0]} is not True:")
        emit("            _src.points_in += 1")
        if i < n_from:
            emit("            _src.filtered += 1")
        else:
            k = i - n_from
            for j in range(k + 1):
                emit(f"            _wheres[{j}].points_in += 1")
            emit(f"            _wheres[{k}].filtered += 1")
        emit("            return")
    # The group, as FromNode computes it (GroupKeyer caches it).
    keyer = source.keyer
    if source._static:
        emit("        group = ''")
    elif keyer.dims is not None and len(keyer.dims) == 1 and not keyer.by_name:
        emit(f"        hit = _kcache.get(tags.get({keyer.dims[0]!r}))")
        emit("        if hit is None:")
        emit("            hit = _key(p.name, tags)")
        emit("        group = hit[0]")
    else:
        emit("        hit = _key(p.name, tags)")
        emit("        group = hit[0]")
    emit("        gs = _alert._groups.get(group)")
    emit("        if gs is not None and gs.history[gs.idx] == 0:")
    last = sections[-1]
    for local, code in last.loads:
        emit(f"            {local} = {code}")
    keyword = "if"
    for lv, code in zip(levels, last.exprs, strict=True):
        emit(f"            {keyword} {code} is True:")
        emit(f"                level = {lv}")
        keyword = "elif"
    emit("            else:" if levels else "            if True:")
    emit("                _src.points_in += 1")
    for j in range(len(wheres)):
        emit(f"                _wheres[{j}].points_in += 1")
    emit("                _alert.points_in += 1")
    emit("                return")
    emit("    except Exception:  # the exact path re-evaluates and reports it")
    emit("        level = -1")
    emit("    if level < 0:")
    emit("        _slow(p)")
    emit("        return")
    emit("    _src.points_in += 1")
    for j in range(len(wheres)):
        emit(f"    _wheres[{j}].points_in += 1")
    emit("    _alert.points_in += 1")
    if source._static:
        emit("    _alert.observe(_Row(p.name, tags, fields, time_ns), level, gs)")
    else:
        emit("    _alert.observe(_Row(p.name, tags, fields, time_ns, group, hit[1], "
             f"{keyer.by_name!r}), level, gs)")
    return "\n".join(lines) + "\n"
