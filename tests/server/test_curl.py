"""The service driven by curl, as users do (issue 3, "Tests and docs"):
--data-binary @file over 1 MiB, -T - (chunked from stdin), -d form,
--data-urlencode, --json, --http1.0, Expect: 100-continue on a big upload
(100 then 200; 413 at once over the limit), HEAD, OPTIONS, keep-alive reuse."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import CORPUS, ZEN  # noqa: E402

SHARED = w.Shared()
LIMITED = w.Shared({"limits": {"max_body_bytes": 65536}})
TMP = tempfile.mkdtemp(prefix="wc-curl-")
BIGFILE = os.path.join(TMP, "big.txt")
with open(BIGFILE, "wb") as f:
    f.write(CORPUS * 2)          # 1,716,000 bytes > 1 MiB
BIG_N = 20000


def curl(args, stdin=None, timeout=None):
    """Runs curl; returns (http_code, body, stderr trace)."""
    timeout = timeout or 60 * w.SLOW
    cmd = ["curl", "-sS", "--max-time", str(int(timeout) - 5), "-o", "-",
           "-w", "\n__HTTP_CODE__%{http_code}"] + args
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = p.stdout
    i = out.rfind(b"\n__HTTP_CODE__")
    assert i >= 0, "curl output without status: rc=%d %r %r" % (p.returncode, out[-300:], p.stderr[-500:])
    code = int(out[i + len(b"\n__HTTP_CODE__"):] or 0)
    return code, out[:i], p.stderr.decode("utf-8", "replace")


def url(path, p=None):
    return "http://%s:%d%s" % (w.HOST, p or SHARED.port, path)


def expect_json(code, body, exp_code, exp, what):
    assert code == exp_code, "%s: HTTP %d, expected %d: %r" % (what, code, exp_code, body[:300])
    j = json.loads(body)
    assert j == exp, "%s: %r, expected %r" % (what, j, exp)
    return j


def test_data_binary_file_over_1mib():
    code, body, _ = curl(["--data-binary", "@" + BIGFILE, url("/count?needle=is")])
    expect_json(code, body, 200, {"count": BIG_N, "counts": {"is": BIG_N}, "bytes": 1716000},
                "--data-binary @file")
    for mode in ["sequential", "parallel"]:
        code, body, _ = curl(["--data-binary", "@" + BIGFILE, url("/count?needle=is&needle=Zen&mode=" + mode)])
        expect_json(code, body, 200, {"counts": {"is": BIG_N, "Zen": 2000}, "bytes": 1716000}, mode)


def test_upload_from_stdin_chunked():
    code, body, trace = curl(["-v", "-X", "POST", "-T", "-", url("/count?needle=is")],
                             stdin=CORPUS * 2)
    assert "Transfer-Encoding: chunked" in trace, "curl -T - did not send chunked:\n" + trace[-2000:]
    expect_json(code, body, 200, {"count": BIG_N, "counts": {"is": BIG_N}, "bytes": 1716000}, "-T -")
    # without -X POST, curl -T sends PUT, which /count takes too
    code, body, _ = curl(["-T", "-", url("/count?needle=is")], stdin=CORPUS)
    expect_json(code, body, 200, {"count": BIG_N // 2, "counts": {"is": BIG_N // 2}, "bytes": 858000},
                "-T - (PUT)")
    code, body, _ = curl(["-X", "POST", "-T", "-", url("/count?needle=is")], stdin=b"")
    expect_json(code, body, 200, {"count": 0, "counts": {"is": 0}, "bytes": 0}, "-T - empty")


def test_form_with_d():
    code, body, _ = curl(["-d", "text=is+this+is%3F+is&needle=is", url("/count")])
    expect_json(code, body, 200, {"count": 2, "counts": {"is": 2}, "bytes": 14}, "-d form")
    code, body, _ = curl(["--data-urlencode", "text=a is b\r\nis", "-d", "needle=is", "-d", "needle=a",
                          url("/count")])
    expect_json(code, body, 200, {"counts": {"is": 2, "a": 1}, "bytes": 10}, "--data-urlencode")
    code, body, _ = curl(["-d", "text=is&needle=is&color=red", url("/count")])
    assert code == 400 and "color" in json.loads(body)["error"]["message"], (code, body)


def test_json_with_curl():
    code, body, _ = curl(["--json", json.dumps({"text": ZEN.decode(), "needles": ["is", "Zen", "is"]}),
                          url("/count")])
    expect_json(code, body, 200, {"counts": {"is": 10, "Zen": 1}, "bytes": 858}, "--json")
    code, body, _ = curl(["-H", "Content-Type: application/json", "-d", '{"text": "is", "needle": 1}',
                          url("/count")])
    assert code == 400, (code, body)
    assert json.loads(body)["error"]["status"] == 400


def test_http10():
    code, body, trace = curl(["-v", "--http1.0", "--data-binary", "@" + BIGFILE, url("/count?needle=is")])
    assert "HTTP/1.0" in trace, trace[-2000:]
    expect_json(code, body, 200, {"count": BIG_N, "counts": {"is": BIG_N}, "bytes": 1716000}, "--http1.0")
    code, body, _ = curl(["--http1.0", url("/healthz")])
    expect_json(code, body, 200, {"status": "ok"}, "--http1.0 healthz")


def test_expect_100_continue_big_upload():
    code, body, trace = curl(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", "30",
                              "--data-binary", "@" + BIGFILE, url("/count?needle=is")],
                             timeout=90 * w.SLOW)
    assert "HTTP/1.1 100 Continue" in trace, "no 100 Continue:\n" + trace[-2000:]
    expect_json(code, body, 200, {"count": BIG_N, "counts": {"is": BIG_N}, "bytes": 1716000}, "Expect")


def test_expect_413_at_once():
    code, body, trace = curl(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", "30",
                              "--data-binary", "@" + BIGFILE, url("/count?needle=is", LIMITED.port)],
                             timeout=90 * w.SLOW)
    assert code == 413, (code, body, trace[-2000:])
    assert "100 Continue" not in trace, "100 Continue sent although Content-Length is over the limit:\n" + \
        trace[-2000:]
    e = json.loads(body)["error"]
    assert e["status"] == 413 and e["code"] == "payload_too_large", e
    # without Expect: curl sends the body and still reads the 413 (no reset)
    code, body, trace = curl(["-v", "-H", "Expect:", "--data-binary", "@" + BIGFILE,
                              url("/count?needle=is", LIMITED.port)])
    assert code == 413, "without Expect: %r %r\n%s" % (code, body[:300], trace[-2000:])


def test_head_options_and_reuse():
    code, body, trace = curl(["-v", "-I", url("/healthz")])
    assert code == 200, (code, trace)
    assert "Content-Length:" in trace or "content-length:" in trace.lower(), trace
    code, body, trace = curl(["-v", "-X", "OPTIONS", url("/count")])
    assert code == 204, (code, body)
    assert "Allow:" in trace or "allow:" in trace.lower(), trace
    code, body, trace = curl(["-v", url("/healthz"), url("/readyz"), url("/healthz")])
    assert "Re-using existing connection" in trace or "Reusing existing connection" in trace, \
        "curl did not reuse the keep-alive connection:\n" + trace[-3000:]
    code, body, _ = curl([url("/nope")])
    assert code == 404 and json.loads(body)["error"]["status"] == 404, (code, body)


def test_zz_shutdown_clean():
    LIMITED.stop()
    SHARED.stop()
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    if not shutil.which("curl"):
        print("curl is not installed")
        sys.exit(1)
    try:
        w.run(globals(), deadline=170)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
