"""Turning a declared task graph (:mod:`kapacity.pipeline.script`) into runtime nodes.

Compiles lambdas and templates once, checks property values (a bad partition algorithm, an
empty Kafka topic, a template that does not parse) at define time, and wires the nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.config import AlertConfig, AlertEvent, HandlerSpec, InhibitorRegistry
from kapacity.alert.levels import Predicate
from kapacity.pipeline.alert import AlertNode
from kapacity.alert.state import DEFAULT_HISTORY, EmitPolicy
from kapacity.alert.templates import (
    DEFAULT_DETAILS,
    DEFAULT_ID,
    DEFAULT_MESSAGE,
    GoStruct,
    compile_template,
)
from kapacity.gotmpl.errors import TemplateError
from kapacity.gotypes import NANOS_PER_SECOND, format_duration
from kapacity.kafka.partitioners import PartitionerError, canonical_partitioner_name
from kapacity.pipeline.aggregates import REDUCERS, AggregateNode
from kapacity.pipeline.base import Node
from kapacity.pipeline.errors import PipelineError
from kapacity.pipeline.fused import FusedChain, fuse
from kapacity.pipeline.lambdas import GroupedLambda, compile_grouped
from kapacity.pipeline.nodes import (
    CountingTap,
    DefaultNode,
    DerivativeNode,
    EvalNode,
    FromNode,
    GroupByNode,
    HttpOutNode,
    LogNode,
    StateTrackingNode,
    StatsNode,
    WhereNode,
)
from kapacity.pipeline.script import STAR, HandlerDecl, NodeDecl, Prop, Script, flatten
from kapacity.pipeline.window import CountWindowNode, WindowNode

# Kapacitor's deadman defaults (its [deadman] config section).
DEADMAN_ID = "{{ .Group }}:NODE_NAME for task '{{ .TaskName }}'"
DEADMAN_MESSAGE = (
    '{{ .ID }} is {{ if eq .Level "OK" }}alive{{ else }}dead{{ end }}: '
    '{{ index .Fields "emitted" | printf "%0.3f" }} points/INTERVAL.'
)


@dataclass(slots=True)
class Graph:
    """The runtime nodes of one task."""

    sources: list[FromNode] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    alerts: list[AlertNode] = field(default_factory=list)
    http_outs: dict[str, HttpOutNode] = field(default_factory=dict)
    timed: list[Node] = field(default_factory=list)
    #: The fused fast paths installed on sources (see :mod:`kapacity.pipeline.fused`).
    fused: list[FusedChain] = field(default_factory=list)


class _Builder:
    def __init__(
        self,
        task_name: str,
        sink: Callable[[AlertEvent], None],
        inhibitors: InhibitorRegistry,
        info: GoStruct | None,
        fused: bool = True,
    ) -> None:
        self.fused = fused
        self.task_name = task_name
        self.sink = sink
        self.inhibitors = inhibitors
        self.info = info
        self.graph = Graph()
        self.scope: dict[str, Any] = {}

    def fail(self, at: NodeDecl | HandlerDecl | Prop, message: str) -> PipelineError:
        return PipelineError(message, at.line, at.col)

    def lam(self, value: Any, at: NodeDecl | Prop, predicate: bool = True) -> GroupedLambda:
        try:
            return compile_grouped(value, self.scope, predicate=predicate)
        except PipelineError:
            raise
        except Exception as err:
            line = getattr(err, "line", at.line)
            col = getattr(err, "col", at.col)
            raise PipelineError(f"invalid lambda: {getattr(err, 'message', err)}", line, col) from err

    def build(self, script: Script) -> Graph:
        self.scope = script.scope
        for decl in script.source.children:
            node = self.node(decl, None)
            assert isinstance(node, FromNode)
            self.graph.sources.append(node)
        # Children first: a node may bind its children's own output calls (from()|where()).
        for n in reversed(self.graph.nodes):
            n.wire()
        if self.fused:
            for source in self.graph.sources:
                chain = fuse(source, self.scope)
                if chain is not None:
                    source.accept = chain.accept
                    self.graph.fused.append(chain)
        return self.graph

    def add(self, node: Node, parent: Node | None) -> Node:
        self.graph.nodes.append(node)
        if parent is not None:
            parent.children.append(node)
        return node

    def node(self, decl: NodeDecl, parent: Node | None) -> Node:
        make = getattr(self, "make_" + decl.kind, None)
        node: Node
        if decl.kind in REDUCERS or decl.kind == "percentile":
            node = self.make_aggregate(decl)
        elif decl.kind == "deadman":
            assert parent is not None
            node = self.make_deadman(decl, parent)
            for child in decl.children:
                self.node(child, node)
            return node
        else:
            assert make is not None, decl.kind
            node = make(decl)
        self.add(node, parent)
        for child in decl.children:
            self.node(child, node)
        return node

    # --- simple nodes ------------------------------------------------------------------

    def make_from(self, d: NodeDecl) -> Node:
        def s(name: str) -> str:
            p = d.prop(name)
            return str(p.args[0]) if p else ""

        def ns(name: str) -> int:
            p = d.prop(name)
            return int(p.args[0]) if p else 0

        dims: list[str] | None = []
        gb = d.prop("groupBy")
        if gb is not None:
            args = flatten(gb.args)
            dims = None if any(a is STAR for a in args) else [str(a) for a in args]
        wheres = [self.lam(p.args[0], p) for p in d.props.get("where", [])]
        return FromNode(
            d.name, database=s("database"), retention_policy=s("retentionPolicy"),
            measurement=s("measurement"), where=wheres, dims=dims,
            by_measurement=d.flag("groupByMeasurement"), truncate=ns("truncate"), round_=ns("round"),
        )

    def make_where(self, d: NodeDecl) -> Node:
        return WhereNode(d.name, self.lam(d.args[0], d))

    def make_groupBy(self, d: NodeDecl) -> Node:  # noqa: N802 - named after the TICKscript node
        args = flatten(d.args)
        dims = None if any(a is STAR for a in args) else [str(a) for a in args]
        ex = d.prop("exclude")
        return GroupByNode(d.name, dims, d.flag("byMeasurement"), [str(a) for a in flatten(ex.args)] if ex else [])

    def make_window(self, d: NodeDecl) -> Node:
        period = d.prop("period")
        every = d.prop("every")
        p_count = d.prop("periodCount")
        e_count = d.prop("everyCount")
        if p_count is not None or e_count is not None:
            return self._count_window(d, period or every, p_count, e_count)
        if period is None or int(period.args[0]) <= 0:
            raise self.fail(d, "window needs a positive .period()")
        p_ns = int(period.args[0])
        e_ns = int(every.args[0]) if every else 0
        if e_ns < 0:
            raise self.fail(every or d, "window .every() must not be negative")
        if d.flag("align") and e_ns == 0:
            raise self.fail(d, "window .align() needs a non-zero .every()")
        return WindowNode(d.name, p_ns, e_ns, d.flag("align"), d.flag("fillPeriod"))

    def _count_window(self, d: NodeDecl, timed: Prop | None, p_count: Prop | None, e_count: Prop | None) -> Node:
        """Kapacitor's checks for a count window: one windowing scheme, no align, everyCount > 0."""
        if timed is not None:
            raise self.fail(timed, "window: can only use one windowing scheme at a time: "
                            "time based (.period/.every) or count based (.periodCount/.everyCount)")
        if p_count is None:
            raise self.fail(e_count or d, "window: .everyCount() needs a .periodCount()")
        n = int(p_count.args[0])
        if n <= 0:
            raise self.fail(p_count, f"window: periodCount must be greater than zero, got {n}")
        if d.flag("align"):
            raise self.fail(d, "window: can only align windows based off time, not count")
        m = int(e_count.args[0]) if e_count is not None else 0
        if m <= 0:
            raise self.fail(e_count or p_count, f"window: everyCount must be greater than zero, got {m}")
        return CountWindowNode(d.name, n, m, d.flag("fillPeriod"))

    def make_aggregate(self, d: NodeDecl) -> Node:
        as_ = d.prop("as")
        arg = 0.0
        if d.kind == "percentile":
            arg = float(d.args[1])
            if not 0 <= arg <= 100:
                raise self.fail(d, f"percentile must be between 0 and 100, got {arg}")
        return AggregateNode(
            d.name, d.kind, str(d.args[0]), str(as_.args[0]) if as_ else d.kind, arg,
            point_times=d.flag("usePointTimes"),
        )

    def make_eval(self, d: NodeDecl) -> Node:
        exprs = [self.lam(a, d, predicate=False) for a in flatten(d.args)]
        if not exprs:
            raise self.fail(d, "eval needs at least one lambda expression")
        as_p = d.prop("as")
        names = [str(a) for a in flatten(as_p.args)] if as_p else []
        if len(names) != len(exprs):
            raise self.fail(as_p or d, f"eval has {len(exprs)} expressions but .as() names {len(names)}")
        keep = d.prop("keep")
        tags = d.prop("tags")
        return EvalNode(
            d.name, exprs, names,
            tags=[str(a) for a in flatten(tags.args)] if tags else [],
            keep=keep is not None, keep_list=[str(a) for a in flatten(keep.args)] if keep else [],
            quiet=d.flag("quiet"),
        )

    def make_default(self, d: NodeDecl) -> Node:
        fields = {str(p.args[0]): p.args[1] for p in d.props.get("field", [])}
        tags = {str(p.args[0]): str(p.args[1]) for p in d.props.get("tag", [])}
        return DefaultNode(d.name, fields, tags)

    def _unit(self, d: NodeDecl) -> int:
        p = d.prop("unit")
        unit = int(p.args[0]) if p else NANOS_PER_SECOND
        if unit <= 0:
            raise self.fail(p or d, "unit must be a positive duration")
        return unit

    def make_derivative(self, d: NodeDecl) -> Node:
        as_ = d.prop("as")
        field_name = str(d.args[0])
        return DerivativeNode(d.name, field_name, self._unit(d), d.flag("nonNegative"),
                              str(as_.args[0]) if as_ else field_name)

    def make_stateDuration(self, d: NodeDecl) -> Node:  # noqa: N802
        as_ = d.prop("as")
        return StateTrackingNode(d.name, self.lam(d.args[0], d), str(as_.args[0]) if as_ else "state_duration",
                                 self._unit(d), count=False)

    def make_stateCount(self, d: NodeDecl) -> Node:  # noqa: N802
        as_ = d.prop("as")
        return StateTrackingNode(d.name, self.lam(d.args[0], d), str(as_.args[0]) if as_ else "state_count",
                                 NANOS_PER_SECOND, count=True)

    def make_log(self, d: NodeDecl) -> Node:
        level = d.prop("level")
        prefix = d.prop("prefix")
        lv = str(level.args[0]).upper() if level else "INFO"
        if lv not in ("DEBUG", "INFO", "WARN", "WARNING", "ERROR"):
            raise self.fail(level or d, f"invalid log level {lv!r}; valid: DEBUG, INFO, WARN, ERROR")
        return LogNode(d.name, "WARNING" if lv == "WARN" else lv, str(prefix.args[0]) if prefix else "")

    def make_httpOut(self, d: NodeDecl) -> Node:  # noqa: N802
        endpoint = str(d.args[0])
        if endpoint in self.graph.http_outs:
            raise self.fail(d, f"httpOut endpoint {endpoint!r} is used twice")
        node = HttpOutNode(d.name, endpoint)
        self.graph.http_outs[endpoint] = node
        return node

    # --- alert -------------------------------------------------------------------------

    def make_alert(self, d: NodeDecl, *, default_id: str = DEFAULT_ID, default_message: str = DEFAULT_MESSAGE,
                   crit: Predicate | None = None) -> AlertNode:
        def text(name: str, default: str) -> str:
            p = d.prop(name)
            return str(p.args[0]) if p else default

        def tmpl(name: str, default: str, html: bool = False) -> Callable[[Any], str]:
            source = text(name, default)
            try:
                return compile_template(source, f"{d.name}.{name}", html=html)
            except TemplateError as err:
                at = d.prop(name) or d
                raise self.fail(at, f"invalid {name} template: {err}") from err

        levels: list[Predicate | GroupedLambda | None] = [None, None, None, None]
        resets: list[Predicate | GroupedLambda | None] = [None, None, None, None]
        for i, name in ((1, "info"), (2, "warn"), (3, "crit")):
            p = d.prop(name)
            if p is not None:
                levels[i] = self.lam(p.args[0], p)
            r = d.prop(name + "Reset")
            if r is not None:
                resets[i] = self.lam(r.args[0], r)
        if crit is not None:
            levels[3] = crit

        sco = d.prop("stateChangesOnly")
        flap = d.prop("flapping")
        if flap is not None:
            low, high = float(flap.args[0]), float(flap.args[1])
            if not (0 <= low <= 1 and 0 <= high <= 1):
                raise self.fail(flap, "alert flap thresholds are percentages and should be between 0 and 1")
            if low > high:
                raise self.fail(flap, f"flapping low threshold {low} is above the high threshold {high}")
        hist = d.prop("history")
        policy = EmitPolicy(
            state_changes_only=sco is not None,
            interval_ns=int(sco.args[0]) if sco and sco.args else 0,
            no_recoveries=d.flag("noRecoveries"),
            flapping=flap is not None,
            flap_low=float(flap.args[0]) if flap else 0.0,
            flap_high=float(flap.args[1]) if flap else 0.0,
            history=int(hist.args[0]) if hist else DEFAULT_HISTORY,
        )
        id_text = text("id", default_id)
        config = AlertConfig(
            id_tmpl=tmpl("id", default_id),
            id_text=id_text,
            message_tmpl=tmpl("message", default_message),
            details_tmpl=tmpl("details", DEFAULT_DETAILS, html=True),
            policy=policy,
            topic=text("topic", ""),
            handlers=tuple(self.handler(h) for h in d.handlers),
            category=text("category", ""),
            inhibits=tuple(
                (str(p.args[0]), tuple(str(a) for a in flatten(p.args[1:]))) for p in d.props.get("inhibit", [])
            ),
            all_flag=d.flag("all"),
            level_tag=text("levelTag", ""),
            level_field=text("levelField", ""),
            message_field=text("messageField", ""),
            id_tag=text("idTag", ""),
            id_field=text("idField", ""),
            duration_field=text("durationField", ""),
        )
        node = AlertNode(d.name, self.task_name, levels, resets, config,
                         sink=self.sink, inhibitors=self.inhibitors, info=self.info)
        self.graph.alerts.append(node)
        return node

    def handler(self, h: HandlerDecl) -> HandlerSpec:
        def last(name: str) -> Prop | None:
            items = h.props.get(name)
            return items[-1] if items else None

        opts: dict[str, Any] = {}
        if h.kind == "kafka":
            for prop, key in (("cluster", "cluster"), ("kafkaTopic", "topic"), ("template", "template")):
                p = last(prop)
                if p is not None:
                    opts[key] = str(p.args[0])
            if "topic" not in opts or not opts["topic"]:
                raise self.fail(last("kafkaTopic") or h, "kafka: topic must not be empty: set .kafkaTopic('name')")
            dp = last("disablePartitionById")
            opts["disablePartitionById"] = bool(dp.args[0]) if dp and dp.args else dp is not None
            algo_props = [p for name in ("partitionAlgorithm", "partitionHashAlgorithm") for p in h.props.get(name, [])]
            if algo_props:
                algo_p = max(algo_props, key=lambda p: (p.line, p.col))
                # The same names, case-insensitively, as a handler file's partitionAlgorithm.
                try:
                    opts["partitionAlgorithm"] = canonical_partitioner_name(str(algo_p.args[0]))
                except PartitionerError as err:
                    raise self.fail(algo_p, f"kafka: {err}") from None
            else:
                opts["partitionAlgorithm"] = "crc32"
            if opts.get("template"):
                try:
                    compile_template(opts["template"], "kafka.template")
                except TemplateError as err:
                    raise self.fail(last("template") or h, f"kafka: invalid template: {err}") from err
        elif h.kind == "log":
            opts["path"] = str(h.args[0])
            mode = last("mode")
            if mode is not None:
                opts["mode"] = int(mode.args[0])
        elif h.kind == "post":
            if h.args:
                opts["url"] = str(h.args[0])
            ep = last("endpoint")
            if ep is not None:
                opts["endpoint"] = str(ep.args[0])
            if not h.args and ep is None:
                raise self.fail(h, "post needs a URL (.post('http://…')) or an .endpoint('name')")
            headers = {str(p.args[0]): str(p.args[1]) for p in h.props.get("header", [])}
            if headers:
                opts["headers"] = headers
            if "captureResponse" in h.props:
                opts["capture-response"] = True
            timeout = last("timeout")
            if timeout is not None:
                opts["timeout"] = int(timeout.args[0])
            if "skipSSLVerification" in h.props:
                opts["skip-ssl-verification"] = True
        elif h.kind == "tcp":
            opts["address"] = str(h.args[0])
        elif h.kind == "exec":
            opts["prog"] = str(h.args[0])
            opts["args"] = [str(a) for a in flatten(h.args[1:])]
        return HandlerSpec(h.kind, opts)

    def make_deadman(self, d: NodeDecl, parent: Node) -> Node:
        threshold = float(d.args[0])
        interval = int(d.args[1])
        if interval <= 0:
            raise self.fail(d, "deadman interval must be a positive duration")
        extras = [self.lam(a, d) for a in flatten(d.args[2:])]
        stats = StatsNode(f"stats{d.name[len('deadman'):]}", interval, align=True)
        self.add(stats, None)
        self.add(CountingTap(f"tap_{d.name}", stats), parent)
        self.graph.timed.append(stats)
        deriv = DerivativeNode(f"derivative_{d.name}", "emitted", interval, True, "emitted")
        self.add(deriv, stats)

        def crit(fields: dict[str, Any], tags: dict[str, str], t: int) -> bool:
            emitted = fields.get("emitted")
            if not isinstance(emitted, int | float) or emitted > threshold:
                return False
            return all(e(fields, tags, t) is True for e in extras)

        node = self.make_alert(
            d,
            default_id=DEADMAN_ID.replace("NODE_NAME", parent.name),
            default_message=DEADMAN_MESSAGE.replace("INTERVAL", format_duration(interval)),
            crit=crit,
        )
        node.kind = "deadman"
        self.add(node, deriv)
        return node


def build_graph(
    script: Script,
    task_name: str,
    sink: Callable[[AlertEvent], None],
    inhibitors: InhibitorRegistry | None = None,
    info: GoStruct | None = None,
    *,
    fused: bool = True,
) -> Graph:
    """The runtime graph of ``script``; ``fused=False`` leaves out the fused fast paths
    (the result is the same, only slower: tests compare both)."""
    return _Builder(task_name, sink, inhibitors or InhibitorRegistry(), info, fused).build(script)
