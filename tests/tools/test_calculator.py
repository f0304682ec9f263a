"""The calculator tool: exact answers, bounded work, clear errors."""

import asyncio

import pytest

from reasonloop.tools.calculator import CalculatorError, calculator_tool, evaluate
from reasonloop.trajectory.schema import ToolStatus


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(17 + 5) * 3 / 4", "16.5"),
        ("1 / 3", "1/3 (~0.333333333333)"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("2^10", "1024"),
        ("sqrt(144) + abs(-3)", "15"),
        ("10 // 3 + 10 % 3", "4"),
        ("round(2.5) + round(7 / 2)", "6"),
        ("-7 / 8", "-0.875"),
        ("factorial(10)", "3628800"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("-(-4)", "4"),
    ],
)
def test_exact_results(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("", "empty expression"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("__import__('os').system('id')", "unsupported syntax"),
        ("open('/etc/passwd')", "unsupported syntax"),
        ("1 +", "not a valid expression"),
        ("x * 2", "unsupported syntax"),
        ("(" * 300 + "1" + ")" * 300, "not a valid expression"),
        ("1" * 3000, "longer than"),
        ("factorial(100000)", "too large"),
        ("sqrt(-1)", "negative"),
    ],
)
def test_bad_expressions_raise_calculator_error(expression, fragment):
    with pytest.raises(CalculatorError, match=fragment):
        evaluate(expression)


def test_tool_wraps_errors_as_results():
    calc = calculator_tool()
    ok = asyncio.run(calc({"expression": "6*7"}))
    assert ok.status is ToolStatus.OK and ok.output == "42" and ok.data == {"value": "42"}
    bad = asyncio.run(calc({"expression": "1/0"}))
    assert bad.status is ToolStatus.ERROR and bad.error == "division by zero"
    missing = asyncio.run(calc({}))
    assert missing.status is ToolStatus.INVALID_ARGUMENTS
