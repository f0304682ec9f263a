"""The tools protocol: typed functions whose schema comes from their signature.

    @tool
    def add(a: int, b: int) -> int:
        '''Add two integers.

        Args:
            a: First term.
            b: Second term.
        '''
        return a + b

Calling a tool never raises on bad input: arguments are validated with pydantic
before the function runs, and bad arguments, exceptions and timeouts come back as a
:class:`ToolResult` with a status and a message the model can act on.

Stateful tools (an interpreter session, a memory view) declare a
:class:`SessionFactory`; a :class:`Toolset` opens one session per episode, forks
them when the episode is forked and closes them at the end.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, get_type_hints, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from reasonloop.errors import ToolDefinitionError
from reasonloop.policy.base import ToolSpec
from reasonloop.trajectory.schema import ToolCall, ToolResult, ToolStatus

__all__ = [
    "SessionFactory",
    "Tool",
    "ToolContext",
    "Toolset",
    "ToolsetSession",
    "tool",
]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
DEFAULT_MAX_OUTPUT_CHARS = 16_000


@runtime_checkable
class SessionFactory(Protocol):
    """Per-episode state of a stateful tool."""

    def open(self) -> Any:
        """Create a fresh session (called once per episode, lazily)."""
        ...

    def fork(self, session: Any) -> Any:
        """Return an independent copy of ``session``."""
        ...

    def close(self, session: Any) -> None:
        """Release ``session`` (idempotent)."""
        ...


@dataclass(kw_only=True)
class ToolContext:
    """What a tool function may receive besides its arguments (declare a
    parameter annotated ``ToolContext``; it is not part of the schema)."""

    episode_id: str = ""
    session: Any = None
    """The episode's session for this tool's :class:`SessionFactory`, if any."""
    timeout_s: float | None = None


@dataclass(kw_only=True, eq=False)
class Tool:
    """A callable tool with a JSON schema. Build it with :func:`tool`."""

    name: str
    """Name the model uses to call the tool."""
    description: str
    """First paragraph of the docstring: what the tool does."""
    fn: Callable[..., Any]
    """The function (sync or async)."""
    args_model: type[BaseModel]
    """Pydantic model validating the arguments (extra keys are rejected)."""
    context_param: str | None = None
    """Name of the parameter that receives the :class:`ToolContext`, if any."""
    timeout_s: float | None = 60.0
    """Wall-clock limit of one call; ``None`` for none."""
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    """Longer outputs are cut and marked ``truncated``."""
    sessions: SessionFactory | None = None
    """Per-episode state, opened by a :class:`ToolsetSession`."""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ToolDefinitionError(f"invalid tool name {self.name!r}: use letters, digits, '_' and '-'")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ToolDefinitionError("timeout_s must be > 0 or None")
        if self.max_output_chars < 1:
            raise ToolDefinitionError("max_output_chars must be >= 1")

    @property
    def spec(self) -> ToolSpec:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    async def __call__(self, arguments: dict[str, Any] | str | None = None, *, context: ToolContext | None = None) -> ToolResult:
        """Validate ``arguments``, run the tool, and return a :class:`ToolResult`."""
        start = time.perf_counter()
        parsed = _parse_arguments(arguments)
        if isinstance(parsed, str):
            return ToolResult(status=ToolStatus.INVALID_ARGUMENTS, error=parsed, duration_s=time.perf_counter() - start)
        try:
            values = self.args_model.model_validate(parsed)
        except ValidationError as exc:
            return ToolResult(
                status=ToolStatus.INVALID_ARGUMENTS,
                error=_describe_validation(self.name, exc),
                duration_s=time.perf_counter() - start,
            )
        kwargs = {k: getattr(values, k) for k in type(values).model_fields}
        ctx = context or ToolContext(timeout_s=self.timeout_s)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        try:
            raw = await asyncio.wait_for(self._invoke(kwargs), timeout=self.timeout_s)
        except TimeoutError:
            return ToolResult(
                status=ToolStatus.TIMEOUT,
                error=f"{self.name} did not finish within {self.timeout_s:g} s",
                duration_s=time.perf_counter() - start,
            )
        except Exception as exc:  # a tool's own failure is an observation, not a crash
            return ToolResult(
                status=ToolStatus.ERROR,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=time.perf_counter() - start,
            )
        result = _to_result(raw)
        return self._finish(result, time.perf_counter() - start)

    async def _invoke(self, kwargs: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        value = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(value):
            return await value
        return value

    def _finish(self, result: ToolResult, elapsed: float) -> ToolResult:
        update: dict[str, Any] = {"duration_s": result.duration_s or elapsed}
        if len(result.output) > self.max_output_chars:
            cut = len(result.output) - self.max_output_chars
            update["output"] = result.output[: self.max_output_chars] + f"\n... [truncated {cut} characters]"
            update["truncated"] = True
        return result.model_copy(update=update)


def _parse_arguments(arguments: dict[str, Any] | str | None) -> dict[str, Any] | str:
    """Decode arguments; a string return value is an error message."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        text = arguments.strip()
        if not text:
            return {}
        try:
            arguments = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"arguments are not valid JSON ({exc.msg} at position {exc.pos}); send a JSON object"
    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, got {type(arguments).__name__}"
    return arguments


