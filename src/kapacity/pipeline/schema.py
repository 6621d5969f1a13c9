"""What a TICKscript may say: the nodes kapacity runs, their properties and argument kinds.

Pure data, read by the builder to validate a script and by error messages to list the valid
choices. Argument kinds: ``str``, ``dur`` (duration), ``num`` (int or float), ``int``,
``bool``, ``lambda``, ``dim`` (string or ``*``), ``value`` (string, number or bool).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sig:
    """A call signature: ``args`` kinds, of which the first ``required`` are required, then
    any number of ``varargs`` (kind) when set."""

    args: tuple[str, ...] = ()
    required: int | None = None
    varargs: str | None = None
    #: A property that may be given several times (each call adds, e.g. ``.header``).
    repeat: bool = False

    @property
    def min_args(self) -> int:
        return len(self.args) if self.required is None else self.required


FLAG = Sig()


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A ``|node(args)``: its creation signature, properties and (alert) handler methods."""

    name: str
    create: Sig
    props: dict[str, Sig] = field(default_factory=dict)
    #: ``.kafka()`` & co. on alert: handler name → (creation signature, its properties).
    handlers: dict[str, tuple[Sig, dict[str, Sig]]] = field(default_factory=dict)


_AGG_PROPS = {"as": Sig(("str",)), "usePointTimes": FLAG}

_AGGREGATES = {
    name: NodeSpec(name, Sig(("str",)), dict(_AGG_PROPS))
    for name in ("mean", "count", "sum", "min", "max", "first", "last", "median",
                 "mode", "spread", "stddev", "distinct")
}
_AGGREGATES["percentile"] = NodeSpec("percentile", Sig(("str", "num")), dict(_AGG_PROPS))

_KAFKA_PROPS = {
    "cluster": Sig(("str",)),
    "kafkaTopic": Sig(("str",)),
    "template": Sig(("str",)),
    "disablePartitionById": Sig(("bool",), required=0),
    "partitionAlgorithm": Sig(("str",)),
    "partitionHashAlgorithm": Sig(("str",)),
}

ALERT_HANDLERS: dict[str, tuple[Sig, dict[str, Sig]]] = {
    "kafka": (FLAG, _KAFKA_PROPS),
    "log": (Sig(("str",)), {"mode": Sig(("int",))}),
    "post": (Sig(("str",), required=0), {
        "header": Sig(("str", "str"), repeat=True),
        "endpoint": Sig(("str",)),
        "captureResponse": FLAG,
        "timeout": Sig(("dur",)),
        "skipSSLVerification": FLAG,
    }),
    "tcp": (Sig(("str",)), {}),
    "exec": (Sig(("str",), varargs="str"), {}),
}

ALERT = NodeSpec(
    "alert",
    FLAG,
    {
        "id": Sig(("str",)),
        "message": Sig(("str",)),
        "details": Sig(("str",)),
        "info": Sig(("lambda",)),
        "warn": Sig(("lambda",)),
        "crit": Sig(("lambda",)),
        "infoReset": Sig(("lambda",)),
        "warnReset": Sig(("lambda",)),
        "critReset": Sig(("lambda",)),
        "stateChangesOnly": Sig(("dur",), required=0),
        "noRecoveries": FLAG,
        "flapping": Sig(("num", "num")),
        "history": Sig(("int",)),
        "levelTag": Sig(("str",)),
        "levelField": Sig(("str",)),
        "messageField": Sig(("str",)),
        "idTag": Sig(("str",)),
        "idField": Sig(("str",)),
        "durationField": Sig(("str",)),
        "topic": Sig(("str",)),
        "category": Sig(("str",)),
        "inhibit": Sig(("str",), varargs="str", repeat=True),
        "all": FLAG,
        "quiet": FLAG,
    },
    ALERT_HANDLERS,
)

NODES: dict[str, NodeSpec] = {
    "from": NodeSpec("from", FLAG, {
        "database": Sig(("str",)),
        "retentionPolicy": Sig(("str",)),
        "measurement": Sig(("str",)),
        "where": Sig(("lambda",), repeat=True),
        "groupBy": Sig((), varargs="dim"),
        "groupByMeasurement": FLAG,
        "truncate": Sig(("dur",)),
        "round": Sig(("dur",)),
        "quiet": FLAG,
    }),
    "where": NodeSpec("where", Sig(("lambda",)), {"quiet": FLAG}),
    "groupBy": NodeSpec("groupBy", Sig((), varargs="dim"), {
        "byMeasurement": FLAG,
        "exclude": Sig((), varargs="str"),
        "quiet": FLAG,
    }),
    "window": NodeSpec("window", FLAG, {
        "period": Sig(("dur",)),
        "every": Sig(("dur",)),
        "periodCount": Sig(("int",)),
        "everyCount": Sig(("int",)),
        "align": FLAG,
        "fillPeriod": FLAG,
        "quiet": FLAG,
    }),
    **_AGGREGATES,
    "eval": NodeSpec("eval", Sig((), varargs="lambda"), {
        "as": Sig((), varargs="str"),
        "keep": Sig((), varargs="str"),
        "tags": Sig((), varargs="str"),
        "quiet": FLAG,
    }),
    "default": NodeSpec("default", FLAG, {
        "field": Sig(("str", "value"), repeat=True),
        "tag": Sig(("str", "str"), repeat=True),
        "quiet": FLAG,
    }),
    "derivative": NodeSpec("derivative", Sig(("str",)), {
        "unit": Sig(("dur",)),
        "nonNegative": FLAG,
        "as": Sig(("str",)),
        "quiet": FLAG,
    }),
    "stateDuration": NodeSpec("stateDuration", Sig(("lambda",)), {
        "unit": Sig(("dur",)),
        "as": Sig(("str",)),
        "quiet": FLAG,
    }),
    "stateCount": NodeSpec("stateCount", Sig(("lambda",)), {
        "as": Sig(("str",)),
        "quiet": FLAG,
    }),
    "deadman": NodeSpec("deadman", Sig(("num", "dur"), varargs="lambda"), ALERT.props, ALERT_HANDLERS),
    "log": NodeSpec("log", FLAG, {"level": Sig(("str",)), "prefix": Sig(("str",)), "quiet": FLAG}),
    "httpOut": NodeSpec("httpOut", Sig(("str",)), {"quiet": FLAG}),
    "alert": ALERT,
}

#: Kapacitor nodes kapacity does not run: rejected at define time, by name.
UNSUPPORTED_NODES = frozenset({
    "query", "join", "union", "combine", "flatten", "sample", "shift", "udf",
    "influxDBOut", "k8sAutoscale", "swarmAutoscale", "ec2Autoscale", "sideload",
    "changeDetect", "barrier", "delete", "holtWinters", "holtWintersWithFit",
    "cumulativeSum", "difference", "movingAverage", "elapsed", "top", "bottom",
    "kapacitorLoopback", "noOp", "stats", "httpPost", "influxQL", "trickle",
})

#: Alert handlers Kapacitor has and kapacity does not (``.slack()`` …): named in the error.
UNSUPPORTED_HANDLERS = frozenset({
    "email", "victorOps", "pagerDuty", "pagerDuty2", "hipChat", "alerta", "mqtt", "sensu",
    "pushover", "slack", "discord", "bigPanda", "telegram", "opsGenie", "opsGenie2", "talk",
    "snmpTrap", "teams", "serviceNow", "zenoss",
})

#: Sources: what a chain may start with.
SOURCES = ("stream",)
UNSUPPORTED_SOURCES = ("batch",)
