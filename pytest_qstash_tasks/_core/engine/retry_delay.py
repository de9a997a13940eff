"""``Upstash-Retry-Delay``: an arithmetic expression over ``retried``, read by a small
parser of the functions QStash documents. Nothing a client sends is ever evaluated as
Python: the text becomes a tree of numbers, ``retried``, operators and the nine
functions, and only that tree is computed.

Grammar (the documented examples: ``1000``, ``1000 * (1 + retried)``,
``pow(2, retried) * 1000``, ``max(1000, pow(2, retried) * 100)``)::

    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := ("-" | "+") unary | atom
    atom    := number | "retried" | name "(" sum ("," sum)* ")" | "(" sum ")"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryDelay"]

#: The functions QStash documents, with how many arguments each takes (None: one or more).
_FUNCTIONS: dict[str, tuple[Callable[..., float], int | None]] = {
    "pow": (lambda a, b: math.pow(a, b), 2),
    "sqrt": (math.sqrt, 1),
    "abs": (abs, 1),
    "exp": (math.exp, 1),
    "floor": (math.floor, 1),
    "ceil": (math.ceil, 1),
    "round": (lambda a: math.floor(a + 0.5), 1),
    "min": (lambda *values: min(values), None),  # Python's min(x) wants an iterable
    "max": (lambda *values: max(values), None),
}
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z_0-9]*)|(\S))", re.ASCII)
_MAX_LENGTH = 1000
_MAX_DEPTH = 50
#: The longest delay QStash waits between attempts (a day), in ms.
_MAX_MS = 86_400_000

_Node = tuple[object, ...]


@dataclass(frozen=True)
class RetryDelay:
    """A parsed ``Upstash-Retry-Delay`` expression; ``ms(retried)`` is the delay."""

    text: str
    _tree: _Node

    @classmethod
    def parse(cls, text: str) -> RetryDelay:
        """The expression, or ``ValueError`` saying what is wrong and where."""
        if len(text) > _MAX_LENGTH:
            raise ValueError(f"the expression is over {_MAX_LENGTH} characters")
        parser = _Parser(text)
        tree = parser.sum(0)
        left = parser.peek()
        if left is not None:
            raise parser.error("unexpected", left)
        delay = cls(text, tree)
        delay.ms(0)  # a domain error (sqrt(-1), 1/0) shows now, not at the first retry
        return delay

    def delays(self, retries: int) -> tuple[int, ...]:
        """The delay before each retry of a message with ``retries`` retries: ``ms(0)``
        to ``ms(retries - 1)``. Computed when the message is published, so an
        expression that fails at a later retry (``1000 / (retried - 1)``) is refused then,
        and no attempt computes anything that can fail. ``ValueError`` names the first
        ``retried`` it cannot be computed for."""
        return tuple(self.ms(retried) for retried in range(retries))

    def ms(self, retried: int) -> int:
        """The delay before the next attempt, in whole ms (0 to a day), when the
        message has been retried ``retried`` times so far (0 before the first retry)."""
        try:
            value = _evaluate(self._tree, retried)
        except (ArithmeticError, ValueError) as error:
            raise ValueError(
                f"{self.text!r} cannot be computed for retried={retried}: {error}"
            ) from None
        if math.isnan(value):
            raise ValueError(f"{self.text!r} is not a number for retried={retried}")
        return int(min(max(value, 0.0), _MAX_MS))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        # Every character but a blank starts a token, so the matches follow each other
        # with nothing skipped; only trailing blanks are left unmatched.
        for match in _TOKEN.finditer(text):
            number, name, symbol = match.groups()
            kind = "number" if number else "name" if name else "symbol"
            value = number or name or symbol
            self.tokens.append((kind, value, match.end() - len(value)))
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def error(self, what: str, token: tuple[str, str, int]) -> ValueError:
        """``what`` the ``token`` in hand is, and where it stands."""
        return ValueError(f"{what} {token[1]!r} at position {token[2]} of {self.text!r}")

    def expect(self, symbol: str) -> None:
        token = self.peek()
        if token is None:
            raise ValueError(f"{self.text!r} ends too early: want {symbol!r}")
        if token[1] != symbol:
            raise self.error(f"want {symbol!r}, got", token)
        self.index += 1

    def sum(self, depth: int) -> _Node:
        node = self.product(depth)
        while (
            (token := self.peek()) is not None and token[1] in ("+", "-") and token[0] == "symbol"
        ):
            self.index += 1
            node = (token[1], node, self.product(depth))
        return node

    def product(self, depth: int) -> _Node:
        node = self.unary(depth)
        while (
            (token := self.peek()) is not None
            and token[1] in ("*", "/", "%")
            and token[0] == "symbol"
        ):
            self.index += 1
            node = (token[1], node, self.unary(depth))
        return node

    def unary(self, depth: int) -> _Node:
        # Every nesting (a sign, a parenthesis, a function's argument) passes here one
        # level deeper: the one place the depth is bounded.
        if depth > _MAX_DEPTH:
            raise ValueError(f"{self.text!r} nests deeper than {_MAX_DEPTH} levels")
        token = self.peek()
        if token is not None and token[0] == "symbol" and token[1] in ("+", "-"):
            self.index += 1
            operand = self.unary(depth + 1)
            return ("neg", operand) if token[1] == "-" else operand
        return self.atom(depth)

    def atom(self, depth: int) -> _Node:
        token = self.peek()
        if token is None:
            raise ValueError(f"{self.text!r} ends too early")
        kind, value, _ = token
        if kind == "number":
            self.index += 1
            return ("num", float(value))
        if kind == "name":
            self.index += 1
            if value == "retried":
                return ("retried",)
            if value not in _FUNCTIONS:
                known = ", ".join(_FUNCTIONS)
                raise self.error(
                    f"unknown name (the variable is retried; functions: {known}):", token
                )
            self.expect("(")
            arguments = [self.sum(depth + 1)]
            while (comma := self.peek()) is not None and comma[1] == ",":
                self.index += 1
                arguments.append(self.sum(depth + 1))
            self.expect(")")
            arity = _FUNCTIONS[value][1]
            if arity is not None and len(arguments) != arity:
                raise ValueError(
                    f"{value}() takes {arity} argument(s), got {len(arguments)} in {self.text!r}"
                )
            return ("call", value, *arguments)
        if value == "(":
            self.index += 1
            node = self.sum(depth + 1)
            self.expect(")")
            return node
        raise self.error("unexpected", token)


def _evaluate(node: _Node, retried: int) -> float:
    kind = node[0]
    if kind == "num":
        return node[1]  # type: ignore[return-value]
    if kind == "retried":
        return float(retried)
    if kind == "neg":
        return -_evaluate(node[1], retried)  # type: ignore[arg-type]
    if kind == "call":
        function = _FUNCTIONS[node[1]][0]  # type: ignore[index]
        return float(function(*(_evaluate(arg, retried) for arg in node[2:])))  # type: ignore[arg-type]
    left = _evaluate(node[1], retried)  # type: ignore[arg-type]
    right = _evaluate(node[2], retried)  # type: ignore[arg-type]
    if kind == "+":
        return left + right
    if kind == "-":
        return left - right
    if kind == "*":
        return left * right
    if kind == "/":
        return left / right
    return math.fmod(left, right)
