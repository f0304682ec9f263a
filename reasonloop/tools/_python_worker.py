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

Without a sandbox (the explicit unsafe mode) nothing else ties the workers to the host: the
holder asks the kernel for a signal when the host dies (``PR_SET_PDEATHSIG``) and then kills
every process under it, branches included (it is their subreaper).
"""

from __future__ import annotations

# Startup time is part of every new session: only C modules are imported before the
# hello (the json package alone, through re and enum, doubles the startup of a bare
# interpreter); _ast loads while the host reads the hello, linecache and traceback when
# an exception needs them.
import _json
import _signal
import _socket
import builtins
import os
import resource
import sys
import time

MYPY = False
if MYPY:  # typing costs milliseconds of every session's startup; only the checker needs it
    from typing import Any

__all__ = ["main"]

_TRACEBACK_CAP = 20_000
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


class _Decoding:
    """Settings of the C JSON scanner: standard JSON, the host's messages only."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity


_scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]
_quote = _json.encode_basestring_ascii


def _loads(text: str) -> object:
    try:
        value, _ = _scan(text, 0)
    except StopIteration as exc:
        raise ValueError(f"not JSON at position {exc.value}") from None
    return value


def _dumps(obj: object) -> str:
    """ASCII JSON of the replies' types (str, int, float, bool, None, dict, list)."""
    if isinstance(obj, str):
        return _quote(obj)
    if obj is None or obj is True or obj is False:
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return float.__repr__(obj) if obj == obj and obj not in (float("inf"), float("-inf")) else "null"
    if isinstance(obj, dict):
        return "{" + ",".join(_quote(str(k)) + ":" + _dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_dumps(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__}")


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
            _copy_tree(src_dir, self.dir)
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
        self.chan.sendall(_dumps(obj).encode("ascii") + b"\n")

    def recv(self) -> dict[str, object] | None:
        while b"\n" not in self.buf:
            data, anc, _, _ = self.chan.recvmsg(1 << 20, _socket.CMSG_SPACE(16))
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    self.fds += [int.from_bytes(payload[i : i + 4], sys.byteorder, signed=True)
                                 for i in range(0, len(payload) - 3, 4)]  # fmt: skip
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        msg = _loads(line.decode("utf-8"))
        return msg if isinstance(msg, dict) else {}


def _copy_tree(src: str, dst: str) -> None:
    """Copy a branch directory: files (contents, mode, times), directories, symlinks as links.

    Other kinds (fifos, sockets) are skipped: opening a fifo would block the fork.
    """
    os.mkdir(dst)
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir(follow_symlinks=False):
                _copy_tree(entry.path, target)
            elif entry.is_file(follow_symlinks=False):
                _copy_file(entry.path, target)
    st = os.stat(src)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_file(src: str, dst: str) -> None:
    # O_NONBLOCK: another branch may have swapped the file for a fifo since the scan
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fin)
        if st.st_mode & 0o170000 != 0o100000:  # not a regular file (S_ISREG)
            return
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, st.st_mode & 0o7777)
        try:
            while os.sendfile(fout, fin, None, 1 << 30) > 0:
                pass
        finally:
            os.close(fout)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(fin)


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
    import _ast

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
        victims = [pid for pid, state, _, sid in _processes()
                   if pid != 1 and pid not in keep and state != b"Z" and (sid == me or sid not in keep)]  # fmt: skip
        if not victims:
            break
        killed += _kill_all(victims)
        time.sleep(0.001)
    _reap()
    return killed


def _processes() -> list[tuple[int, bytes, int, int]]:
    """``(pid, state, parent pid, session id)`` of every process in /proc."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rfind(b")") + 2 :].split()
            rows.append((int(entry), fields[0], int(fields[1]), int(fields[3])))
        except (OSError, IndexError, ValueError):
            continue
    return rows


def _kill_all(pids: list[int]) -> int:
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, 9)
            killed += 1
        except OSError:
            pass
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


def _prctl(option: int, value: int) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def _tie_holder(host: int) -> None:
    """Without a sandbox: when the host dies, end this holder and every branch under it.

    As a subreaper the holder keeps the branches whose parent worker was killed; the host's
    death sends it SIGTERM, which it answers by killing all of them.
    """
    _signal.signal(_signal.SIGTERM, _end_everything)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_PDEATHSIG, int(_signal.SIGTERM))
    if os.getppid() != host:  # it died before the request took effect
        _end_everything()


def _end_everything(*_args: object) -> None:
    for _ in range(50):
        children: dict[int, list[int]] = {}
        for pid, state, ppid, _sid in _processes():
            if state != b"Z":
                children.setdefault(ppid, []).append(pid)
        below: list[int] = []
        stack = [os.getpid()]
        while stack:
            kids = children.get(stack.pop(), [])
            below += kids
            stack += kids
        if not _kill_all(below):
            break
        _reap()
    os._exit(1)


def main() -> None:
    fd = int(sys.argv[1])
    config: Any = _loads(sys.argv[2])
    for site in reversed(config.get("site", [])):
        if os.path.isdir(site):
            sys.path.insert(0, site)
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)  # a full file gives an error, not a dead worker
    os.set_inheritable(fd, False)
    host = config.get("parent")
    if host is not None:  # no sandbox: nothing else ends these processes with the host
        _tie_holder(int(host))
    holder = os.getpid()
    if os.fork() != 0:
        _hold(fd)
    if host is not None:
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        _prctl(_PR_SET_PDEATHSIG, int(_signal.SIGKILL))
        if os.getppid() != holder:
            os._exit(1)
    os.setsid()
    chan = _socket.socket(fileno=fd)
    br = _Branch(chan, int(config.get("max_output_bytes", 1 << 20)), os.getcwd(), None)
    ns: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
    br.send({"op": "hello", "pid": os.getpid(), "holder": holder})
    import _ast  # noqa: F401 - the first cell needs it; load it while the host reads the hello

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
