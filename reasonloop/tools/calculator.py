"""A calculator tool: exact arithmetic on a parsed expression, never ``eval``.

The expression is parsed with :mod:`ast` and only numbers, arithmetic operators and
a few math functions are interpreted, so it needs no sandbox. Integers and
fractions stay exact (``Fraction``); sizes are bounded so ``9**9**9`` is refused
instead of hanging the process.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from reasonloop.tools.base import Tool, tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = ["CalculatorError", "calculator_tool", "evaluate"]

MAX_EXPRESSION_CHARS = 2_000
MAX_INT_BITS = 4_096
MAX_DEPTH = 64

Number = int | float | Fraction


class CalculatorError(ValueError):
    """The expression is not plain arithmetic or exceeds a size bound."""


def _pow(a: Number, b: Number) -> Number:
    if isinstance(b, int | Fraction) and isinstance(a, int | Fraction) and not isinstance(a, bool):
        if Fraction(b).denominator != 1:
            return float(a) ** float(b)
        exp = int(b)
        base_bits = max(abs(Fraction(a).numerator).bit_length(), abs(Fraction(a).denominator).bit_length(), 1)
        if abs(exp) * base_bits > MAX_INT_BITS:
            raise CalculatorError(f"result of ** is too large (more than {MAX_INT_BITS} bits)")
        return Fraction(a) ** exp
    return float(a) ** float(b)


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    if isinstance(a, float) or isinstance(b, float):
        return float(a) / float(b)
    return Fraction(a) / Fraction(b)


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("modulo by zero")
    return a % b


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _div,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise CalculatorError("sqrt of a negative number")
    if isinstance(x, int) or (isinstance(x, Fraction) and x.denominator == 1):
        root = math.isqrt(int(x))
        if root * root == x:
            return root
    return math.sqrt(float(x))


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": lambda x, n=0: round(Fraction(x), int(n)) if n else round(Fraction(x)),
    "min": min,
    "max": max,
    "sqrt": _sqrt,
    "floor": lambda x: math.floor(x),
    "ceil": lambda x: math.ceil(x),
    "log": lambda x, base=math.e: math.log(float(x), float(base)),
    "exp": lambda x: math.exp(float(x)),
    "sin": lambda x: math.sin(float(x)),
    "cos": lambda x: math.cos(float(x)),
    "tan": lambda x: math.tan(float(x)),
    "gcd": lambda a, b: math.gcd(int(a), int(b)),
    "factorial": lambda n: _factorial(n),
}
_CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e}


def _factorial(n: Number) -> int:
    if Fraction(n).denominator != 1 or n < 0:
        raise CalculatorError("factorial needs a non-negative integer")
    if n > 500:
        raise CalculatorError("factorial argument too large (max 500)")
    return math.factorial(int(n))


def _eval(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            raise CalculatorError("number too large")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        result = _BINARY[type(node.op)](_eval(node.left, depth + 1), _eval(node.right, depth + 1))
        _check_size(result)
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_eval(a, depth + 1) for a in node.args]
        result = _FUNCTIONS[node.func.id](*args)
        _check_size(result)
        return result
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise CalculatorError(
        f"unsupported syntax {type(node).__name__}: use numbers, + - * / // % **, parentheses and {allowed}"
    )


def _check_size(value: Number) -> None:
    if isinstance(value, int | Fraction):
        frac = Fraction(value)
        if max(frac.numerator.bit_length(), frac.denominator.bit_length()) > MAX_INT_BITS:
            raise CalculatorError(f"intermediate result too large (more than {MAX_INT_BITS} bits)")


def _format(value: Number) -> str:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        decimal = _terminating_decimal(value)
        if decimal is not None:
            return decimal
        return f"{value.numerator}/{value.denominator} (~{float(value):.12g})"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


def _terminating_decimal(value: Fraction) -> str | None:
    """Exact decimal digits when the denominator is 2**a * 5**b (and short)."""
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    places = max(twos, fives)
    if den != 1 or places > 30:
        return None
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def evaluate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and format the result.

    Raises:
        CalculatorError: the expression is empty, not arithmetic, or too large.
    """
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg} at column {exc.offset}") from None
    try:
        return _format(_eval(tree, 0))
    except (OverflowError, ValueError, TypeError, ZeroDivisionError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(f"{type(exc).__name__}: {exc}") from None


def calculator_tool() -> Tool:
    """The ``calculator`` tool (exact arithmetic, no code execution)."""

    @tool(name="calculator", timeout_s=5.0)
    def calculator(expression: str) -> ToolResult:
        """Evaluate an arithmetic expression exactly, e.g. ``(17 + 5) * 3 / 4``.

        Args:
            expression: Numbers with + - * / // % ** and parentheses; functions abs, round,
                min, max, sqrt, floor, ceil, log, exp, sin, cos, tan, gcd, factorial.
        """
        try:
            value = evaluate(expression)
        except CalculatorError as exc:
            return ToolResult(status=ToolStatus.ERROR, error=str(exc))
        return ToolResult(status=ToolStatus.OK, output=value, data={"value": value})

    return calculator
