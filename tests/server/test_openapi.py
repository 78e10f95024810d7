"""openapi.yaml (issue 5, "OpenAPI") against the real server: the document
is JSON-style YAML (YAML 1.2 is a superset of JSON), so json.load reads it.
A battery of requests covers every endpoint, method and error the server
can give; every status must be documented for its path and method (or, for
an unknown path or an unlisted method, under x-unlisted), and every JSON
body must match the documented schema (a small JSON Schema subset:
type, required, properties, additionalProperties, items, enum, const,
minimum/maximum, minLength, minItems, pattern, $ref)."""

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import ZEN, Conn, build_request, check_response, count_target  # noqa: E402

SPEC_PATH = os.path.join(w.REPO, "openapi.yaml")
TOKEN = "open-api-token"
METHODS = ["get", "head", "post", "put", "delete", "options", "patch", "trace"]


def load_spec():
    with open(SPEC_PATH) as f:
        return json.load(f)


SPEC = load_spec()


def deref(node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ptr = node["$ref"]
        assert ptr.startswith("#/"), "only local $ref: %r" % ptr
        node = SPEC
        for part in ptr[2:].split("/"):
            assert part in node, "dangling $ref %r" % ptr
            node = node[part]
        seen += 1
        assert seen < 20, "$ref loop"
    return node


def validate(value, schema, where="$"):
    s = deref(schema)
    t = s.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), "%s: %r is not an integer" % (where, value)
    elif t == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), "%s: not a number" % where
    elif t is not None:
        assert isinstance(value, types[t]), "%s: %r is not %s" % (where, value, t)
    if "const" in s:
        assert value == s["const"], "%s: %r != const %r" % (where, value, s["const"])
    if "enum" in s:
        assert value in s["enum"], "%s: %r not in enum %r" % (where, value, s["enum"])
    if "minimum" in s:
        assert value >= s["minimum"], "%s: %r < %r" % (where, value, s["minimum"])
    if "maximum" in s:
        assert value <= s["maximum"], "%s: %r > %r" % (where, value, s["maximum"])
    if "minLength" in s:
        assert len(value) >= s["minLength"], "%s: too short" % where
    if "pattern" in s:
        assert re.search(s["pattern"], value), "%s: %r does not match %r" % (where, value, s["pattern"])
    if isinstance(value, dict):
        for k in s.get("required", []):
            assert k in value, "%s: required %r missing in %r" % (where, k, value)
        props = s.get("properties", {})
        for k, v in value.items():
            if k in props:
                validate(v, props[k], where + "." + k)
            else:
                ap = s.get("additionalProperties", True)
                assert ap is not False, "%s: undocumented property %r" % (where, k)
                if isinstance(ap, dict):
                    validate(v, ap, where + "." + k)
    if isinstance(value, list):
        if "minItems" in s:
            assert len(value) >= s["minItems"], "%s: too few items" % where
        for i, v in enumerate(value):
            if "items" in s:
                validate(v, s["items"], "%s[%d]" % (where, i))


