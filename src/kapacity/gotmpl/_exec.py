"""Compiles a parse tree into nested closures and runs them (``text/template/exec.go``).

Compiling once keeps per-render work to closure calls: a message template
like ``{{ .ID }} is {{ .Level }}`` becomes three appends and two attribute reads.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from kapacity.gotmpl._escape import html_text_escape
from kapacity.gotmpl._funcs import BUILTINS, Builtin
from kapacity.gotmpl._nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    CommentNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
)
from kapacity.gotmpl._parser import position
from kapacity.gotmpl._values import NO_VALUE, go_type_name, is_exported, is_true
from kapacity.gotmpl.errors import TemplateError
from kapacity.gotmpl.gofmt import format_value

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

# Python frames per template call make Go's 100000 impossible; 100 is plenty for alert templates.
MAX_TEMPLATE_DEPTH = 100


class _Missing:
    """Go's ``missingVal``: no value flows in from a previous pipeline stage."""

    __slots__ = ()


MISSING = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_BREAK = _Break()
_CONTINUE = _Continue()


class State:
    __slots__ = ("out", "vars", "depth")

    def __init__(self, out: list[str], dot: Any) -> None:
        self.out = out
        self.vars: list[list[Any]] = [["$", dot]]
        self.depth = 0

    def var(self, name: str) -> Any:
        for pair in reversed(self.vars):
            if pair[0] == name:
                return pair[1]
        raise KeyError(name)  # the parser rejects undefined variables

    def set_var(self, name: str, value: Any) -> None:
        for pair in reversed(self.vars):
            if pair[0] == name:
                pair[1] = value
                return
        raise KeyError(name)


Exec = Callable[[State, Any], None]
Eval = Callable[[State, Any], Any]
Cmd = Callable[[State, Any, Any], Any]

_EMPTY_ARGS: tuple[Eval, ...] = ()
# Builtin Python types expose no Go methods (their attributes are not the template's business).
_PLAIN_TYPES = frozenset({str, int, float, bool, list, tuple, bytes})


def _signature_bounds(fn: Callable[..., Any]) -> tuple[int, int | None] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    lo = 0
    hi: int | None = 0
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL,):
            hi = None
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if hi is not None:
                hi += 1
            if p.default is p.empty:
                lo += 1
    return lo, hi


_METHOD_BOUNDS: dict[tuple[type, str], tuple[int, int | None] | None] = {}
# isinstance() against the Mapping ABC is slow on the hot path; remember the answer per type.
_IS_MAPPING: dict[type, bool] = {dict: True}


