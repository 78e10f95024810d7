"""HTTP/1.1 framing battery, differential against nginx (issue 6).

Every case is a byte-exact exchange (request smuggling vectors, framing
errors, header limits, pipelining, HTTP/1.0, half-close, Expect variants,
1-byte splits) sent to our server and to nginx from Debian (nginx-light,
installed by scripts/deps.sh test) running as an oracle with a temporary
prefix on a free loopback port: `return 200` on /count and /healthz for GET,
HEAD and POST (/count is proxied to a second nginx server block, so that
nginx reads and checks the whole body before answering). nginx's header buffers are set to our max_header_bytes
(16 KiB) so that the limits are comparable.

What is compared: the list of final status classes (1xx skipped) that each
server sends before it closes or goes quiet. Where the two differ, the case
must be in KNOWN below with both observed values and the reason; any other
difference fails, and so does a KNOWN entry that no longer matches (so the
table in docs/http-differences.md stays true). `--markdown` prints that
table.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import Closed, Conn, check_response  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MAX_HEADER = 16384

H = b"Host: x\r\n"
POST = b"POST /count?needle=a HTTP/1.1\r\n" + H
GET = b"GET /healthz HTTP/1.1\r\n" + H


def post_cl(body=b"a a"):
    return POST + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(body=b"3\r\na a\r\n0\r\n\r\n", extra=b""):
    return POST + extra + b"Transfer-Encoding: chunked\r\n\r\n" + body


class Case:
    """parts: byte strings sent one after another (split=1: one byte per
    send); n: requests in it (at most n responses are read); heads: indices
    of HEAD requests; half_close: shut the write side after sending."""

    def __init__(self, name, parts, n=1, heads=(), half_close=False, split=None, doc=""):
        self.name = name
        self.parts = [parts] if isinstance(parts, bytes) else list(parts)
        self.n = n
        self.heads = set(heads)
        self.half_close = half_close
        self.split = split
        self.doc = doc


CASES = [
    # -- baseline
    Case("get", GET + b"\r\n"),
    Case("head", b"HEAD /healthz HTTP/1.1\r\n" + H + b"\r\n", heads=[0]),
    Case("post-cl", post_cl()),
    Case("post-chunked", chunked()),
    Case("chunked-ext-trailer", chunked(b"3;x=y\r\na a\r\n0\r\nX-T: 1\r\n\r\n")),
    Case("chunked-upper-hex", chunked(b"A\r\na a a a a \r\n0\r\n\r\n")),
    Case("te-case", POST + b"Transfer-Encoding: Chunked\r\n\r\n3\r\na a\r\n0\r\n\r\n"),
    Case("http10", b"POST /count?needle=a HTTP/1.0\r\nContent-Length: 3\r\n\r\na a"),
    Case("http10-keepalive", [b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                              b"GET /healthz HTTP/1.0\r\n\r\n"], n=2),
    Case("absolute-form", b"POST http://x/count?needle=a HTTP/1.1\r\n" + H +
         b"Content-Length: 1\r\n\r\na"),
    Case("leading-crlf", b"\r\n\r\n" + GET + b"\r\n"),
    Case("get-with-body", GET + b"Content-Length: 2\r\n\r\nab"),
    Case("connection-close", GET + b"Connection: close\r\n\r\n" + GET + b"\r\n", n=2),
    Case("upgrade", GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
    Case("cl-trailing-space", POST + b"Content-Length: 3 \r\n\r\na a"),
    # -- Host
    Case("http11-no-host", b"GET /healthz HTTP/1.1\r\n\r\n"),
    Case("dup-host", GET + H + b"\r\n"),
    Case("host-with-space", b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n"),
    # -- smuggling: Content-Length / Transfer-Encoding
    Case("cl-te", POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n" + GET + b"\r\n", n=2),
    Case("te-cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
         b"0\r\n\r\n" + GET + b"\r\n", n=2),
    Case("dup-cl-same", POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\na a"),
    Case("dup-cl-differ", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\na a "),
    Case("cl-list", POST + b"Content-Length: 3, 3\r\n\r\na a"),
    Case("cl-plus", POST + b"Content-Length: +3\r\n\r\na a"),
    Case("cl-negative", POST + b"Content-Length: -1\r\n\r\n"),
    Case("cl-hex", POST + b"Content-Length: 0x3\r\n\r\na a"),
    Case("cl-overflow", POST + b"Content-Length: 99999999999999999999999\r\n\r\n"),
    Case("cl-too-large", POST + b"Content-Length: 2000000000000\r\n\r\n"),
    Case("te-dup", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\na a\r\n0\r\n\r\n"),
    Case("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\na a\r\n0\r\n\r\n"),
    Case("te-chunked-identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n"
         b"3\r\na a\r\n0\r\n\r\n"),
    Case("te-xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n3\r\na a\r\n0\r\n\r\n"),
    Case("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n"),
    Case("te-http10", b"POST /count?needle=a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\na a\r\n0\r\n\r\n"),
    Case("te-space-before-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n3\r\na a\r\n0\r\n\r\n"),
    Case("te-vtab", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n3\r\na a\r\n0\r\n\r\n"),
    # -- chunked framing errors
    Case("chunk-size-overflow", chunked(b"fffffffffffffffff\r\na\r\n0\r\n\r\n")),
    Case("chunk-size-0x", chunked(b"0x3\r\na a\r\n0\r\n\r\n")),
    Case("chunk-size-space", chunked(b"3 \r\na a\r\n0\r\n\r\n")),
    Case("chunk-no-crlf", chunked(b"3\r\na aX0\r\n\r\n")),
    Case("chunk-bare-lf", chunked(b"3\na a\n0\n\n")),
    Case("chunk-longer", chunked(b"2\r\na a\r\n0\r\n\r\n")),
    # -- request line and header syntax
    Case("bare-lf", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
    Case("bare-cr", b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n"),
    Case("obs-fold", GET + b"X-A: 1\r\n 2\r\n\r\n"),
    Case("space-before-colon", GET + b"X-A : 1\r\n\r\n"),
    Case("bad-header-name", GET + b"X@A: 1\r\n\r\n"),
    Case("header-no-colon", GET + b"X-A\r\n\r\n"),
    Case("empty-header-name", GET + b": 1\r\n\r\n"),
    Case("nul-in-value", GET + b"X-A: a\x00b\r\n\r\n"),
    Case("cr-in-value", GET + b"X-A: a\rb\r\n\r\n"),
    Case("double-space-in-line", b"GET  /healthz HTTP/1.1\r\n" + H + b"\r\n"),
    Case("lowercase-method", b"get /healthz HTTP/1.1\r\n" + H + b"\r\n"),
    Case("unknown-method", b"FOO /healthz HTTP/1.1\r\n" + H + b"\r\n"),
    Case("target-no-slash", b"GET healthz HTTP/1.1\r\n" + H + b"\r\n"),
    Case("http-1.2", b"GET /healthz HTTP/1.2\r\n" + H + b"\r\n"),
    Case("version-no-dot", b"GET /healthz HTTP/1\r\n" + H + b"\r\n"),
    Case("version-letter", b"GET /healthz HTTP/x.1\r\n" + H + b"\r\n"),
    Case("version-cr-inside", b"GET /healthz HTTP/1\r.1\r\n" + H + b"\r\n", split=1),
    Case("version-two-digits", b"GET /healthz HTTP/1.10\r\n" + H + b"\r\n"),
    Case("http-2.0", b"GET /healthz HTTP/2.0\r\n" + H + b"\r\n"),
    Case("http-lowercase", b"GET /healthz http/1.1\r\n" + H + b"\r\n"),
    # -- limits
    Case("header-15k", GET + b"X-A: " + b"a" * 15000 + b"\r\n\r\n"),
    Case("header-line-17k", GET + b"X-A: " + b"a" * 17000 + b"\r\n\r\n"),
    Case("headers-total-20k", GET + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 500) for i in range(40))
         + b"\r\n"),
    Case("uri-17k", b"GET /healthz?" + b"a" * 17000 + b" HTTP/1.1\r\n" + H + b"\r\n"),
    Case("many-small-headers", GET + b"X-A: 1\r\n" * 500 + b"\r\n"),
    # -- pipelining
    Case("pipeline-3", GET + b"\r\n" + post_cl() + GET + b"\r\n", n=3),
    Case("pipeline-head", GET + b"\r\n" + b"HEAD /healthz HTTP/1.1\r\n" + H + b"\r\n" + post_cl(),
         n=3, heads=[1]),
    Case("pipeline-bad-middle", GET + b"\r\n" + b"GET /healthz HTTP/1.1\r\nX-A : 1\r\n" + H +
         b"\r\n" + GET + b"\r\n", n=3),
    Case("pipeline-50", (GET + b"\r\n") * 50, n=50),
    Case("pipeline-chunked", chunked() + GET + b"\r\n", n=2),
    # -- Expect
    Case("expect-100", POST + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\na a"),
    Case("expect-100-upper", POST + b"Expect: 100-Continue\r\nContent-Length: 3\r\n\r\na a"),
    Case("expect-100-http10", b"POST /count?needle=a HTTP/1.0\r\nExpect: 100-continue\r\n"
         b"Content-Length: 3\r\n\r\na a"),
    Case("expect-unknown", POST + b"Expect: foo\r\nContent-Length: 3\r\n\r\na a"),
    Case("expect-100-no-body", GET + b"Expect: 100-continue\r\n\r\n"),
    # -- half-close
    Case("half-close-after-request", post_cl(), half_close=True),
    Case("half-close-pipeline", GET + b"\r\n" + GET + b"\r\n", n=2, half_close=True),
    Case("half-close-mid-headers", b"GET /healthz HTTP/1.1\r\nHo", half_close=True),
    Case("half-close-mid-body", POST + b"Content-Length: 10\r\n\r\nab", half_close=True),
    Case("half-close-mid-chunk", chunked(b"5\r\nab"), half_close=True),
    # -- 1-byte splits
    Case("split-post", post_cl(b"a a a"), split=1),
    Case("split-chunked", chunked(b"3\r\na a\r\n2\r\n a\r\n0\r\n\r\n"), split=1),
    Case("split-pipeline", GET + b"\r\n" + post_cl(), n=2, split=1),
    Case("split-cl-te", POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         split=1),
]

# Known, justified differences: case -> (ours, nginx, reason). Values are
# the lists of status classes each server sent ("-" for none).
KNOWN = {
    # Transfer codings: RFC 9112 6.1 says SHOULD answer 501 to a coding the
    # server does not understand. We answer 400: the contract is
    # "Transfer-Encoding must be exactly chunked", and with a body of unknown
    # framing the connection is closed either way, so the class is the only
    # difference.
    "te-gzip-chunked": ("4xx", "5xx", "400 for any Transfer-Encoding other than exactly "
                        "`chunked` (nginx: 501, RFC 9112 6.1 SHOULD); the connection closes "
                        "either way"),
    "te-chunked-identity": ("4xx", "5xx", "as above"),
    "te-xchunked": ("4xx", "5xx", "as above"),
    "te-identity": ("4xx", "5xx", "as above"),
    "te-vtab": ("4xx", "5xx", "as above (a vertical tab is not optional whitespace, so the "
                "value is not `chunked`)"),
    # Stricter than nginx on purpose: lenient framing is how requests are
    # smuggled past a front end that parses differently.
    "chunk-size-space": ("4xx", "2xx", "stricter: no whitespace after a chunk size (RFC 9112 7.1 "
                         "has none; nginx allows it); a smuggling vector between parsers"),
    "chunk-bare-lf": ("4xx", "2xx", "stricter: chunk lines must end in CRLF (nginx accepts LF); "
                      "a smuggling vector"),
    "bare-lf": ("4xx", "2xx", "stricter: header lines must end in CRLF; RFC 9112 2.2 only "
                "says MAY accept a bare LF, and differing line ends are a smuggling vector"),
    "bad-header-name": ("4xx", "2xx", "stricter: a field name that is not a token is an error "
                        "(nginx drops the line: ignore_invalid_headers)"),
    "header-no-colon": ("4xx", "2xx", "stricter: a header line without a colon is an error "
                        "(nginx drops it)"),
    "unknown-method": ("4xx", "2xx", "llhttp knows a fixed list of methods and rejects others "
                       "as malformed (400); nginx accepts any token and its `return` answers. "
                       "RFC 9110 would prefer 501; we serve only GET, HEAD, POST, PUT, OPTIONS"),
    "http-1.2": ("5xx", "2xx", "505 for any well-formed version but 1.0 and 1.1; RFC 9110 2.5 says a "
                 "higher 1.x minor SHOULD be treated as 1.1 (nginx does). llhttp's strict mode "
                 "rejects it before our code sees it"),
    "version-two-digits": ("4xx", "2xx", "stricter: RFC 9112 2.3's HTTP-version has one digit on "
                           "each side of the dot, so `HTTP/1.10` is malformed (400, llhttp's "
                           "\"Expected CRLF after version\"); nginx reads up to three digits"),
    "expect-unknown": ("4xx", "2xx", "417 for an expectation other than 100-continue (RFC 9110 "
                       "10.1.1 allows it); nginx ignores Expect"),
}


_ours = [None]  # our server's port: its responses are also checked in full


def fmt(classes):
    return ",".join("%dxx" % c for c in classes) if classes else "-"


def exchange(port, case):
    """Sends the case; returns the final status classes received."""
    c = Conn(port, timeout=5 * w.SLOW)
    got = []
    try:
        try:
            for p in case.parts:
                if case.split:
                    for i in range(0, len(p), case.split):
                        c.sock.sendall(p[i:i + case.split])
                        time.sleep(0.0005)
                else:
                    c.sock.sendall(p)
            if case.half_close:
                c.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early; read what came
        idx = 0
        while idx < case.n:
            try:
                r = c.read_response(head=idx in case.heads, timeout=3 * w.SLOW)
            except (Closed, TimeoutError, ConnectionResetError):
                break
            if 100 <= r.status < 200:
                continue
            if port == _ours[0]:
                check_response(r, head=idx in case.heads, what=case.name)
            got.append((r.status, r))
            idx += 1
    finally:
        c.close()
    return got


def start_nginx():
    tmp = tempfile.mkdtemp(prefix="wc-nginx-")
    port = w.free_port()
    conf = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_header_buffer_size 1k;
  large_client_header_buffers 1 {mh};
  client_max_body_size 1g;
  keepalive_requests 1000;
  server {{
    listen 127.0.0.1:{port};
    # Proxied (to the server below) so that nginx reads and checks the whole
    # body before it answers; `return` alone answers before the body.
    # proxy_ignore_client_abort: a half-closed client still gets its answer,
    # as from an origin server (else nginx logs 499 and sends nothing).
    location = /count {{
      proxy_ignore_client_abort on;
      proxy_pass http://127.0.0.1:{bport};
    }}
    location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
    location / {{ return 404; }}
  }}
  server {{
    listen 127.0.0.1:{bport};
    location / {{ return 200 '{{"ok":true}}'; }}
  }}
}}
""".format(tmp=tmp, port=port, bport=w.free_port(), mh="%dk" % (MAX_HEADER // 1024))
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(conf)
    p = subprocess.Popen([NGINX, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"),
                          "-e", os.path.join(tmp, "error.log")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((w.HOST, port), timeout=1).close()
            break
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                err = p.stderr.read().decode() if p.poll() is not None else ""
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                shutil.rmtree(tmp, ignore_errors=True)
                raise AssertionError("nginx did not start: %s" % err)
            time.sleep(0.05)
    return p, port, tmp


def stop_nginx(p, tmp):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


def test_battery_against_nginx():
    assert os.path.exists(NGINX), "nginx is not installed (scripts/deps.sh test installs nginx-light)"
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for k in KNOWN:
        assert k in names, "KNOWN names a case that does not exist: %s" % k
    ng, ng_port, tmp = start_nginx()
    srv = w.Server()
    _ours[0] = srv.port
    bad = []
    rows = []
    try:
        for case in CASES:
            ours = exchange(srv.port, case)
            theirs = exchange(ng_port, case)
            a = [st // 100 for st, _ in ours]
            b = [st // 100 for st, _ in theirs]
            rows.append((case.name, fmt(a), fmt(b), [s for s, _ in ours], [s for s, _ in theirs]))
            if case.name in KNOWN:
                ka, kb, _ = KNOWN[case.name]
                if (fmt(a), fmt(b)) != (ka, kb):
                    bad.append("%s: KNOWN says ours %s / nginx %s, observed ours %s (%s) / nginx %s (%s)"
                               % (case.name, ka, kb, fmt(a), [s for s, _ in ours], fmt(b),
                                  [s for s, _ in theirs]))
            elif a != b:
                bad.append("%s: ours %s %s, nginx %s %s (not in KNOWN)"
                           % (case.name, fmt(a), [s for s, _ in ours], fmt(b), [s for s, _ in theirs]))
            assert srv.alive(), "our server died in case %s" % case.name
        w.log("  %d cases, %d known differences" % (len(CASES), len(KNOWN)))
        if os.environ.get("WC_DIFF_VERBOSE"):
            for row in rows:
                w.log("    %-28s ours %-14s nginx %-14s %s %s" % row)
        assert not bad, "differences from nginx:\n  " + "\n  ".join(bad)
    finally:
        stop_nginx(ng, tmp)
        srv.stop()


def markdown():
    print("| case | ours | nginx 1.22 | why we differ |")
    print("|---|---|---|---|")
    for c in CASES:
        if c.name in KNOWN:
            a, b, why = KNOWN[c.name]
            print("| `%s` | %s | %s | %s |" % (c.name, a, b, why))


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        markdown()
        sys.exit(0)
    w.run(globals(), deadline=300)