def documented(path, method, status):
    """The response object documenting status for path+method, or None."""
    item = SPEC["paths"].get(path)
    if item is None or method.lower() not in item:
        return deref(SPEC["x-unlisted"].get(str(status))) if str(status) in SPEC["x-unlisted"] else None
    resps = item[method.lower()]["responses"]
    r = resps.get(str(status)) or resps.get("%dXX" % (status // 100)) or resps.get("default")
    return deref(r) if r is not None else None


SEEN = set()


def check(path, method, r):
    """Checks one real response against the document."""
    check_response(r, head=(method == "HEAD"))
    doc = documented(path, method, r.status)
    assert doc is not None, "%s %s: status %d is not documented in openapi.yaml: %r" % (
        method, path, r.status, r)
    SEEN.add((path, method, r.status))
    for name, h in doc.get("headers", {}).items():
        h = deref(h)
        v = r.header(name)
        if h.get("required"):
            assert v is not None, "%s %s %d: documented header %s missing" % (method, path, r.status, name)
        if v is not None and "schema" in h:
            validate(v, h["schema"], "header " + name)
    content = doc.get("content")
    if r.status == 204 or method == "HEAD":
        return
    assert content, "%s %s %d: a body but no documented content" % (method, path, r.status)
    ct = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    media = [m for m in content if m.split(";")[0].strip().lower() == ct]
    assert media, "%s %s %d: Content-Type %r not documented (%r)" % (method, path, r.status, ct, list(content))
    schema = content[media[0]].get("schema", {})
    if ct == "application/json":
        validate(r.json(), schema, "%s %s %d body" % (method, path, r.status))


def req(port, method, target, body=None, headers=None, **kw):
    path = target.split("?")[0]
    r = w.request(port, method, target, body, headers, **kw)
    check(path, method, r)
    return r


def raw(port, data, path, method, wait_close=False, timeout=None):
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response(head=(method == "HEAD"))
    check(path, method, r)
    return r


def test_document_shape():
    assert SPEC["openapi"].startswith("3.1"), SPEC["openapi"]
    assert set(SPEC["paths"]) == {"/count", "/healthz", "/readyz", "/metrics"}, set(SPEC["paths"])
    ids = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                deref(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(SPEC)  # every $ref resolves
    for path, item in SPEC["paths"].items():
        for m, op in item.items():
            assert m in METHODS, (path, m)
            assert op["operationId"] not in ids, op["operationId"]
            ids.add(op["operationId"])
            assert op["responses"], (path, m)
            for st, resp in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", st), (path, m, st)
                resp = deref(resp)
                assert resp.get("description"), (path, m, st)
                if int(st) >= 400:
                    sch = resp["content"]["application/json"]["schema"]
                    assert deref(sch) is deref({"$ref": "#/components/schemas/Error"}), (path, m, st)
    # the error codes documented are exactly the server's table
    codes = set(deref({"$ref": "#/components/schemas/Error"})["properties"]["error"]["properties"]["code"]["enum"])
    src = open(os.path.join(w.REPO, "server", "errors.c")).read()
    table = set(re.findall(r'\[WC_E_[A-Z_]+\] = \{\d+, "([a-z_]+)"', src)) - {"ok"}
    assert codes == table, "documented codes %r vs errors.c %r" % (codes ^ table, table)


def test_battery():
    with w.Server({"timeouts_ms": {"header": 400}, "limits": {"max_json_body_bytes": 4096,
                                                              "max_header_bytes": 1024}}) as s:
        p = s.port
        jh = [("Content-Type", "application/json")]
        fh = [("Content-Type", "application/x-www-form-urlencoded")]
        for m in ("POST", "PUT"):
            req(p, m, count_target(["is"]), ZEN)
            req(p, m, count_target(["is", "Zen"], ignore_case="true", boundary="word", mode="parallel"), ZEN)
            req(p, m, "/count", json.dumps({"text": "a b a", "needle": "a"}), jh)
            req(p, m, "/count", json.dumps({"text": "a b", "needles": ["a", "b"], "ignore_case": True,
                                            "boundary": "space", "mode": "sequential"}), jh)
            req(p, m, "/count", "text=a+b+a&needle=a&needle=b", fh)
            req(p, m, "/count?needle=is&bogus=1", ZEN)                       # unknown_parameter
            req(p, m, "/count?needle=is&mode=fast", ZEN)                     # invalid_value
            req(p, m, "/count?needle=is&mode=auto&mode=auto", ZEN)           # duplicate_parameter
            req(p, m, "/count", json.dumps({"needle": "a"}), jh)              # missing_text
            req(p, m, "/count", b"some text")                                 # missing_needle
            req(p, m, "/count?needle=a%20b", b"x")                            # invalid_needle
            req(p, m, "/count?needle=" + "a" * 300, b"x")                     # needle_too_long
            req(p, m, "/count", b"{", jh)                                     # invalid_json
            req(p, m, "/count", b"text=%zz", fh)                              # invalid_form
            req(p, m, "/count", json.dumps({"text": "x" * 5000, "needle": "a"}), jh)  # 413
            req(p, m, count_target(["is"]), ZEN, [("Expect", "fancy")])       # 417
        many = "&".join("needle=n%d" % i for i in range(70))
        req(p, "POST", "/count?" + many[:900], b"x")                           # too_many_needles
        for path in ("/healthz", "/readyz", "/metrics"):
            req(p, "GET", path)
            req(p, "HEAD", path)
            req(p, "OPTIONS", path)
            req(p, "POST", path, b"x")                                        # 405
            req(p, "DELETE", path)                                            # 405
        req(p, "OPTIONS", "/count")
        req(p, "GET", "/count")                                               # 405
        req(p, "HEAD", "/count")                                              # 405
        req(p, "GET", "/nowhere")                                             # 404
        req(p, "POST", "/nowhere", b"x")                                      # 404
        raw(p, b"GET /healthz HTTP/1.1\r\n\r\n", "/healthz", "GET")            # 400: no Host
        raw(p, b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", "/healthz", "GET")  # 505
        raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
            "/healthz", "GET")                                                # 431
        raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", "/healthz", "GET")    # 408 (header timeout)
    with w.Server() as s:
        p = s.port
        # /readyz while draining: 503 shutting_down
        c = Conn(p)
        c.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        busy = Conn(p)
        busy.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "100")]))
        time.sleep(0.1 * w.SLOW)
        s.send_signal(signal.SIGTERM)
        time.sleep(0.2 * w.SLOW)
        c.send(b"\r\n")
        r = c.read_response()
        check("/readyz", "GET", r)
        assert r.status == 503, r
        busy.send(b"is " * 33 + b"i")
        r = busy.read_response()
        check("/count", "POST", r)
        c.close()
        busy.close()
        assert s.wait(20 * w.SLOW) == 0, "the drained server did not exit with 0"
    with w.Server({"auth": {"token": TOKEN}}) as s:
        p = s.port
        ok = [("Authorization", "Bearer " + TOKEN)]
        req(p, "POST", count_target(["is"]), ZEN)                             # 401
        req(p, "PUT", count_target(["is"]), ZEN, [("Authorization", "Bearer x")])
        req(p, "GET", "/metrics")                                             # 401
        req(p, "HEAD", "/metrics")
        req(p, "GET", "/metrics", headers=ok)
        req(p, "POST", count_target(["is"]), ZEN, ok)
        req(p, "GET", "/healthz")
    statuses = {st for _, _, st in SEEN}
    want = {200, 204, 400, 401, 404, 405, 408, 413, 417, 431, 503, 505}
    assert want <= statuses, "the battery did not produce %r" % (want - statuses)
    w.log("  %d distinct (path, method, status) checked: %s" % (len(SEEN), sorted(statuses)))


if __name__ == "__main__":
    w.run(globals(), deadline=120)
