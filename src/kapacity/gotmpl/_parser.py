"""Parser for Go templates, mirroring ``text/template/parse/parse.go``.

Produces a main ``ListNode`` plus the templates named by ``define``/``block``.
Error messages use Go's wording, with a ``line:col`` position added.
"""

from __future__ import annotations

from collections.abc import Container

from kapacity.gotmpl import _lexer as lx
from kapacity.gotmpl._lexer import Token
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
    ElseNode,
    EndNode,
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
from kapacity.gotmpl.errors import TemplateError


def position(text: str, pos: int) -> tuple[int, int]:
    """Go's ``ErrorContext`` position: 1-based line, 0-based column."""
    line = text.count("\n", 0, pos) + 1
    nl = text.rfind("\n", 0, pos)
    col = pos if nl < 0 else pos - nl - 1
    return line, col


class _Abort(Exception):
    pass


_SIMPLE_ESC = {
    "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92,
}  # fmt: skip


def go_unquote(quoted: str) -> str:
    """Go's ``strconv.Unquote`` for ``"..."``, `` `...` `` and ``'x'`` literals."""
    if len(quoted) < 2:
        raise ValueError("invalid syntax")
    q = quoted[0]
    body = quoted[1:-1]
    if quoted[-1] != q:
        raise ValueError("invalid syntax")
    if q == "`":
        return body.replace("\r", "")
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == q:
            raise ValueError("invalid syntax")
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("invalid syntax")
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[e])
        elif e == q:
            out += e.encode()
        elif e == "x":
            out.append(_hex(body[i : i + 2], 2))
            i += 2
        elif e in "01234567":
            digits = e + body[i : i + 2]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            v = int(digits, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            out.append(v)
            i += 2
        elif e in "uU":
            size = 4 if e == "u" else 8
            r = _hex(body[i : i + size], size)
            if r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
                raise ValueError("invalid syntax")
            out += chr(r).encode("utf-8")
            i += size
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "replace")


def _hex(s: str, size: int) -> int:
    if len(s) != size or any(c not in "0123456789abcdefABCDEF" for c in s):
        raise ValueError("invalid syntax")
    return int(s, 16)


def _parse_int(text: str) -> int:
    t = text.replace("_", "")
    sign = 1
    if t[:1] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    low = t.lower()
    if low.startswith("0x"):
        return sign * int(t[2:], 16)
    if low.startswith("0o"):
        return sign * int(t[2:], 8)
    if low.startswith("0b"):
        return sign * int(t[2:], 2)
    if len(t) > 1 and t[0] == "0":
        return sign * int(t[1:], 8)
    return sign * int(t, 10)


def _is_hex_int(text: str) -> bool:
    t = text.lstrip("+-").lower()
    return t.startswith("0x") and "." not in t and "p" not in t


def number_value(text: str, kind: str) -> int | float:
    """The constant a number literal denotes, chosen like Go's ``idealConstant``."""
    if kind == lx.CHAR_CONSTANT:
        s = go_unquote(text)
        if len(s) != 1:
            raise ValueError(f"malformed character constant: {text}")
        return ord(s)
    if text.endswith("i"):
        try:
            number_value(text[:-1], lx.NUMBER)
        except ValueError:
            raise ValueError(f"illegal number syntax: {_q(text)}") from None
        raise ValueError(f"complex numbers are not supported: {text}")
    looks_float = any(c in text for c in ".eEpP") and not _is_hex_int(text)
    if not looks_float:
        try:
            v = _parse_int(text)
        except ValueError:
            raise ValueError(f"illegal number syntax: {_q(text)}") from None
        if not -(2**63) <= v < 2**63:
            raise ValueError(f"integer overflow: {_q(text)}") if v >= 2**64 or v < -(2**63) else ValueError(
                f"{text} overflows int"
            )
        return v
    t = text.replace("_", "")
    try:
        if "x" in t.lower():
            return float.fromhex(t)
        return float(t)
    except ValueError:
        raise ValueError(f"illegal number syntax: {_q(text)}") from None


def _q(s: str) -> str:
    from kapacity.gotmpl.gofmt import go_quote

    return go_quote(s)


