"""The child side of z3py checks: a program runs in its own ``python -I -B`` process.

The convention: the program builds its constraints with z3py and leaves the solver in
a variable named ``solver`` (a ``z3.Solver`` or ``z3.Optimize``); the child then runs
``solver.check()`` under the time limit and reports the verdict, model, unsat core or
the reason for ``unknown`` as one JSON line. Only that JSON crosses the boundary.

The process is fresh, so z3's main context is fresh too (declarations never leak
between queries). Before the program runs, the child installs an audit hook that
refuses new processes, threads, sockets, file writes, reads outside the Python
installation, signals and loading native libraries. An audit hook is a tripwire, not
a sandbox: isolation comes from the process limits today and from the sandbox runner
where it is used.
"""

from __future__ import annotations

__all__ = ["CHILD_SOURCE", "RESULT_MARKER", "STAGE_MARKER"]

RESULT_MARKER = "\x1ez3py-result\x1e"
STAGE_MARKER = "\x1ez3py-checking\x1e"

CHILD_SOURCE = r"""
import builtins, contextlib, io, json, os, sys, traceback
import z3

RESULT, STAGE = %(result)r, %(stage)r
TIMEOUT_MS, MAX_OUT = %(timeout_ms)d, %(max_out)d
_out_fd = os.dup(1)


def emit(payload):
    os.write(_out_fd, (RESULT + json.dumps(payload) + "\n").encode())
    os._exit(0)


ROOTS = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
              os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(z3.__file__)))})
BLOCKED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
           "os.killpg", "subprocess.Popen", "pty.spawn", "socket.", "_thread.start_new_thread",
           "os.remove", "os.unlink", "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.symlink",
           "os.link", "os.chmod", "os.chown", "os.truncate", "os.utime", "os.chdir", "shutil.",
           "ctypes.dlopen", "ctypes.dlsym", "signal.pthread_kill", "sys.setrecursionlimit",
           "resource.setrlimit", "resource.prlimit", "sys.remote_exec")


def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing:
            raise PermissionError(f"writing files is not allowed in a z3py check: {path!r}")
        if isinstance(path, (str, bytes)) and not os.path.realpath(os.fsdecode(path)).startswith(ROOTS):
            raise PermissionError(f"reading {path!r} is not allowed in a z3py check")
    elif event.startswith(BLOCKED):
        raise PermissionError(f"{event} is not allowed in a z3py check")


def frames(exc):
    lines = []
    for f in traceback.extract_tb(exc.__traceback__):
        line = f"line {f.lineno}: {f.line or ''}".rstrip()
        if f.filename == "<z3py>" and (not lines or lines[-1] != line):
            lines.append(line)
    return "\n".join(lines[-5:] + [f"{type(exc).__name__}: {exc}".rstrip(": ")])


def no_threads(*args, **kwargs):
    raise PermissionError("threads are not allowed in a z3py check")


def describe(solver):
    verdict = str(solver.check())
    out = {"status": "checked", "verdict": verdict, "model": {}, "core": None, "reason": None}
    if verdict == "sat":
        model = solver.model()
        out["model"] = {str(d.name()): str(model[d]) for d in model.decls()}
    elif verdict == "unsat" and isinstance(solver, z3.Solver):
        with contextlib.suppress(z3.Z3Exception):
            out["core"] = [str(c) for c in solver.unsat_core()]
    else:
        out["reason"] = solver.reason_unknown()
    return out


def main():
    source = sys.stdin.buffer.read()
    try:
        code = compile(source.decode("utf-8"), "<z3py>", "exec")
    except UnicodeDecodeError as exc:
        emit({"status": "error", "message": f"the program is not valid UTF-8 (byte {exc.start})"})
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        emit({"status": "error", "message": f"line {line}: {type(exc).__name__}: {getattr(exc, 'msg', exc)}"})
    import _thread, threading
    _thread.start_new_thread = _thread.start_new = threading._start_new_thread = no_threads
    sys.addaudithook(hook)
    namespace = {"__name__": "__z3py__", "__builtins__": builtins}
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            exec(code, namespace)
    except BaseException as exc:
        emit({"status": "error", "message": frames(exc), "output": captured.getvalue()[:MAX_OUT]})
    solver = namespace.get("solver")
    if not isinstance(solver, (z3.Solver, z3.Optimize)):
        emit({"status": "error", "output": captured.getvalue()[:MAX_OUT], "message":
              "the program must leave its z3.Solver (or z3.Optimize) in a variable named `solver`"})
    os.write(2, STAGE.encode())
    try:
        solver.set(timeout=TIMEOUT_MS)
        result = describe(solver)
    except (MemoryError, z3.Z3Exception) as exc:
        if not isinstance(exc, MemoryError) and "memory" not in str(exc).lower():
            emit({"status": "error", "message": frames(exc), "output": captured.getvalue()[:MAX_OUT]})
        result = {"status": "checked", "verdict": "unknown", "reason": "out of memory", "model": {}, "core": None}
    except BaseException as exc:
        emit({"status": "error", "message": frames(exc), "output": captured.getvalue()[:MAX_OUT]})
    result["output"] = captured.getvalue()[:MAX_OUT]
    emit(result)


main()
"""
"""Filled with ``%`` formatting: result, stage, timeout_ms, max_out."""