def _describe_validation(name: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{loc}: {err['msg']}")
    return f"invalid arguments for {name}: " + "; ".join(problems)


def _to_result(raw: Any) -> ToolResult:
    if isinstance(raw, ToolResult):
        return raw
    if raw is None:
        return ToolResult(status=ToolStatus.OK, output="")
    if isinstance(raw, str):
        return ToolResult(status=ToolStatus.OK, output=raw)
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json")
    try:
        text = json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(raw)
    data = raw if isinstance(raw, dict) else {"value": raw}
    try:
        json.dumps(data)
    except (TypeError, ValueError):
        data = {"value": text}
    return ToolResult(status=ToolStatus.OK, output=text, data=data)


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_SECTION = re.compile(r"^\s*(Returns|Raises|Yields|Examples?|Notes?):\s*$")
_PARAM = re.compile(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Google-style docstring -> (description, {param: description})."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    desc: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _ARGS_HEADER.match(lines[i]) and not _SECTION.match(lines[i]):
        desc.append(lines[i])
        i += 1
    current: str | None = None
    in_args = False
    for line in lines[i:]:
        if _ARGS_HEADER.match(line):
            in_args, current = True, None
            continue
        if _SECTION.match(line):
            in_args, current = False, None
            continue
        if not in_args:
            continue
        m = _PARAM.match(line)
        if m and (len(line) - len(line.lstrip())) <= 4:
            current = m.group(1).lstrip("*")
            params[current] = m.group(3).strip()
        elif current and line.strip():
            params[current] = (params[current] + " " + line.strip()).strip()
    text = "\n".join(desc).strip()
    first_para = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    return first_para, params


def _build_args_model(fn: Callable[..., Any], name: str, param_docs: dict[str, str]) -> tuple[type[BaseModel], str | None]:
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"tool {name}: cannot resolve type hints ({exc})") from exc
    fields: dict[str, Any] = {}
    context_param: str | None = None
    from pydantic import Field as PydField

    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(f"tool {name}: *args/**kwargs are not allowed in a tool signature")
        if pname not in hints:
            raise ToolDefinitionError(f"tool {name}: parameter {pname!r} needs a type annotation")
        annotation = hints[pname]
        if annotation is ToolContext:
            context_param = pname
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, PydField(default, description=param_docs.get(pname) or None))
    model = create_model(  # type: ignore[call-overload]
        f"{name}_args",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    return model, context_param


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = 60.0,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    sessions: SessionFactory | None = None,
) -> Any:
    """Turn a typed function into a :class:`Tool` (usable bare or with options)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        tool_name = name or f.__name__
        doc_desc, param_docs = _parse_docstring(f.__doc__ or "")
        args_model, context_param = _build_args_model(f, tool_name, param_docs)
        return Tool(
            name=tool_name,
            description=description or doc_desc,
            fn=f,
            args_model=args_model,
            context_param=context_param,
            timeout_s=timeout_s,
            max_output_chars=max_output_chars,
            sessions=sessions,
        )

    if fn is not None:
        return wrap(fn)
    return wrap


class Toolset:
    """A named collection of tools; ``open()`` gives the per-episode view."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            if not isinstance(t, Tool):
                raise ToolDefinitionError(f"{t!r} is not a Tool; decorate the function with @tool")
            if t.name in self._tools:
                raise ToolDefinitionError(f"two tools are named {t.name!r}")
            self._tools[t.name] = t

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    def open(self, episode_id: str = "") -> ToolsetSession:
        return ToolsetSession(self, episode_id)


@dataclass(eq=False)
class ToolsetSession:
    """The tools of one episode, with their per-episode sessions."""

    toolset: Toolset
    episode_id: str = ""
    _states: dict[int, Any] = field(default_factory=dict)
    _closed: bool = False

    def _factories(self) -> dict[int, SessionFactory]:
        return {id(t.sessions): t.sessions for t in self.toolset._tools.values() if t.sessions is not None}

    def _session_for(self, t: Tool) -> Any:
        if t.sessions is None:
            return None
        key = id(t.sessions)
        if key not in self._states:
            self._states[key] = t.sessions.open()
        return self._states[key]

    async def call(self, call: ToolCall) -> ToolResult:
        """Run one call; unknown names and a closed session give error results."""
        return await self.invoke(call.name, call.arguments)

    async def invoke(self, name: str, arguments: dict[str, Any] | str | None = None) -> ToolResult:
        """Run tool ``name`` with raw ``arguments`` (a dict or a JSON string)."""
        if self._closed:
            return ToolResult(status=ToolStatus.REFUSED, error="the episode's tools are closed")
        t = self.toolset._tools.get(name)
        if t is None:
            valid = ", ".join(self.toolset.names) or "(none)"
            return ToolResult(status=ToolStatus.ERROR, error=f"unknown tool {name!r}; available tools: {valid}")
        try:
            session = self._session_for(t)
        except Exception as exc:
            return ToolResult(status=ToolStatus.ERROR, error=f"{t.name} could not start: {type(exc).__name__}: {exc}")
        ctx = ToolContext(episode_id=self.episode_id, session=session, timeout_s=t.timeout_s)
        return await t(arguments, context=ctx)

    def fork(self, episode_id: str = "") -> ToolsetSession:
        """An independent copy: each open session is forked through its factory."""
        child = ToolsetSession(self.toolset, episode_id or self.episode_id)
        factories = self._factories()
        for key, state in self._states.items():
            child._states[key] = factories[key].fork(state)
        return child

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        factories = self._factories()
        for key, state in list(self._states.items()):
            try:
                factories[key].close(state)
            finally:
                self._states.pop(key, None)

    async def __aenter__(self) -> ToolsetSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> ToolsetSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_toolset(tools: Toolset | Sequence[Tool] | None) -> Toolset:
    """Accept a Toolset or a list of tools."""
    if tools is None:
        return Toolset()
    if isinstance(tools, Toolset):
        return tools
    return Toolset(tools)


AsyncToolFn = Callable[..., Awaitable[Any]]