class Parser:
    """Parses one template text into its main tree and ``define`` d trees."""

    def __init__(self, text: str, name: str, funcs: Container[str]) -> None:
        self.text = text
        self.name = name
        self.funcs = funcs
        # Padding EOFs lets peek/backup at the end behave like Go's lexer, which keeps emitting EOF.
        self.tokens = lx.lex(text)
        self.tokens += [self.tokens[-1]] * 4
        self.i = 0
        self.last: Token = self.tokens[0]
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_pos = -1
        self.defined: dict[str, ListNode] = {}

    # -- errors ------------------------------------------------------------
    def error(self, msg: str, pos: int | None = None) -> TemplateError:
        p = self.last.pos if pos is None else pos
        line, col = position(self.text, p)
        return TemplateError(f"template: {self.name}:{line}:{col}: {msg}", name=self.name, line=line, col=col)

    def unexpected(self, tok: Token, context: str) -> TemplateError:
        if tok.kind == lx.ERROR:
            extra = ""
            if self.action_pos >= 0:
                aline, _ = position(self.text, self.action_pos)
                tline, _ = position(self.text, tok.pos)
                if aline != tline:
                    extra = f" in action started at {self.name}:{aline}"
                    if tok.val.endswith(" action"):
                        extra = extra[len(" in action") :]
            return self.error(tok.val + extra, tok.pos)
        return self.error(f"unexpected {tok.describe()} in {context}", tok.pos)

    # -- token stream ------------------------------------------------------
    def next(self) -> Token:
        tok = self.tokens[self.i]
        if self.i < len(self.tokens) - 1:
            self.i += 1
        self.last = tok
        return tok

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == lx.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    # -- top level ---------------------------------------------------------
    def parse(self) -> tuple[ListNode, dict[str, ListNode]]:
        root = ListNode(0)
        while self.peek().kind != lx.EOF:
            if self.peek().kind == lx.LEFT_DELIM:
                mark = self.i
                self.next()
                if self.next_non_space().kind == "define":
                    self.parse_definition()
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, EndNode | ElseNode):
                raise self.error(f"unexpected {node}", node.pos)
            root.nodes.append(node)
        if not _is_empty(root) or self.name not in self.defined:
            self.add_definition(self.name, root)
        return root, self.defined

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.kind not in (lx.STRING, lx.RAW_STRING):
            raise self.unexpected(tok, context)
        name = self.unquote(tok)
        self.expect(lx.RIGHT_DELIM, context)
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, EndNode):
            raise self.error(f"unexpected {end} in {context}", end.pos)
        self.add_definition(name, body)

    def add_definition(self, name: str, body: ListNode) -> None:
        # As in Go: an empty definition never replaces a non-empty one, and two
        # non-empty definitions of one name in the same text are an error.
        old = self.defined.get(name)
        if old is not None and not _is_empty(old):
            if _is_empty(body):
                return
            raise self.error(f"template: multiple definition of template {_q(name)}")
        self.defined[name] = body

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != lx.EOF:
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                return lst, n
            lst.nodes.append(n)
        raise self.error("unexpected EOF", self.peek().pos)

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind == lx.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.kind == lx.LEFT_DELIM:
            saved = self.action_pos
            self.action_pos = tok.pos
            try:
                return self.action()
            finally:
                self.action_pos = saved
        if tok.kind == lx.COMMENT:
            return CommentNode(tok.pos, tok.val)
        raise self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        k = tok.kind
        if k == "block":
            return self.block_control(tok)
        if k == "break":
            return self.break_control(tok, "break")
        if k == "continue":
            return self.break_control(tok, "continue")
        if k == "else":
            return self.else_control()
        if k == "end":
            return EndNode(self.expect(lx.RIGHT_DELIM, "end").pos)
        if k in ("if", "range", "with"):
            return self.branch(tok, k)
        if k == "template":
            return self.template_control(tok)
        self.backup()
        pipe = self.pipeline("command", lx.RIGHT_DELIM)
        return ActionNode(pipe.pos, pipe)

    def break_control(self, tok: Token, word: str) -> Node:
        nxt = self.next_non_space()
        if nxt.kind != lx.RIGHT_DELIM:
            raise self.unexpected(nxt, "{{" + word + "}}")
        if self.range_depth == 0:
            raise self.error("{{" + word + "}} outside {{range}}", tok.pos)
        return BreakNode(tok.pos) if word == "break" else ContinueNode(tok.pos)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        # "{{else if ...}}" / "{{else with ...}}" leave the keyword pending.
        if peek.kind in ("if", "with"):
            return ElseNode(peek.pos)
        tok = self.expect(lx.RIGHT_DELIM, "else")
        return ElseNode(tok.pos)

    def branch(self, tok: Token, context: str) -> BranchNode:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, lx.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body: ListNode | None = None
            if isinstance(nxt, ElseNode):
                if context in ("if", "with") and self.peek().kind == context:
                    kw = self.next()
                    else_body = ListNode(nxt.pos, [self.branch(kw, context)])
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, EndNode):
                        raise self.error(f"expected end; found {end}", end.pos)
            # Go positions control structures at their pipeline.
            return BranchNode(pipe.pos, context, pipe, body, else_body)
        finally:
            del self.vars[mark:]

    def template_control(self, tok: Token) -> TemplateNode:
        context = "template clause"
        name_tok = self.next_non_space()
        name = self.template_name(name_tok, context)
        pipe: PipeNode | None = None
        if self.next_non_space().kind != lx.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, lx.RIGHT_DELIM)
        return TemplateNode(name_tok.pos, name, pipe)

    def block_control(self, tok: Token) -> TemplateNode:
        context = "block clause"
        name_tok = self.next_non_space()
        name = self.template_name(name_tok, context)
        pipe = self.pipeline(context, lx.RIGHT_DELIM)
        saved_vars, self.vars = self.vars, ["$"]
        saved_depth, self.range_depth = self.range_depth, 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved_vars, saved_depth
        if not isinstance(end, EndNode):
            raise self.error(f"unexpected {end} in {context}", end.pos)
        self.add_definition(name, body)
        return TemplateNode(name_tok.pos, name, pipe)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.kind in (lx.STRING, lx.RAW_STRING):
            return self.unquote(tok)
        raise self.unexpected(tok, context)

    def unquote(self, tok: Token) -> str:
        try:
            return go_unquote(tok.val)
        except ValueError as exc:
            raise self.error(str(exc), tok.pos) from None

    # -- pipelines ---------------------------------------------------------
    def pipeline(self, context: str, end: str) -> PipeNode:
        start = self.peek_non_space()
        pipe = PipeNode(start.pos)
        while True:  # declarations
            v = self.peek_non_space()
            if v.kind != lx.VARIABLE:
                break
            mark = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.kind in (lx.ASSIGN, lx.DECLARE):
                pipe.is_assign = nxt.kind == lx.ASSIGN
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                if pipe.is_assign:
                    self.use_var_check(v)
                else:
                    self.vars.append(v.val)
                break
            if nxt.kind == lx.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().kind in (lx.VARIABLE, lx.RIGHT_DELIM, lx.RIGHT_PAREN):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            # Not a declaration: rewind to the variable.
            self.i = mark
            break
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in (
                lx.BOOL, lx.CHAR_CONSTANT, lx.DOT, lx.FIELD, lx.IDENTIFIER, lx.NUMBER, lx.NIL,
                lx.RAW_STRING, lx.STRING, lx.VARIABLE, lx.LEFT_PAREN,
            ):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def use_var_check(self, tok: Token) -> None:
        name = tok.val.split(".")[0]
        if name not in self.vars:
            raise self.error(f"undefined variable {_q(name)}", tok.pos)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.error(f"non executable command in pipeline stage {i + 2}", c.pos)

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == lx.SPACE:
                continue
            if tok.kind in (lx.RIGHT_DELIM, lx.RIGHT_PAREN):
                self.backup()
            elif tok.kind == lx.PIPE:
                pass
            else:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == lx.FIELD:
            fields: list[str] = []
            chain_pos = self.peek().pos
            while self.peek().kind == lx.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(node.pos, node.idents + fields)
            if isinstance(node, VariableNode):
                return VariableNode(node.pos, node.idents + fields)
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                raise self.error(f"unexpected . after term {_q(str(node))}", chain_pos)
            return ChainNode(node.pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        k = tok.kind
        if k == lx.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self.error(f"function {_q(tok.val)} not defined", tok.pos)
            return IdentifierNode(tok.pos, tok.val)
        if k == lx.DOT:
            return DotNode(tok.pos)
        if k == lx.NIL:
            return NilNode(tok.pos)
        if k == lx.VARIABLE:
            self.use_var_check(tok)
            return VariableNode(tok.pos, [tok.val])
        if k == lx.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if k == lx.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if k in (lx.NUMBER, lx.CHAR_CONSTANT):
            try:
                return NumberNode(tok.pos, tok.val, number_value(tok.val, k))
            except ValueError as exc:
                raise self.error(str(exc), tok.pos) from None
        if k == lx.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", lx.RIGHT_PAREN)
        if k in (lx.STRING, lx.RAW_STRING):
            return StringNode(tok.pos, tok.val, self.unquote(tok))
        self.backup()
        return None


def _is_empty(body: ListNode) -> bool:
    for n in body.nodes:
        if isinstance(n, TextNode):
            if n.text.strip():
                return False
        elif not isinstance(n, CommentNode):
            return False
    return True
