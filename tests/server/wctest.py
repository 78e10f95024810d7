"""Shared helpers for the wordcount-server integration tests.

Written from the contract in issue 3, independently of the implementation.
Only Python's standard library is used.

- Server: starts $WC_BUILD/wordcount-server on an ephemeral loopback port
  (--port 0 --host 127.0.0.1 [--config tmpfile]), parses the port from the
  "listening on http://HOST:PORT" line, drains stdout/stderr in threads,
  stops it with SIGTERM and asserts exit status 0 and no sanitizer report.
- Conn: a raw-socket HTTP/1.x client with deadlines that sends bytes as
  given and parses status line, headers and Content-Length/chunked bodies.
- check_response(): invariants every response must satisfy (Date,
  Content-Length, JSON error bodies).
- ref_count(): the reference counter (lines split at \\n, one \\r before
  \\n dropped, words split at ' '; plus ignore_case and boundary=word).
- run(): a tiny test runner with a hard per-file deadline.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("WC_BUILD", "build")
# For a server built with SANITIZER=thread: the suppressions of a TSan false
# positive libuv causes (tests/tsan.supp tells why).
TSAN_OPTIONS = "suppressions=" + os.path.join(os.path.dirname(HERE), "tsan.supp")
BUILD_DIR = BUILD if os.path.isabs(BUILD) else os.path.join(REPO, BUILD)
BIN = os.path.join(BUILD_DIR, "wordcount-server")
SANITIZED = "asan" in BUILD or "tsan" in BUILD
# Sanitized builds are ~3x slower: scale waits (never assertions on time).
SLOW = 3.0 if SANITIZED else 1.0
HOST = "127.0.0.1"

# The Zen of Python (PEP 20) verbatim, as `import this` prints it, with a
# leading newline: 858 bytes, 10 words "is".
ZEN = (
    "\nThe Zen of Python, by Tim Peters\n\nBeautiful is better than ugly.\n"
    "Explicit is better than implicit.\nSimple is better than complex.\n"
    "Complex is better than complicated.\nFlat is better than nested.\n"
    "Sparse is better than dense.\nReadability counts.\n"
    "Special cases aren't special enough to break the rules.\n"
    "Although practicality beats purity.\nErrors should never pass silently.\n"
    "Unless explicitly silenced.\n"
    "In the face of ambiguity, refuse the temptation to guess.\n"
    "There should be one-- and preferably only one --obvious way to do it.\n"
    "Although that way may not be obvious at first unless you're Dutch.\n"
    "Now is better than never.\n"
    "Although never is often better than *right* now.\n"
    "If the implementation is hard to explain, it's a bad idea.\n"
    "If the implementation is easy to explain, it may be a good idea.\n"
    "Namespaces are one honking great idea -- let's do more of those!\n"
).encode()
assert len(ZEN) == 858, len(ZEN)
ZEN_IS = 10
CORPUS = ZEN * 1000
assert len(CORPUS) == 858000

SANITIZER_PATTERNS = [
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "UndefinedBehaviorSanitizer",
    "WARNING: ThreadSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
]

_servers = []  # every Server started, killed at exit / on the deadline


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """The server binary as a subprocess.

    config: a dict (written as JSON), a str (written verbatim) or None.
    port_args: pass --port 0 --host 127.0.0.1.
    wait: wait for the "listening on" line (else call wait_listening).
    nice: start the server through nice -n NICE (its pid is the server's).
    wrap: a command line to start the server under (e.g. strace); the
    server is then its child, not self.proc.
    """

    def __init__(self, config=None, args=(), env=None, port_args=True,
                 wait=True, start_timeout=None, nice=None, wrap=None):
        if not os.path.exists(BIN):
            raise AssertionError("server binary %s does not exist (run make)" % BIN)
        self.cfgpath = None
        cmd = [BIN]
        if port_args:
            cmd += ["--port", "0", "--host", HOST]
        if config is not None:
            fd, self.cfgpath = tempfile.mkstemp(prefix="wc-test-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                f.write(config if isinstance(config, str) else json.dumps(config))
            cmd += ["--config", self.cfgpath]
        cmd += list(args)
        if nice is not None:
            cmd = ["nice", "-n", str(nice)] + cmd
        self.wrapped = wrap is not None
        if wrap is not None:
            cmd = list(wrap) + cmd
        self.cmd = cmd
        e = {k: v for k, v in os.environ.items() if not k.startswith("WORDCOUNT_")}
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.setdefault("TSAN_OPTIONS", TSAN_OPTIONS)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=e, start_new_session=True)
        _servers.append(self)
        self.stdout_lines = []
        self.stderr_buf = bytearray()
        self._cv = threading.Condition()
        self._t_out = threading.Thread(target=self._drain_out, daemon=True)
        self._t_err = threading.Thread(target=self._drain_err, daemon=True)
        self._t_out.start()
        self._t_err.start()
        self.port = None
        self.stopped = False
        if wait:
            self.wait_listening(start_timeout or 20 * SLOW)

    def _drain_out(self):
        for line in self.proc.stdout:
            with self._cv:
                self.stdout_lines.append(line.decode("utf-8", "replace"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def _drain_err(self):
        while True:
            b = self.proc.stderr.read1(65536) if hasattr(self.proc.stderr, "read1") \
                else self.proc.stderr.read(4096)
            if not b:
                break
            with self._cv:
                self.stderr_buf += b
                if len(self.stderr_buf) > 64 << 20:  # keep the tail
                    del self.stderr_buf[: len(self.stderr_buf) - (32 << 20)]

    @property
    def stderr(self):
        with self._cv:
            return bytes(self.stderr_buf).decode("utf-8", "replace")

    @property
    def stdout(self):
        with self._cv:
            return "".join(self.stdout_lines)

    def wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        rx = re.compile(r"listening on http://(\[[^\]]*\]|[^\s:/]+):(\d+)")
        with self._cv:
            while True:
                for line in self.stdout_lines:
                    m = rx.search(line)
                    if m:
                        self.listen_host = m.group(1)
                        self.port = int(m.group(2))
                        return self.port
                if self.proc.poll() is not None and not self._t_out.is_alive():
                    raise AssertionError(
                        "server exited with %s before listening; cmd=%s\nstdout:\n%s\nstderr:\n%s"
                        % (self.proc.returncode, self.cmd, "".join(self.stdout_lines),
                           tail(bytes(self.stderr_buf).decode("utf-8", "replace"))))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise AssertionError("server did not print 'listening on http://HOST:PORT' within %.0fs; stdout=%r stderr=%s"
                                         % (timeout, "".join(self.stdout_lines),
                                            tail(bytes(self.stderr_buf).decode("utf-8", "replace"))))
                self._cv.wait(min(left, 0.2))

    def alive(self):
        return self.proc.poll() is None

    @property
    def pid(self):
        """The server's pid (the wrapper's child when started with wrap)."""
        if self.wrapped:
            kids = []
            for d in os.listdir("/proc"):  # the processes whose parent is the wrapper
                try:
                    with open("/proc/%s/stat" % d) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                            kids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
            assert len(kids) == 1, "wrapper %d has children %r" % (self.proc.pid, kids)
            return kids[0]
        return self.proc.pid

    def send_signal(self, sig=signal.SIGTERM):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the status or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def check_sanitizer(self, what="server"):
        # give the drain thread a moment to collect the tail of stderr
        if not self.alive():
            self._t_err.join(5)
        err = self.stderr
        for pat in SANITIZER_PATTERNS:
            i = err.find(pat)
            if i >= 0:
                raise AssertionError("%s: sanitizer report in stderr (%r):\n%s"
                                     % (what, pat, err[max(0, i - 2000): i + 6000]))

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout=None):
        """SIGTERM, wait, assert the exit status and a clean stderr."""
        timeout = timeout or 30 * SLOW
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        self.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            raise AssertionError("server did not exit within %.0fs of signal %d; stderr:\n%s"
                                 % (timeout, sig, tail(self.stderr)))
        self._t_err.join(5)
        self._t_out.join(5)
        self.check_sanitizer()
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("server exit status %r after signal %d, expected %r; stderr:\n%s"
                                 % (rc, sig, expect_rc, tail(self.stderr)))
        self.cleanup()
        return rc

    def kill(self):
        self.stopped = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.cleanup()

    def cleanup(self):
        if self.cfgpath:
            try:
                os.unlink(self.cfgpath)
            except OSError:
                pass
            self.cfgpath = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.stop()
        else:
            if not self.stopped:
                log("  [server stderr tail]\n" + tail(self.stderr, 3000))
            self.kill()
        return False

    def conn(self, timeout=None):
        return Conn(self.port, timeout=timeout)


def tail(s, n=4000):
    return s if len(s) <= n else "..." + s[-n:]


def run_cli(args, env=None, timeout=None, config=None):
    """Runs the binary to completion (for --help, bad configs); returns
    (status, stdout, stderr). A status of None means it had to be killed."""
    cfgpath = None
    cmd = [BIN]
    if config is not None:
        fd, cfgpath = tempfile.mkstemp(prefix="wc-test-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))
        cmd += ["--config", cfgpath]
    cmd += list(args)
    e = {k: v for k, v in os.environ.items() if not k.startswith("WORDCOUNT_")}
    e.update(env or {})
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout or 10 * SLOW)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    finally:
        if cfgpath:
            os.unlink(cfgpath)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# Raw HTTP client
# --------------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body, head_raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), order kept
        self.body = body
        self.head_raw = head_raw

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name, default=None):
        v = self.all(name)
        return v[0] if v else default

    def has_token(self, name, token):
        token = token.lower()
        for v in self.all(name):
            if token in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as ex:
            raise AssertionError("response body is not JSON (%s): %r" % (ex, self.body[:500]))

    def __repr__(self):
        return "<%d %s %r body=%r>" % (self.status, self.reason, self.headers, self.body[:300])


class Closed(Exception):
    """The peer closed (EOF or reset) before a complete response."""


class Conn:
    def __init__(self, port, timeout=None, host=HOST, rcvbuf=None):
        self.timeout = timeout or 15 * SLOW
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=self.timeout)
        else:  # a small receive window: the server's answers back up soon
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(self.timeout)
            self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_pieces(self, data, rng, maxpiece=64, sleep_every=0):
        """Sends data in random pieces of 1..maxpiece bytes (each its own
        send; TCP_NODELAY), sometimes pausing a millisecond so that the
        server sees them as separate reads."""
        i, n = 0, 0
        self.sock.settimeout(self.timeout)
        while i < len(data):
            k = rng.randint(1, maxpiece)
            self.sock.sendall(data[i:i + k])
            i += k
            n += 1
            if sleep_every and n % sleep_every == 0:
                time.sleep(0.001)

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response before the deadline; got so far: %r"
                               % bytes(self.buf[:500]))
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(1 << 18)
        except socket.timeout:
            raise TimeoutError("no complete response before the deadline; got so far: %r"
                               % bytes(self.buf[:500]))
        except ConnectionResetError:
            raise Closed("connection reset by the server; got so far: %r" % bytes(self.buf[:500]))
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def read_response(self, head=False, timeout=None, max_body=1 << 28):
        """Reads one response (1xx responses are returned too)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > 1 << 20:
                raise AssertionError("response header section over 1 MiB")
            if not self._recv(deadline):
                raise Closed("connection closed before a complete response head; got %r"
                             % bytes(self.buf[:500]))
        head_raw = bytes(self.buf[:i])
        del self.buf[: i + 4]
        lines = head_raw.split(b"\r\n")
        m = re.match(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        version = "%s.%s" % (m.group(1).decode(), m.group(2).decode())
        status = int(m.group(3))
        reason = (m.group(4) or b"").decode("latin-1")
        headers = []
        for ln in lines[1:]:
            if b":" not in ln or ln[:1] in (b" ", b"\t"):
                raise AssertionError("malformed response header line %r" % ln)
            k, v = ln.split(b":", 1)
            if k != k.strip() or not k:
                raise AssertionError("malformed response header name %r" % ln)
            headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        r = Response(version, status, reason, headers, b"", head_raw)
        if head or 100 <= status < 200 or status in (204, 304):
            return r
        te = r.header("Transfer-Encoding")
        cl = r.all("Content-Length")
        if te is not None:
            r.body = self._read_chunked(deadline)
        elif cl:
            n = int(cl[0])
            if n > max_body:
                raise AssertionError("response Content-Length %d too big" % n)
            while len(self.buf) < n:
                if not self._recv(deadline):
                    raise Closed("connection closed inside a response body (%d of %d bytes)"
                                 % (len(self.buf), n))
            r.body = bytes(self.buf[:n])
            del self.buf[:n]
        else:
            while self._recv(deadline):
                if len(self.buf) > max_body:
                    raise AssertionError("response body too big")
            r.body = bytes(self.buf)
            del self.buf[:]
        return r

    def _read_chunked(self, deadline):
        body = bytearray()
        while True:
            while b"\r\n" not in self.buf:
                if not self._recv(deadline):
                    raise Closed("closed inside chunked response")
            i = self.buf.find(b"\r\n")
            size = int(bytes(self.buf[:i]).split(b";")[0], 16)
            del self.buf[: i + 2]
            if size == 0:
                while b"\r\n\r\n" not in (b"\r\n" + bytes(self.buf)):
                    if not self._recv(deadline):
                        raise Closed("closed inside chunked trailer")
                j = (b"\r\n" + bytes(self.buf)).find(b"\r\n\r\n")
                del self.buf[: j + 2]
                return bytes(body)
            while len(self.buf) < size + 2:
                if not self._recv(deadline):
                    raise Closed("closed inside a chunk")
            body += self.buf[:size]
            del self.buf[: size + 2]

    def read_final(self, head=False, timeout=None):
        """Reads responses, skipping 1xx ones; returns (final, interim list)."""
        interim = []
        while True:
            r = self.read_response(head=head, timeout=timeout)
            if 100 <= r.status < 200:
                interim.append(r)
                continue
            return r, interim

    def wait_closed(self, timeout=None):
        """Waits until the server closes the connection. Returns "eof" or
        "reset", plus whatever bytes arrived first. Raises TimeoutError."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while self._recv(deadline):
                pass
        except Closed:
            data = bytes(self.buf)
            del self.buf[:]
            return "reset", data
        data = bytes(self.buf)
        del self.buf[:]
        return "eof", data

    def closed_now(self, wait=0.05):
        """True when the server has closed the connection (EOF or reset)
        already; waits at most `wait` seconds for a sign."""
        try:
            self.sock.settimeout(wait)
            b = self.sock.recv(1 << 16, socket.MSG_PEEK)
            return b == b""
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def build_request(method, target, body=None, headers=None, version="1.1",
                  host=True, chunked=None, content_length=True):
    """Builds request bytes. headers: list of (name, value) or dict.
    chunked: a list of chunk sizes to use for the body (chunked TE)."""
    if isinstance(body, str):
        body = body.encode()
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = ["%s %s HTTP/%s" % (method, target, version)]
    if host and not any(k.lower() == "host" for k, _ in hs):
        lines.append("Host: %s" % HOST)
    for k, v in hs:
        lines.append("%s: %s" % (k, v))
    out = b""
    if body is not None and chunked is not None:
        lines.append("Transfer-Encoding: chunked")
        out = chunk_body(body, chunked)
    elif body is not None and content_length:
        lines.append("Content-Length: %d" % len(body))
        out = body
    elif body is not None:
        out = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + out


def chunk_body(body, sizes, rng=None):
    """Encodes body with chunked TE. sizes: list of chunk sizes (cycled) or
    an int maximum for random sizes drawn from rng."""
    parts = []
    i = 0
    k = 0
    if isinstance(sizes, int):  # at most ~20000 chunks (test time)
        sizes = max(sizes, len(body) // 10000)
    while i < len(body):
        if isinstance(sizes, int):
            n = rng.randint(1, sizes)
        else:
            n = sizes[k % len(sizes)]
            k += 1
        n = max(1, n)
        c = body[i:i + n]
        fmt = "%X" if (rng and rng.random() < 0.3) else "%x"
        parts.append((fmt % len(c)).encode() + b"\r\n" + c + b"\r\n")
        i += n
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def count_target(needles=("is",), **opts):
    """/count?needle=...&opt=... with percent-encoding."""
    q = [("needle", n) for n in needles] + [(k, v) for k, v in opts.items()]
    return "/count?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


def request(port, method, target, body=None, headers=None, timeout=None, **kw):
    """One request on a fresh connection; checks the common invariants."""
    with Conn(port, timeout=timeout) as c:
        c.send(build_request(method, target, body, headers, **kw))
        r, interim = c.read_final(head=(method == "HEAD"))
        check_response(r, head=(method == "HEAD"))
        return r


def post_raw(port, body, needles=("is",), headers=None, **opts):
    return request(port, "POST", count_target(needles, **opts), body, headers)


def post_json(port, obj, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(obj).encode()
    hs = [("Content-Type", "application/json")] + list(headers or [])
    return request(port, "POST", "/count", body, hs)


def post_form(port, fields, raw=None):
    body = raw if raw is not None else urllib.parse.urlencode(fields, doseq=True).encode()
    return request(port, "POST", "/count", body,
                   [("Content-Type", "application/x-www-form-urlencoded")])


DATE_RX = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d\d:\d\d:\d\d GMT$")


def check_response(r, head=False, what="", error_body=True):
    """Invariants of every response from the issue: a Date header,
    Content-Length on every response but 1xx and 204 (and matching the
    body), errors as application/json {"error":{status,code,message}}."""
    ctx = "%s%r" % (what + ": " if what else "", r)
    if 100 <= r.status < 200:
        assert not r.all("Content-Length"), "1xx with Content-Length: " + ctx
        return
    date = r.all("Date")
    assert len(date) == 1, "expected one Date header: " + ctx
    assert DATE_RX.match(date[0]), "Date not in IMF-fixdate form: " + ctx
    assert not r.all("Transfer-Encoding"), "response uses Transfer-Encoding, not Content-Length: " + ctx
    if r.status == 204:
        assert not r.all("Content-Length"), "204 with Content-Length: " + ctx
        assert r.body == b"", ctx
        return
    cl = r.all("Content-Length")
    assert len(cl) == 1, "expected exactly one Content-Length: " + ctx
    assert cl[0].isdigit(), ctx
    if not head:
        assert int(cl[0]) == len(r.body), "Content-Length != body length: " + ctx
    if r.status >= 400 and not head and error_body:
        check_error(r, r.status)


def check_error(r, status, code=None, mentions=()):
    """An error response: status, application/json, {"error": {...}}."""
    assert r.status == status, "expected %d, got %r" % (status, r)
    ct = (r.header("Content-Type") or "").lower()
    assert ct.split(";")[0].strip() == "application/json", "error without application/json: %r" % r
    j = r.json()
    assert isinstance(j, dict) and isinstance(j.get("error"), dict), "error body shape: %r" % r
    e = j["error"]
    assert e.get("status") == status, "error.status %r != %d: %r" % (e.get("status"), status, r)
    assert isinstance(e.get("code"), str) and e["code"], "error.code missing: %r" % r
    assert isinstance(e.get("message"), str) and e["message"], "error.message missing: %r" % r
    if code is not None:
        assert e["code"] == code, "error.code %r, expected %r: %r" % (e["code"], code, r)
    for m in mentions:
        assert m.lower() in e["message"].lower(), \
            "error message should name %r: %r" % (m, e["message"])
    return e


def check_counts(r, expected, nbytes, what=""):
    """A 200 count response: counts == expected (dict), count only when
    exactly one distinct needle, bytes == nbytes."""
    ctx = (what + ": ") if what else ""
    assert r.status == 200, ctx + "expected 200, got %r" % r
    ct = (r.header("Content-Type") or "").lower()
    assert ct.split(";")[0].strip() == "application/json", ctx + "Content-Type %r" % ct
    j = r.json()
    assert isinstance(j, dict), ctx + repr(j)
    assert j.get("counts") == expected, ctx + "counts %r, expected %r" % (j.get("counts"), expected)
    if len(expected) == 1:
        assert j.get("count") == list(expected.values())[0], ctx + "count %r, expected %r" % (
            j.get("count"), list(expected.values())[0])
    else:
        assert "count" not in j, ctx + "'count' present with %d needles: %r" % (len(expected), j)
    assert j.get("bytes") == nbytes, ctx + "bytes %r, expected %r" % (j.get("bytes"), nbytes)
    extra = set(j) - {"count", "counts", "bytes"}
    assert not extra, ctx + "unexpected keys %r" % extra
    return j


# --------------------------------------------------------------------------
# Reference counter
# --------------------------------------------------------------------------


def _lines(text):
    """Lines of bytes: split at \\n, drop one \\r before each \\n."""
    parts = text.split(b"\n")
    out = []
    for i, p in enumerate(parts):
        if i < len(parts) - 1 and p.endswith(b"\r"):
            p = p[:-1]
        out.append(p)
    return out


def simple_fold_char(c):
    """Unicode simple case folding (C + S) of one character, approximated
    with Python: casefold when it maps to one character, else lower()
    when that maps to one character, else the character itself. Exact for
    the characters the tests use."""
    f = c.casefold()
    if len(f) == 1:
        return f
    lo = c.lower()
    if len(lo) == 1:
        return lo
    return c


def _fold(s):
    return "".join(simple_fold_char(c) for c in s)


def _is_word_char(c):
    if c == "_":
        return True
    if "\udc80" <= c <= "\udcff":  # an undecodable byte (surrogateescape)
        return False
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nl", "Nd")


def ref_count(text, needles, ignore_case=False, boundary="space"):
    """Reference counts: {needle: count} for distinct needles (str or
    bytes). text: bytes."""
    out = {}
    nb = [(n, n.encode() if isinstance(n, str) else n) for n in needles]
    lines = _lines(text)
    if ignore_case or boundary == "word":
        ulines = [ln.decode("utf-8", "surrogateescape") for ln in lines]
        if ignore_case:
            ulines = [_fold(u) for u in ulines]
    for n, b in nb:
        key = n if isinstance(n, str) else n.decode("utf-8")
        if key in out:
            continue
        if boundary == "space" and not ignore_case:
            out[key] = sum(ln.split(b" ").count(b) for ln in lines)
            continue
        un = b.decode("utf-8", "surrogateescape")
        if ignore_case:
            un = _fold(un)
        if boundary == "space":
            out[key] = sum(u.split(" ").count(un) for u in ulines)
            continue
        total = 0
        for u in ulines:
            start = 0
            while True:
                i = u.find(un, start)
                if i < 0:
                    break
                before_ok = i == 0 or not _is_word_char(u[i - 1])
                j = i + len(un)
                after_ok = j >= len(u) or not _is_word_char(u[j])
                if before_ok and after_ok:
                    total += 1
                    start = j
                else:
                    start = i + 1
        out[key] = total
    return out


def _selftest_ref():
    assert ref_count(b"Is is is,\r\nis\r", ["is"]) == {"is": 1}
    assert ref_count(CORPUS, ["is"]) == {"is": 10000}
    assert ref_count(b"a  a\n\ra a\r\n", ["a"]) == {"a": 3}
    assert ref_count(b"IS is iS", ["is"], ignore_case=True) == {"is": 3}
    assert ref_count("\u212a k K".encode(), ["k"], ignore_case=True) == {"k": 3}
    assert ref_count("σ Σ ς".encode(), ["σ"], ignore_case=True) == {"σ": 3}
    assert ref_count(b"this is is,is_is is-is", ["is"], boundary="word") == {"is": 4}
    assert ref_count(b"is-is-is", ["is-is"], boundary="word") == {"is-is": 1}
    assert ref_count(b"is\r\nis\r", ["is\r"], boundary="word") == {"is\r": 1}


_selftest_ref()


# --------------------------------------------------------------------------
# Random texts for the differential checks
# --------------------------------------------------------------------------

TOKENS = ["is", "is", "is", "Is", "IS", "iS", "is,", "this", "a", "b", "x_y", "\u00e9", "\u00c9",
          "\u03c3", "\u03a3", "\u03c2", "\u212a", "k", "K", "\u017f", "i\u017f", "42", "is-is",
          "-", "", "\U0001F600", "is\r", "\r"]
SEPS = [" ", " ", " ", " ", "  ", "\n", "\r\n", "\r", "\t", ",", "", "\r\n\r\n"]
NEEDLES = ["is", "Is", "a", "\u03c3", "k", "is,", "is\r", "\r", "is-is", "42", "x_y", "\u00e9",
           "\U0001F600", "IS"]


def random_text(rng, ntokens):
    toks = rng.choices(TOKENS, k=ntokens)
    seps = rng.choices(SEPS, k=ntokens)
    return "".join(t + s for t, s in zip(toks, seps))


def random_bytes_text(rng, ntokens):
    """Like random_text but may contain bytes that are not UTF-8."""
    t = random_text(rng, ntokens).encode()
    if rng.random() < 0.5:
        b = bytearray(t)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.choice([0xFF, 0x00, 0xC3, 0x80])
        t = bytes(b)
    return t


def random_needles(rng):
    k = rng.choice([1, 1, 1, 2, 3, 5])
    return [rng.choice(NEEDLES) for _ in range(k)]


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------


def kill_all():
    for s in _servers:
        try:
            if s.alive():
                os.killpg(s.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        s.cleanup()


def run(g, deadline=170):
    """Runs every test_* function of module globals g in definition order.
    Arguments on the command line select tests by substring."""
    names = [n for n, f in g.items() if n.startswith("test_") and callable(f)]
    sel = sys.argv[1:]
    if sel:
        names = [n for n in names if any(s in n for s in sel)]

    def on_alarm(signum, frame):
        log("FAIL: the whole file exceeded its %ds deadline (in %s)" % (deadline, current[0]))
        traceback.print_stack(frame)
        kill_all()
        os._exit(1)

    current = ["?"]
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(deadline))
    log("server binary: %s (WC_BUILD=%s)" % (BIN, BUILD))
    if not os.path.exists(BIN):
        log("FAIL: %s does not exist (run make)" % BIN)
        sys.exit(1)
    failed = []
    t_all = time.monotonic()
    for n in names:
        current[0] = n
        t0 = time.monotonic()
        try:
            g[n]()
            log("  ok    %-50s %.2fs" % (n, time.monotonic() - t0))
        except Exception:
            failed.append(n)
            log("  FAIL  %-50s %.2fs" % (n, time.monotonic() - t0))
            log("".join("        " + ln for ln in traceback.format_exc().splitlines(True)))
    signal.alarm(0)
    kill_all()
    log("%s: %d tests, %d failed%s (%.1fs)" % (os.path.basename(sys.argv[0]), len(names), len(failed),
                                             (": " + " ".join(failed)) if failed else "",
                                             time.monotonic() - t_all))
    sys.exit(1 if failed else 0)


class Shared:
    """A server with the default config shared by the tests of one file;
    restarted when a test killed it (that test fails)."""

    def __init__(self, config=None):
        self.config = config
        self.srv = None

    def get(self):
        if self.srv is None:
            self.srv = Server(self.config)
        elif not self.srv.alive():
            rc = self.srv.proc.returncode
            err = self.srv.stderr
            self.srv = Server(self.config)
            raise AssertionError("the shared server had died (status %r); stderr:\n%s"
                                 % (rc, tail(err)))
        return self.srv

    @property
    def port(self):
        return self.get().port

    def assert_alive(self):
        if self.srv is not None and not self.srv.alive():
            self.get()

    def stop(self):
        """SIGTERM the shared server: exit 0, no sanitizer report."""
        if self.srv is not None:
            s, self.srv = self.srv, None
            s.stop()
