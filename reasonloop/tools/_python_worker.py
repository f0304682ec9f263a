"""The interpreter worker that runs INSIDE the sandbox (standard library only).

Started as ``python -I -S worker.py FD CONFIG_JSON``. It speaks newline-delimited JSON
over the AF_UNIX socket ``FD`` (never over stdout, which belongs to the user's code):

- ``{"op": "run", "code": str, "timeout_s": float, "keep": [pid, ...]}`` runs a cell in the
  branch's namespace and answers with stdout, stderr, the repr of the last expression,
  the exception (traceback trimmed to the cell's frames) and the duration. Afterwards every
  process in the sandbox except pid 1, this worker and the ``keep`` pids (sibling branches)
  is killed, so nothing the cell started outlives the call.
- ``{"op": "fork"}`` with a socket passed by SCM_RIGHTS: ``os.fork()``; the child copies the
  branch directory, switches to the new socket and says hello there.
- ``{"op": "exit"}`` ends this branch.

Output of the cell (Python-level and file-descriptor level, including subprocesses) goes to
unlinked files in the private /tmp and is read back with a cap.
"""

from __future__ import annotations

# Startup time is part of every new session: only C modules and json are imported
# eagerly; shutil, linecache and traceback load when a fork or an exception needs them.
import _ast
import _signal
import _socket
import array
import builtins
import json
import os
import resource
import sys
import time

MYPY = False
if MYPY:  # typing costs milliseconds of every session's startup; only the checker needs it
    from typing import Any

__all__ = ["main"]

_TRACEBACK_CAP = 20_000