class Compiler:
    """Turns one template set's trees into closures; shared by all its templates."""

    def __init__(
        self,
        text: str,
        parse_name: str,
        funcs: Mapping[str, Callable[..., Any]],
        html: bool,
        templates: dict[str, Exec],
        trees: dict[str, ListNode],
    ) -> None:
        self.text = text
        self.parse_name = parse_name
        self.funcs = funcs
        self.html = html
        self.templates = templates
        self.trees = trees
        self.tname = parse_name

    # -- errors ------------------------------------------------------------
    def error(self, tname: str, node: Node, msg: str) -> TemplateError:
        line, col = position(self.text, node.pos)
        context = str(node)
        if len(context) > 20:
            context = context[:20] + "..."
        return TemplateError(
            f'template: {self.parse_name}:{line}:{col}: executing "{tname}" at <{context}>: {msg}',
            name=tname,
            line=line,
            col=col,
        )

    # -- lists and control structures --------------------------------------
    def compile_template(self, name: str, tree: ListNode) -> Exec:
        self.tname = name
        return self.compile_list(tree)

    def compile_list(self, lst: ListNode) -> Exec:
        parts = [self.compile_node(n) for n in lst.nodes if not isinstance(n, CommentNode)]
        # Merge adjacent text so the common case is a few appends.
        if not parts:
            return _noop
        if len(parts) == 1:
            return parts[0]
        steps = tuple(parts)

        def run_list(st: State, dot: Any) -> None:
            for step in steps:
                step(st, dot)

        return run_list

    def compile_node(self, node: Node) -> Exec:
        if isinstance(node, TextNode):
            text = node.text
            if self.html:
                # html/template drops HTML comments from the template's own text.
                text = _HTML_COMMENT.sub("", text)

            def run_text(st: State, dot: Any) -> None:
                st.out.append(text)

            return run_text
        if isinstance(node, ActionNode):
            return self.compile_action(node)
        if isinstance(node, BranchNode):
            if node.kind == "range":
                return self.compile_range(node)
            return self.compile_if_with(node)
        if isinstance(node, BreakNode):

            def run_break(st: State, dot: Any) -> None:
                raise _BREAK

            return run_break
        if isinstance(node, ContinueNode):

            def run_continue(st: State, dot: Any) -> None:
                raise _CONTINUE

            return run_continue
        if isinstance(node, TemplateNode):
            return self.compile_template_call(node)
        raise AssertionError(f"unknown node {node!r}")

    def compile_action(self, node: ActionNode) -> Exec:
        pipe = self.compile_pipe(node.pipe)
        if node.pipe.decls:

            def run_decl(st: State, dot: Any) -> None:
                pipe(st, dot)

            return run_decl
        tname = self.tname
        err = self.error
        last = node.pipe.cmds[-1].args[0]
        # html/template keeps an explicit trailing `html` call instead of escaping twice.
        explicit_html = isinstance(last, IdentifierNode) and last.name == "html" and "html" not in self.funcs
        if self.html and not explicit_html:

            def run_html(st: State, dot: Any) -> None:
                v = pipe(st, dot)
                if v is NO_VALUE or v is None:
                    return  # html/template drops untyped nil rather than printing <nil>
                if callable(v) and not hasattr(v, "String"):
                    raise err(tname, node, f"can't print {node} of type {go_type_name(v)}")
                st.out.append(html_text_escape(v if type(v) is str else format_value(v)))

            return run_html

        def run_action(st: State, dot: Any) -> None:
            v = pipe(st, dot)
            t = type(v)
            if t is str:
                st.out.append(v)
            elif v is NO_VALUE or v is None:
                st.out.append("<no value>")
            elif callable(v) and not hasattr(v, "String"):
                raise err(tname, node, f"can't print {node} of type {go_type_name(v)}")
            else:
                st.out.append(format_value(v))

        return run_action

    def compile_if_with(self, node: BranchNode) -> Exec:
        pipe = self.compile_pipe(node.pipe)
        body = self.compile_list(node.body)
        else_body = self.compile_list(node.else_body) if node.else_body is not None else None
        is_with = node.kind == "with"

        def run_if(st: State, dot: Any) -> None:
            mark = len(st.vars)
            v = pipe(st, dot)
            if is_true(v):
                body(st, v if is_with else dot)
            elif else_body is not None:
                else_body(st, dot)
            del st.vars[mark:]

        return run_if

    def compile_range(self, node: BranchNode) -> Exec:
        decls = [d.idents[0] for d in node.pipe.decls]
        is_assign = node.pipe.is_assign
        bare = PipeNode(node.pipe.pos, False, [], node.pipe.cmds)
        pipe = self.compile_pipe(bare)
        body = self.compile_list(node.body)
        else_body = self.compile_list(node.else_body) if node.else_body is not None else None
        tname = self.tname
        err = self.error
        ndecl = len(decls)

        def run_range(st: State, dot: Any) -> None:
            mark = len(st.vars)
            val = pipe(st, dot)
            for name in decls:
                if is_assign:
                    st.set_var(name, val)
                else:
                    st.vars.append([name, val])
            inner = len(st.vars)
            if isinstance(val, list | tuple):
                items: Any = enumerate(val)
            elif isinstance(val, Mapping):
                items = ((k, val[k]) for k in _sorted_keys(val))
            elif isinstance(val, int) and not isinstance(val, bool):
                if ndecl > 1:
                    raise err(tname, node, f"can't use {format_value(val)} to iterate over more than one variable")
                items = ((i, i) for i in range(val))
            elif val is NO_VALUE or val is None:
                items = ()
            else:
                raise err(tname, node, f"range can't iterate over {format_value(val)}")
            ran = False
            try:
                for key, elem in items:
                    ran = True
                    if ndecl:
                        if is_assign:
                            if ndecl > 1:
                                st.set_var(decls[0], key)
                                st.set_var(decls[1], elem)
                            else:
                                st.set_var(decls[0], elem)
                        else:
                            st.vars[-1][1] = elem
                            if ndecl > 1:
                                st.vars[-2][1] = key
                    try:
                        body(st, elem)
                    except _Continue:
                        pass
                    del st.vars[inner:]
            except _Break:
                pass
            finally:
                del st.vars[mark:]
            if not ran and else_body is not None:
                else_body(st, dot)

        return run_range

    def compile_template_call(self, node: TemplateNode) -> Exec:
        pipe = self.compile_pipe(node.pipe) if node.pipe is not None else None
        name = node.name
        templates = self.templates
        tname = self.tname
        err = self.error

        def run_template(st: State, dot: Any) -> None:
            target = templates.get(name)
            if target is None:
                raise err(tname, node, f"template {_quote(name)} not defined")
            if st.depth >= MAX_TEMPLATE_DEPTH:
                raise err(tname, node, f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
            new_dot = pipe(st, dot) if pipe is not None else NO_VALUE
            saved = st.vars
            st.vars = [["$", new_dot]]
            st.depth += 1
            try:
                target(st, new_dot)
            finally:
                st.vars = saved
                st.depth -= 1

        return run_template

    # -- pipelines and commands --------------------------------------------
    def compile_pipe(self, pipe: PipeNode) -> Eval:
        cmds = tuple(self.compile_command(c) for c in pipe.cmds)
        decls = tuple(d.idents[0] for d in pipe.decls)
        is_assign = pipe.is_assign
        if len(cmds) == 1 and not decls:
            only = cmds[0]

            def eval_one(st: State, dot: Any) -> Any:
                v = only(st, dot, MISSING)
                return NO_VALUE if v is None else v

            return eval_one

        def eval_pipe(st: State, dot: Any) -> Any:
            v: Any = MISSING
            for cmd in cmds:
                v = cmd(st, dot, v)
                if v is None:
                    v = NO_VALUE  # Go digs a nil interface{} down to the invalid value
            for name in decls:
                if is_assign:
                    st.set_var(name, v)
                else:
                    st.vars.append([name, v])
            return v

        return eval_pipe

    def not_a_function(self, cmd: CommandNode, first: Node) -> Callable[[State, Any], None]:
        tname = self.tname
        err = self.error
        has_args = len(cmd.args) > 1

        def check(st: State, final: Any) -> None:
            if has_args or final is not MISSING:
                raise err(tname, first, f"can't give argument to non-function {first}")

        return check

    def compile_command(self, cmd: CommandNode) -> Cmd:
        first = cmd.args[0]
        tname = self.tname
        err = self.error
        if isinstance(first, FieldNode):
            argfns = tuple(self.compile_arg(a) for a in cmd.args[1:])
            chain = self.field_chain(first, first.idents, argfns, len(cmd.args) > 1)

            def cmd_field(st: State, dot: Any, final: Any) -> Any:
                return chain(st, dot, dot, final)

            return cmd_field
        if isinstance(first, ChainNode):
            return self.compile_chain(first, cmd)
        if isinstance(first, IdentifierNode):
            return self.compile_call(first, cmd.args[1:], cmd)
        if isinstance(first, PipeNode):
            check = self.not_a_function(cmd, first)
            inner = self.compile_pipe(first)

            def cmd_pipe(st: State, dot: Any, final: Any) -> Any:
                check(st, final)
                return inner(st, dot)

            return cmd_pipe
        if isinstance(first, VariableNode):
            return self.compile_variable_cmd(first, cmd)
        check = self.not_a_function(cmd, first)
        if isinstance(first, NilNode):

            def cmd_nil(st: State, dot: Any, final: Any) -> Any:
                check(st, final)
                raise err(tname, first, "nil is not a command")

            return cmd_nil
        if isinstance(first, DotNode):

            def cmd_dot(st: State, dot: Any, final: Any) -> Any:
                check(st, final)
                return dot

            return cmd_dot
        const = self.constant(first)

        def cmd_const(st: State, dot: Any, final: Any) -> Any:
            check(st, final)
            return const

        return cmd_const

    def constant(self, node: Node) -> Any:
        if isinstance(node, BoolNode):
            return node.value
        if isinstance(node, NumberNode):
            return node.value
        if isinstance(node, StringNode):
            return node.value
        raise AssertionError(f"not a constant: {node!r}")

    def compile_variable_cmd(self, node: VariableNode, cmd: CommandNode) -> Cmd:
        name = node.idents[0]
        if len(node.idents) == 1:
            check = self.not_a_function(cmd, node)

            def cmd_var(st: State, dot: Any, final: Any) -> Any:
                check(st, final)
                return st.var(name)

            return cmd_var
        argfns = tuple(self.compile_arg(a) for a in cmd.args[1:])
        chain = self.field_chain(node, node.idents[1:], argfns, len(cmd.args) > 1)

        def cmd_var_fields(st: State, dot: Any, final: Any) -> Any:
            return chain(st, dot, st.var(name), final)

        return cmd_var_fields

    def compile_chain(self, node: ChainNode, cmd: CommandNode | None) -> Cmd:
        tname = self.tname
        err = self.error
        if isinstance(node.node, NilNode):

            def cmd_nil_chain(st: State, dot: Any, final: Any) -> Any:
                raise err(tname, node, f"indirection through explicit nil in {node}")

            return cmd_nil_chain
        receiver = self.compile_arg(node.node)
        args = cmd.args[1:] if cmd is not None else []
        argfns = tuple(self.compile_arg(a) for a in args)
        chain = self.field_chain(node, node.fields, argfns, bool(args))

        def cmd_chain(st: State, dot: Any, final: Any) -> Any:
            return chain(st, dot, receiver(st, dot), final)

        return cmd_chain

    def field_chain(
        self, node: Node, idents: list[str], argfns: tuple[Eval, ...], has_args: bool
    ) -> Callable[[State, Any, Any, Any], Any]:
        """Evaluate ``.A.B.C`` on a receiver; only the last name gets the arguments."""
        getters = [self.field_getter(node, name, _EMPTY_ARGS, False) for name in idents[:-1]]
        last = self.field_getter(node, idents[-1], argfns, has_args)
        if not getters:
            return last
        head = tuple(getters)

        def chain(st: State, dot: Any, receiver: Any, final: Any) -> Any:
            for get in head:
                receiver = get(st, dot, receiver, MISSING)
            return last(st, dot, receiver, final)

        return chain

    def field_getter(
        self, node: Node, name: str, argfns: tuple[Eval, ...], has_args: bool
    ) -> Callable[[State, Any, Any, Any], Any]:
        tname = self.tname
        err = self.error
        exported = is_exported(name)

        def get(st: State, dot: Any, receiver: Any, final: Any) -> Any:
            t = type(receiver)
            is_map = _IS_MAPPING.get(t)
            if is_map is None:
                is_map = _IS_MAPPING[t] = isinstance(receiver, Mapping)
            if is_map:
                if has_args or final is not MISSING:
                    raise err(tname, node, f"{name} is not a method but has arguments")
                return receiver.get(name, NO_VALUE)
            if receiver is NO_VALUE:
                return NO_VALUE
            if receiver is None:
                raise err(tname, node, f"nil pointer evaluating interface {{}}.{name}")
            if not exported:
                if not name.startswith("_") and hasattr(receiver, name):
                    raise err(
                        tname, node, f"{name} is an unexported field of struct type {go_type_name(receiver)}"
                    )
                raise err(tname, node, f"can't evaluate field {name} in type {go_type_name(receiver)}")
            try:
                attr = getattr(receiver, name, MISSING)
            except Exception as exc:
                raise err(tname, node, f"error calling {name}: {exc}") from exc
            if attr is MISSING or type(receiver) in _PLAIN_TYPES:
                raise err(tname, node, f"can't evaluate field {name} in type {go_type_name(receiver)}")
            if callable(attr) and not isinstance(attr, type):
                args = [_arg_value(f(st, dot)) for f in argfns]
                if final is not MISSING:
                    args.append(_arg_value(final))
                key = (type(receiver), name)
                if key not in _METHOD_BOUNDS:
                    _METHOD_BOUNDS[key] = _signature_bounds(attr)
                bounds = _METHOD_BOUNDS[key]
                if bounds is not None:
                    lo, hi = bounds
                    if len(args) < lo or (hi is not None and len(args) > hi):
                        want = f"at least {lo}" if hi is None else str(lo if lo == hi else hi)
                        raise err(tname, node, f"wrong number of args for {name}: want {want} got {len(args)}")
                try:
                    return attr(*args)
                except TemplateError:
                    raise
                except Exception as exc:
                    raise err(tname, node, f"error calling {name}: {exc}") from exc
            if has_args or final is not MISSING:
                raise err(tname, node, f"{name} has arguments but cannot be invoked as function")
            return attr

        return get

    def compile_arg(self, node: Node) -> Eval:
        """Go's ``evalArg``: an argument position (functions get called with no arguments)."""
        if isinstance(node, DotNode):
            return _dot
        if isinstance(node, NilNode):
            return _nil
        if isinstance(node, FieldNode):
            chain = self.field_chain(node, node.idents, _EMPTY_ARGS, False)

            def arg_field(st: State, dot: Any) -> Any:
                return chain(st, dot, dot, MISSING)

            return arg_field
        if isinstance(node, VariableNode):
            name = node.idents[0]
            if len(node.idents) == 1:

                def arg_var(st: State, dot: Any) -> Any:
                    return st.var(name)

                return arg_var
            vchain = self.field_chain(node, node.idents[1:], _EMPTY_ARGS, False)

            def arg_var_fields(st: State, dot: Any) -> Any:
                return vchain(st, dot, st.var(name), MISSING)

            return arg_var_fields
        if isinstance(node, PipeNode):
            return self.compile_pipe(node)
        if isinstance(node, IdentifierNode):
            call = self.compile_call(node, [], None)

            def arg_call(st: State, dot: Any) -> Any:
                return call(st, dot, MISSING)

            return arg_call
        if isinstance(node, ChainNode):
            chain_cmd = self.compile_chain(node, None)

            def arg_chain(st: State, dot: Any) -> Any:
                return chain_cmd(st, dot, MISSING)

            return arg_chain
        const = self.constant(node)

        def arg_const(st: State, dot: Any) -> Any:
            return const

        return arg_const

    def compile_call(self, ident: IdentifierNode, args: list[Node], cmd: CommandNode | None) -> Cmd:
        name = ident.name
        tname = self.tname
        err = self.error
        where: Node = cmd if cmd is not None else ident
        argfns = tuple(self.compile_arg(a) for a in args)
        nargs = len(args)
        user = self.funcs.get(name)
        if user is None:
            if name == "json" and self.html:
                from kapacity.gotmpl._funcs import json_func

                user = json_func
        if user is not None:
            fn = user
            bounds = _signature_bounds(fn)

            def call_user(st: State, dot: Any, final: Any) -> Any:
                values = [_arg_value(f(st, dot)) for f in argfns]
                if final is not MISSING:
                    values.append(_arg_value(final))
                if bounds is not None:
                    lo, hi = bounds
                    if hi is None and len(values) < lo:
                        raise err(tname, where, f"wrong number of args for {name}: want at least {lo} got {nargs}")
                    if hi is not None and not lo <= len(values) <= hi:
                        want = lo if lo == hi else hi
                        raise err(tname, where, f"wrong number of args for {name}: want {want} got {len(values)}")
                try:
                    return fn(*values)
                except TemplateError:
                    raise
                except Exception as exc:
                    raise err(tname, where, f"error calling {name}: {exc}") from exc

            return call_user
        spec: Builtin = BUILTINS[name]
        if name in ("and", "or"):
            return self.compile_and_or(name, argfns, where)
        bfn = spec.fn
        raw = spec.raw

        def arity_error(final: Any) -> str | None:
            n = nargs + (0 if final is MISSING else 1)
            if spec.variadic:
                if n < spec.fixed:
                    return f"wrong number of args for {name}: want at least {spec.fixed} got {nargs}"
            elif n != spec.fixed:
                return f"wrong number of args for {name}: want {spec.fixed} got {n}"
            return None

        # Arity only depends on whether a value is piped in: decide both cases now.
        bad_alone = arity_error(MISSING)
        bad_piped = arity_error(None)

        def call_builtin(st: State, dot: Any, final: Any) -> Any:
            bad = bad_alone if final is MISSING else bad_piped
            if bad is not None:
                raise err(tname, where, bad)
            if raw:
                values = [f(st, dot) for f in argfns]
                if final is not MISSING:
                    values.append(final)
            else:
                values = [_arg_value(f(st, dot)) for f in argfns]
                if final is not MISSING:
                    values.append(_arg_value(final))
            try:
                return bfn(*values)
            except TemplateError:
                raise
            except Exception as exc:
                raise err(tname, where, f"error calling {name}: {exc}") from exc

        return call_builtin

    def compile_and_or(self, name: str, argfns: tuple[Eval, ...], where: Node) -> Cmd:
        want_truth = name == "or"
        tname = self.tname
        err = self.error

        def call_and_or(st: State, dot: Any, final: Any) -> Any:
            if not argfns and final is MISSING:
                raise err(tname, where, f"wrong number of args for {name}: want at least 1 got 0")
            v: Any = NO_VALUE
            for f in argfns:
                v = f(st, dot)
                if is_true(v) == want_truth:
                    return v
            if final is not MISSING:
                v = final
            return v

        return call_and_or


def _noop(st: State, dot: Any) -> None:
    return None


def _dot(st: State, dot: Any) -> Any:
    return dot


def _nil(st: State, dot: Any) -> Any:
    return None


def _arg_value(v: Any) -> Any:
    """An argument for an ``interface{}`` parameter: the invalid value becomes nil."""
    return None if v is NO_VALUE else v


def _sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=lambda k: (type(k).__name__, str(k)))


def _quote(s: str) -> str:
    from kapacity.gotmpl.gofmt import go_quote

    return go_quote(s)
