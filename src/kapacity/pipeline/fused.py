"""The fused fast path of the alerting chain ``from → where… → alert``.

Most points of a healthy system change nothing: they pass the filters, their group is at
OK and no level expression is true. For a chain of that shape this module generates ONE
Python function (and its loop over a batch, ``accept_many``) that, per point, checks the
measurement (and database, retention policy), evaluates every ``where`` lambda and the
level expressions inline (each ``"name"`` read once), finds the group's state (with
``groupBy`` of one tag, in one lookup: :meth:`AlertNode.shortcut`; a new group is created
as the alert node would) and, when all is OK-after-OK, only counts the point.

Exactness: the fused function handles just two outcomes itself, "filtered" and
"OK after OK", counting them exactly as the nodes would. A point that raises a group from
OK goes through the alert node's :meth:`AlertNode.observe` with the level already chosen;
a point of a group at a non-OK level (resets apply) and anything unusual (an expression
raising, a missing field) fall back to the nodes' own code path, which re-evaluates the
(stateless, so side-effect free) lambdas and logs the error. Chains with a stateful lambda (``sigma``,
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
from kapacity.pipeline.row import Row, group_id
from kapacity.tick import ast
from kapacity.tick.compiler import inline_predicates

#: Entries of a chain's tag value → group state shortcut before it is emptied (unbounded
#: cardinality must not grow memory forever; refilling costs one more lookup per group).
#: Above the 100,000 series the ingest benchmark cycles through.
SHORTCUT_MAX = 2**17


class FusedChain:
    """The generated ``accept(point)`` and ``accept_many(points)`` of one fused chain, with
    the nodes it stands for."""

    __slots__ = ("accept", "accept_many", "alert", "source", "wheres")

    def __init__(
        self, accept: Callable[[Point], None], accept_many: Callable[[list[Point]], None], alert: AlertNode,
        wheres: list[WhereNode], source: str,
    ) -> None:
        self.accept = accept
        self.accept_many = accept_many
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
                     _wheres=tuple(wheres), _key=source.keyer.key, _kcache=source.keyer._cache,
                     _short=alert.shortcut(), _SHORT_MAX=SHORTCUT_MAX, len=len, _group_id=group_id,
                     _dims=source.keyer.dims)
    exec(compile(src, f"<fused {source.name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    accept: Callable[[Point], None] = namespace["_accept"]
    accept_many: Callable[[list[Point]], None] = namespace["_accept_many"]
    return FusedChain(accept, accept_many, alert, wheres, src)


def _generate(source: FromNode, wheres: list[WhereNode], sections: list[Any], levels: list[int]) -> str:
    """``_accept(p)`` for one point and ``_accept_many(points)``, the same body in a loop.

    The loop keeps the count of OK-after-OK points (nearly all of them) in a local and adds
    it to the nodes' counters once, when the batch is done (even if it raises): nothing
    reads a node's counters while its task processes a batch.
    """
    one = _body(source, wheres, sections, levels, "return", _ok_counts(wheres, "1"))
    many = _body(source, wheres, sections, levels, "continue", ["ok += 1"])
    lines = ["def _accept(p):", *one, "", "def _accept_many(points):", "    ok = 0", "    try:",
             "        for p in points:", *("        " + line for line in many), "    finally:",
             "        if ok:", *("            " + line for line in _ok_counts(wheres, "ok"))]
    return "\n".join(lines) + "\n"


def _ok_counts(wheres: list[WhereNode], n: str) -> list[str]:
    """Counter updates of ``n`` points that passed every node and were OK after OK."""
    return ([f"_src.points_in += {n}"] + [f"_wheres[{j}].points_in += {n}" for j in range(len(wheres))]
            + [f"_alert.points_in += {n}"])


def _body(
    source: FromNode, wheres: list[WhereNode], sections: list[Any], levels: list[int], exit_: str,
    ok_counts: list[str],
) -> list[str]:
    """The code for one point ``p``, indented by 4; ``exit_`` leaves it (return / continue)."""
    n_from = len(source.wheres)
    lines: list[str] = []
    emit = lines.append
    checks = [("name", source.measurement), ("database", source.database),
              ("retention_policy", source.retention_policy)]
    for attr, want in checks:
        if want:
            emit(f"    if p.{attr} != {want!r}:")
            emit(f"        {exit_}")
    emit("    fields = p.fields")
    emit("    tags = p.tags")
    code = [text for section in sections for pair in section.loads for text in pair] + [
        text for section in sections for text in section.exprs]
    if any("time_ns" in text for text in code):  # the inlined expressions read the time
        emit("    time_ns = p.time")
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
        emit(f"            {exit_}")
    # The group's state, as FromNode and AlertNode.point find it (a new group is created
    # here as the alert node would, so the first point of a group takes no slower path).
    keyer = source.keyer
    single = keyer.dims is not None and len(keyer.dims) == 1 and not keyer.by_name and not source._static
    if single:
        # groupBy of one tag: its value maps straight to the group's state (one lookup).
        assert keyer.dims is not None
        emit(f"        key = tags.get({keyer.dims[0]!r})")
        emit("        gs = _short.get(key)")
        emit("        if gs is None:")
        # The group ID as the keyer computes it (not through it: its cache is only needed
        # for the rows of the few points that are not OK-after-OK).
        emit("            group = _group_id(p.name, tags, _dims, False)")
        emit("            gs = _alert._groups.get(group)")
        emit("            if gs is None:")
        emit("                gs = _alert._new_group(p.name, group, tags, p.time)")
        emit("            if len(_short) >= _SHORT_MAX:")
        emit("                _short.clear()")
        emit("            _short[key] = gs")
    else:
        if source._static:
            emit("        group = ''")
        else:
            emit("        hit = _key(p.name, tags)")
            emit("        group = hit[0]")
        emit("        gs = _alert._groups.get(group)")
        emit("        if gs is None:")
        emit("            gs = _alert._new_group(p.name, group, tags, p.time)")
    emit("        if gs.level == 0:")
    last = sections[-1]
    for local, code in last.loads:
        emit(f"            {local} = {code}")
    keyword = "if"
    for lv, code in zip(levels, last.exprs, strict=True):
        emit(f"            {keyword} {code} is True:")
        emit(f"                level = {lv}")
        keyword = "elif"
    emit("            else:" if levels else "            if True:")
    for line in ok_counts:
        emit(f"                {line}")
    emit(f"                {exit_}")
    emit("        else:")
    emit("            level = -1")
    emit("    except Exception:  # the exact path re-evaluates and reports it")
    emit("        level = -1")
    emit("    if level < 0:")
    emit("        _slow(p)")
    emit(f"        {exit_}")
    for line in _ok_counts(wheres, "1"):
        emit(f"    {line}")
    if source._static:
        emit("    _alert.observe(_Row(p.name, tags, fields, p.time), level, gs)")
    elif single:
        emit("    hit = _kcache.get(key)")
        emit("    if hit is None:")
        emit("        hit = _key(p.name, tags)")
        emit("    _alert.observe(_Row(p.name, tags, fields, p.time, hit[0], hit[1], False), level, gs)")
    else:
        emit("    _alert.observe(_Row(p.name, tags, fields, p.time, group, hit[1], "
             f"{keyer.by_name!r}), level, gs)")
    return lines