class _CappedStream:
    """A text stream that buffers and writes to an fd until ``limit`` bytes, then drops."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.reset()

    def reset(self) -> None:
        self.buf: list[bytes] = []
        self.pending = 0
        self.written = 0
        self.dropped = False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        room = self.limit - self.written - self.pending
        if len(data) > room:
            self.dropped = True
            data = data[: max(room, 0)]
        if data:
            # written through at once, so output interleaves with subprocesses' in order
            self.buf.append(data)
            self.pending += len(data)
            self.flush()
        return len(text)

    def flush(self) -> None:
        data = b"".join(self.buf)
        self.buf, self.pending = [], 0
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except OSError:  # /tmp full or file-size limit: the rest is dropped
                self.dropped = True
                break
        self.written += len(data)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class _Branch:
    """One interpreter state: namespace, work directory, captured output."""

    def __init__(self, chan: _socket.socket, limit: int, root: str, src_dir: str | None) -> None:
        self.chan, self.limit, self.root, self.buf = chan, limit, root, b""
        self.fds: list[int] = []
        self.cells = 0
        self.sources: dict[str, str] = {}
        pid = os.getpid()
        self.dir = os.path.join(root, f"b{pid}")
        if src_dir is None:
            os.mkdir(self.dir)
        else:
            import shutil

            shutil.copytree(src_dir, self.dir, symlinks=True)
        os.chdir(self.dir)
        os.environ["HOME"] = self.dir
        for target in (1, 2):
            path = f"/tmp/.reasonloop-{pid}-{target}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.unlink(path)
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = _CappedStream(1, limit)  # type: ignore[assignment]
        sys.stderr = _CappedStream(2, limit)  # type: ignore[assignment]

    def send(self, obj: dict[str, object]) -> None:
        self.chan.sendall(json.dumps(obj, ensure_ascii=True).encode("ascii") + b"\n")

    def recv(self) -> dict[str, object] | None:
        while b"\n" not in self.buf:
            data, anc, _, _ = self.chan.recvmsg(1 << 20, _socket.CMSG_SPACE(16))
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    self.fds.extend(fds)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        msg = json.loads(line)
        return msg if isinstance(msg, dict) else {}


def _read_back(fd: int, limit: int) -> tuple[str, bool]:
    size = os.lseek(fd, 0, os.SEEK_END)
    data = os.pread(fd, min(size, limit), 0)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return data.decode("utf-8", "replace"), size > limit


def _trimmed_traceback(exc: BaseException, cells: dict[str, str]) -> str:
    import linecache
    import traceback

    for name, source in cells.items():
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > _TRACEBACK_CAP:
        half = _TRACEBACK_CAP // 2
        text = text[:half] + "\n... [traceback truncated] ...\n" + text[-half:]
    return text


def _run_cell(
    code: str, n: int, ns: dict[str, object], cells: dict[str, str]
) -> tuple[str | None, dict[str, str] | None]:
    """Execute one cell; returns (repr of the last expression, error)."""
    filename = f"<cell-{n}>"
    try:
        if len(cells) < 10_000:  # sources for tracebacks of functions defined in earlier cells
            cells[filename] = code
        tree: Any = compile(code, filename, "exec", _ast.PyCF_ONLY_AST)
        last = None
        if tree.body and isinstance(tree.body[-1], _ast.Expr):
            last = _ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), ns)
        if last is None:
            return None, None
        value = eval(compile(last, filename, "eval"), ns)
        if value is None:
            return None, None
        ns["_"] = value
        return repr(value), None
    except BaseException as exc:  # the cell's failure is its result, whatever it is
        try:
            tb = _trimmed_traceback(exc, cells)
        except BaseException:
            tb = f"{type(exc).__name__} (traceback unavailable)"
        try:
            message = str(exc)
        except BaseException:
            message = "(unprintable)"
        return None, {"type": type(exc).__name__, "message": message[:2000], "traceback": tb}


def _sweep(keep: set[int]) -> int:
    """Kill what this branch's cell left running; returns how many processes were killed.

    A process is this branch's when its session id is this worker's pid (every worker is a
    session leader). Processes that left their session with ``setsid()`` cannot be
    attributed, so any whose session is not a live worker's is killed too. ``keep`` holds
    the live workers' pids (sibling branches and this one).
    """
    me = os.getpid()
    killed = 0
    for _ in range(50):
        _reap()
        victims = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in keep or entry == "1":
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
                fields = stat[stat.rfind(b")") + 2 :].split()
                state, sid = fields[0], int(fields[3])
            except (OSError, IndexError, ValueError):
                continue
            if state != b"Z" and (sid == me or sid not in keep):
                victims.append(int(entry))
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, 9)
                killed += 1
            except OSError:
                pass
        time.sleep(0.001)
    _reap()
    return killed


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _handle_run(br: _Branch, msg: dict[str, object], ns: dict[str, object]) -> None:
    code = msg.get("code")
    keep = {1, os.getpid(), *(int(p) for p in msg.get("keep", []) if isinstance(p, int))}  # type: ignore[attr-defined]
    sweep = bool(msg.get("sweep", True))
    timeout = float(msg.get("timeout_s", 10.0))  # type: ignore[arg-type]
    used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = int(used + timeout + 2)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    out: Any = sys.stdout
    err: Any = sys.stderr
    for stream in (out, err):
        stream.reset()
    br.cells += 1
    start = time.perf_counter()
    if isinstance(code, str):
        display, error = _run_cell(code, br.cells, ns, br.sources)
    else:
        display, error = None, {"type": "TypeError", "message": "code must be a string", "traceback": ""}
    duration = time.perf_counter() - start
    sys.stdout, sys.stderr = out, err  # the cell may have replaced them
    for stream in (out, err):
        stream.flush()
    stdout, out_cut = _read_back(1, br.limit)
    stderr, err_cut = _read_back(2, br.limit)
    if display is not None and len(display) > br.limit:
        display, out_cut = display[: br.limit], True
    killed = _sweep(keep) if sweep else 0
    br.send({"op": "result", "stdout": stdout, "stderr": stderr, "display": display, "error": error,
             "stdout_truncated": out_cut or out.dropped, "stderr_truncated": err_cut or err.dropped,
             "duration_s": duration, "killed_processes": killed})  # fmt: skip


def _handle_fork(br: _Branch) -> _Branch | None:
    """Fork this branch; returns the child's new branch in the child, ``None`` in the parent."""
    if not br.fds:
        br.send({"op": "forked", "error": "no socket was passed with the fork request"})
        return None
    newfd = br.fds.pop(0)
    rng = sys.modules.get("random")
    rng_state = rng.getstate() if rng is not None else None
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if rng is not None:  # `random` reseeds itself in a fork child; a copy keeps the parent's stream
            rng.setstate(rng_state)
        br.chan.close()
        os.set_inheritable(newfd, False)
        chan = _socket.socket(fileno=newfd)
        child = _Branch(chan, br.limit, br.root, br.dir)
        child.cells, child.sources = br.cells, dict(br.sources)
        child.send({"op": "hello", "pid": os.getpid()})
        return child
    os.close(newfd)
    br.send({"op": "forked", "pid": pid})
    return None


def _hold(fd: int) -> None:
    """Stay alive for the sandbox's lifetime: bwrap ends the sandbox when its command exits,
    and branches (the command's descendants) must survive the death of any one of them."""
    os.close(fd)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            _signal.pause()
        except InterruptedError:
            continue


def main() -> None:
    fd = int(sys.argv[1])
    config = json.loads(sys.argv[2])
    for site in reversed(config.get("site", [])):
        if os.path.isdir(site):
            sys.path.insert(0, site)
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)  # a full file gives an error, not a dead worker
    os.set_inheritable(fd, False)
    holder = os.getpid()
    if os.fork() != 0:
        _hold(fd)
    os.setsid()
    chan = _socket.socket(fileno=fd)
    br = _Branch(chan, int(config.get("max_output_bytes", 1 << 20)), os.getcwd(), None)
    ns: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
    br.send({"op": "hello", "pid": os.getpid(), "holder": holder})
    while True:
        msg = br.recv()
        if msg is None or msg.get("op") == "exit":
            return
        if msg.get("op") == "run":
            _handle_run(br, msg, ns)
        elif msg.get("op") == "fork":
            child = _handle_fork(br)
            if child is not None:
                br = child
        else:
            br.send({"op": "error", "error": f"unknown op {msg.get('op')!r}"})


if __name__ == "__main__":
    main()
