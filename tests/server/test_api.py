"""API of POST /count, /healthz, /readyz, OPTIONS, 404/405, and the 400s
"naming the culprit" (issue 3, "API"). Differential check of counts against
the reference counter on random texts in random chunkings."""

import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (CORPUS, ZEN, Conn, build_request, check_counts, check_error,  # noqa: E402
                    check_response, count_target, post_form, post_json, post_raw,
                    ref_count, request)

SHARED = w.Shared()
SEED = int(os.environ.get("WC_SEED", random.randrange(1 << 30)))


def port():
    return SHARED.port


# ---------------------------------------------------------------- endpoints

def test_healthz_get_head():
    r = request(port(), "GET", "/healthz")
    assert r.status == 200, r
    assert r.json() == {"status": "ok"}, r
    h = request(port(), "HEAD", "/healthz")
    assert h.status == 200, h
    assert h.header("Content-Length") == str(len(r.body)), \
        "HEAD Content-Length %r, GET body is %d bytes" % (h.header("Content-Length"), len(r.body))
    # HEAD sends no body: the next response on the same connection parses
    with Conn(port()) as c:
        c.send(build_request("HEAD", "/healthz") + build_request("GET", "/healthz"))
        h2 = c.read_response(head=True)
        check_response(h2, head=True)
        assert h2.status == 200
        g = c.read_response()
        check_response(g)
        assert g.status == 200 and g.json() == {"status": "ok"}, g


def test_readyz():
    r = request(port(), "GET", "/readyz")
    assert r.status == 200, r
    h = request(port(), "HEAD", "/readyz")
    assert h.status == 200, h


def test_options_count():
    r = request(port(), "OPTIONS", "/count")
    assert r.status == 204, r
    assert r.has_token("Allow", "POST"), "OPTIONS /count Allow: %r" % r.all("Allow")


def test_405_with_allow():
    for method, path, must in [("GET", "/count", ["POST", "PUT"]), ("PATCH", "/count", ["POST"]),
                               ("DELETE", "/count", ["POST"]),
                               ("POST", "/healthz", ["GET", "HEAD"]),
                               ("DELETE", "/healthz", ["GET", "HEAD"]),
                               ("POST", "/readyz", ["GET", "HEAD"])]:
        body = b"x" if method in ("POST", "PUT", "PATCH") else None
        r = request(port(), method, path, body)
        check_error(r, 405)
        for m in must:
            assert r.has_token("Allow", m), "%s %s: Allow %r lacks %s" % (method, path, r.all("Allow"), m)


def test_put_and_absolute_form():
    # PUT is what `curl -T FILE` sends; counting is idempotent.
    r = request(port(), "PUT", "/count?needle=is", b"is this is")
    assert r.status == 200 and r.json()["count"] == 2, r
    # absolute-form targets (RFC 9112 3.2.2) are accepted
    r = request(port(), "POST", "http://example.test/count?needle=is", b"is a is")
    assert r.status == 200 and r.json()["count"] == 2, r
    r = request(port(), "GET", "http://example.test/healthz")
    assert r.status == 200, r
    r = request(port(), "GET", "HTTP://example.test?x=1")
    assert r.status == 404, r


def test_404():
    for method, path in [("GET", "/"), ("GET", "/nope"), ("POST", "/count/x?needle=is"),
                         ("POST", "/counts?needle=is"), ("GET", "/healthzz")]:
        body = b"is" if method == "POST" else None
        r = request(port(), method, path, body)
        check_error(r, 404)


# ---------------------------------------------------------------- raw body

def test_raw_corpus_count():
    r = post_raw(port(), CORPUS, ["is"])
    j = check_counts(r, {"is": 10000}, 858000)
    assert j == {"count": 10000, "counts": {"is": 10000}, "bytes": 858000}, j


def test_raw_modes_give_same_counts():
    for mode in ["auto", "sequential", "parallel"]:
        r = post_raw(port(), CORPUS, ["is", "better", "Is"], mode=mode)
        check_counts(r, {"is": 10000, "better": 8000, "Is": 0}, 858000, "mode=" + mode)
        r = post_raw(port(), CORPUS, ["is"], mode=mode, ignore_case="true")
        check_counts(r, {"is": 10000}, 858000, "ignore_case mode=" + mode)
        exp = ref_count(CORPUS, ["is", "idea"], boundary="word")
        r = post_raw(port(), CORPUS, ["is", "idea"], mode=mode, boundary="word")
        check_counts(r, exp, 858000, "boundary=word mode=" + mode)
        r = post_raw(port(), CORPUS, ["is"], mode=mode, boundary="space", ignore_case="false")
        check_counts(r, {"is": 10000}, 858000, "explicit defaults mode=" + mode)


def test_raw_semantics_fixed_cases():
    cases = [
        (b"Is is is,\r\nis\r", ["is"], {}, {"is": 1}),
        (b"is  is\tis is\n", ["is"], {}, {"is": 2}),
        (b"a \r b\r", ["\r"], {}, {"\r": 1}),           # a lone \r is an ordinary byte
        (b"x \r\nis\r\n", ["\r", "is"], {}, {"\r": 0, "is": 1}),
        (b"is\x00 is \xff is", ["is"], {}, {"is": 2}),  # any bytes in a raw body
        ("IS iS \u017f Is".encode(), ["is"], {"ignore_case": "true"}, {"is": 3}),
        ("\u212a K k".encode(), ["k"], {"ignore_case": "true"}, {"k": 3}),
        ("\u03a3 \u03c3 \u03c2".encode(), ["\u03c3"], {"ignore_case": "true"}, {"\u03c3": 3}),
        ("i\u017f".encode(), ["is"], {"ignore_case": "true"}, {"is": 1}),
        ("stra\u00dfe STRASSE".encode(), ["strasse"], {"ignore_case": "true"}, {"strasse": 1}),
        (b"this is is,is_is is-is (is)", ["is"], {"boundary": "word"}, {"is": 5}),
        (b"is-is-is", ["is-is"], {"boundary": "word"}, {"is-is": 1}),
        ("\u00e9is is\u00e9 is2 2is _is".encode(), ["is"], {"boundary": "word"}, {"is": 0}),
        (b"IS,Is;is", ["is"], {"boundary": "word", "ignore_case": "true"}, {"is": 3}),
        (b"is\r\nis\r", ["is\r"], {"boundary": "word"}, {"is\r": 1}),
    ]
    for text, needles, opts, exp in cases:
        exp_ref = ref_count(text, needles, ignore_case=opts.get("ignore_case") == "true",
                            boundary=opts.get("boundary", "space"))
        assert exp_ref == exp, "reference disagrees with the fixed case %r: %r" % (text, exp_ref)
        for mode in ["sequential", "parallel"]:
            r = post_raw(port(), text, needles, mode=mode, **opts)
            check_counts(r, exp, len(text), "%r %r %r %s" % (text, needles, opts, mode))


def test_raw_any_content_type_and_query_wins():
    body = b'is {"text": "is is", "needle": "x"} is'
    for ct in [None, "text/plain", "application/json", "application/x-www-form-urlencoded",
               "application/octet-stream"]:
        hs = [("Content-Type", ct)] if ct else []
        r = post_raw(port(), body, ["is"], headers=hs)
        check_counts(r, {"is": 2}, len(body), "Content-Type %r with a query needle" % ct)
    form = b"text=is+is+is&needle=x"
    r = post_raw(port(), form, ["is"], headers=[("Content-Type", "application/x-www-form-urlencoded")])
    check_counts(r, {"is": 0}, len(form), "form body with a query needle is raw text")


def test_raw_empty_body():
    r = post_raw(port(), b"", ["is"])
    check_counts(r, {"is": 0}, 0)
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), b"", chunked=[1]))
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 0}, 0, "empty chunked body")


def test_repeated_and_duplicate_needles():
    text = b"is a is b a is"
    r = post_raw(port(), text, ["is", "a", "is", "b", "a"])
    check_counts(r, {"is": 3, "a": 2, "b": 1}, len(text))
    r = post_raw(port(), text, ["is", "is", "is"])
    j = check_counts(r, {"is": 3}, len(text), "one distinct needle given 3 times")
    assert j["count"] == 3
    r = post_raw(port(), text, ["\u00e9", "is"])
    check_counts(r, {"\u00e9": 0, "is": 3}, len(text))
    # percent-encoded UTF-8 needle in the query
    r = request(port(), "POST", "/count?needle=%C3%A9&needle=is", "\u00e9 is \u00e9".encode())
    check_counts(r, {"\u00e9": 2, "is": 1}, len("\u00e9 is \u00e9".encode()))


def test_needle_keys_and_escaping():
    p = port()
    # needles are returned as given (not folded), distinct needles stay distinct
    text = "is IS Is \u212a k".encode()
    r = post_raw(p, text, ["IS", "is", "\u212a"], ignore_case="true")
    check_counts(r, {"IS": 3, "is": 3, "\u212a": 2}, len(text), "keys as given under ignore_case")
    # needles with bytes that JSON must escape in the keys of counts
    for raw, needle in [("%22", '"'), ("%5C", "\\"), ("%01", "\x01"), ("%09", "\t"),
                        ("%22%5C%2F%08%0C%0D%1F", '"\\/\x08\x0c\r\x1f'), ("%E2%80%A8", "\u2028"),
                        ("%00", "\x00"), ("a%00b", "a\x00b")]:
        body = ("x " + needle + " y " + needle).encode()
        r = request(p, "POST", "/count?needle=" + raw, body)
        check_counts(r, {needle: 2}, len(body), "needle %r (JSON escaping of the key)" % needle)


def test_body_edge_cases():
    p = port()
    # POST without Content-Length or Transfer-Encoding: an empty body
    with Conn(p) as c:
        c.send(b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 0}, 0, "POST without a body")
    # media types are case-insensitive, parameters allowed
    for ct in ["Application/JSON", "application/json;charset=UTF-8", "APPLICATION/JSON ; charset=utf-8"]:
        r = request(p, "POST", "/count", b'{"text": "is is", "needle": "is"}', [("Content-Type", ct)])
        check_counts(r, {"is": 2}, 5, "Content-Type %r" % ct)
    for ct in ["Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]:
        r = request(p, "POST", "/count", b"text=is+is&needle=is", [("Content-Type", ct)])
        check_counts(r, {"is": 2}, 5, "Content-Type %r" % ct)
    # transfer-coding names are case-insensitive
    with Conn(p) as c:
        c.send(b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
               b"5\r\nis is\r\n0\r\n\r\n")
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 2}, 5, "Transfer-Encoding: Chunked")
    # Expect: 100-continue with the body sent at once anyway
    with Conn(p) as c:
        c.send(build_request("POST", count_target(["is"]), b"is is", [("Expect", "100-continue")]))
        r, interim = c.read_final()
        check_response(r)
        check_counts(r, {"is": 2}, 5, "Expect with the body sent at once")
        c.send(build_request("GET", "/healthz"))
        r = c.read_response()
        assert r.status == 200, "after an Expect request whose body came at once: %r" % r
    # a query string on /healthz is harmless
    r = request(p, "GET", "/healthz?probe=1")
    assert r.status == 200, r


def test_malformed_encodings_answer():
    # malformed percent-encoding and deep JSON: an answer (200 or 400), never a crash or hang
    p = port()
    F = [("Content-Type", "application/x-www-form-urlencoded")]
    for raw in [b"text=%zz&needle=is", b"text=is%&needle=is", b"text=%C3&needle=is", b"text=is&needle=i%s",
                b"text=is&&needle=is", b"text=is&needle", b"=&text=is&needle=is", b"text=is;needle=is"]:
        r = request(p, "POST", "/count", raw, F)
        check_response(r, what=repr(raw))
        assert r.status in (200, 400), (raw, r)
    for raw in ["/count?needle=%zz", "/count?needle=is%", "/count?needle=is&", "/count?&needle=is",
                "/count?needle"]:
        r = request(p, "POST", raw, b"is is")
        check_response(r, what=raw)
        assert r.status in (200, 400), (raw, r)
    J = [("Content-Type", "application/json")]
    deep = b'{"text": "is", "needle": "is", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = request(p, "POST", "/count", deep, J)
    check_error(r, 400)
    deep = b"[" * 200000
    r = request(p, "POST", "/count", deep, J)
    check_error(r, 400)
    r = request(p, "GET", "/healthz")
    assert r.status == 200


# ---------------------------------------------------------------- JSON, form

def test_json_bodies():
    r = post_json(port(), {"text": ZEN.decode(), "needle": "is"})
    check_counts(r, {"is": 10}, 858)
    r = post_json(port(), {"text": "is a is", "needles": ["is", "a", "is"]})
    check_counts(r, {"is": 2, "a": 1}, 7)
    r = post_json(port(), {"text": "is a is", "needles": ["is"]})
    check_counts(r, {"is": 2}, 7)
    r = post_json(port(), {"text": "IS is", "needle": "is", "ignore_case": True, "boundary": "word",
                           "mode": "parallel"})
    check_counts(r, {"is": 2}, 5)
    r = post_json(port(), {"text": "IS is", "needle": "is", "ignore_case": False, "boundary": "space",
                           "mode": "sequential"})
    check_counts(r, {"is": 1}, 5)
    r = post_json(port(), {"text": "", "needle": "is"})
    check_counts(r, {"is": 0}, 0)
    # bytes is the decoded length: escapes, surrogate pairs, \r\n
    raw = b'{"text": "a\\u00e9 is \\ud83d\\ude00 is\\r\\nis\\t", "needle": "is"}'
    text = "a\u00e9 is \U0001F600 is\r\nis\t".encode()
    r = post_json(port(), None, raw=raw)
    check_counts(r, ref_count(text, ["is"]), len(text), "JSON escapes")
    # key order and whitespace do not matter, trailing whitespace is fine
    r = post_json(port(), None, raw=b' \n{ "needle" : "is" ,\n "text" : "is is" }\n ')
    check_counts(r, {"is": 2}, 5)
    # charset parameter on the media type
    r = post_json(port(), None, raw=b'{"text":"is","needle":"is"}',
                  headers=[("X-Dummy", "1")])
    check_counts(r, {"is": 1}, 2)
    r = request(port(), "POST", "/count", b'{"text":"is","needle":"is"}',
                [("Content-Type", "application/json; charset=utf-8")])
    check_counts(r, {"is": 1}, 2, "application/json; charset=utf-8")


def test_form_bodies():
    r = post_form(port(), None, raw=b"text=This+is%20it%21+is&needle=is")
    check_counts(r, {"is": 2}, len(b"This is it! is"))
    r = post_form(port(), None, raw=b"needle=%C3%A9&text=%C3%A9+%C3%A9%2B+a%26b")
    check_counts(r, {"\u00e9": 1}, len("\u00e9 \u00e9+ a&b".encode()))
    r = post_form(port(), None, raw=b"text=is+a+is&needle=is&needle=a&needle=is")
    check_counts(r, {"is": 2, "a": 1}, 7)
    r = post_form(port(), None, raw=b"text=IS+is&needle=is&ignore_case=true&mode=sequential&boundary=word")
    check_counts(r, {"is": 2}, 5)
    r = post_form(port(), None, raw=b"text=a%0D%0Ais%0D%0A&needle=is")
    check_counts(r, {"is": 1}, 7)
    r = post_form(port(), None, raw=b"text=&needle=is")
    check_counts(r, {"is": 0}, 0)


# ---------------------------------------------------------------- errors

def err(r, status=400, mentions=(), code=None):
    check_response(r)
    return check_error(r, status, code=code, mentions=mentions)


def test_query_errors():
    p = port()
    body = b"is is"
    err(request(p, "POST", "/count?needle=is&foo=1", body), mentions=["foo"])
    err(request(p, "POST", "/count?needle=is&Needle=is", body), mentions=["Needle"])
    err(request(p, "POST", "/count?needle=is&mode=fast", body), mentions=["mode"])
    err(request(p, "POST", "/count?needle=is&boundary=line", body), mentions=["boundary"])
    err(request(p, "POST", "/count?needle=is&ignore_case=maybe", body), mentions=["ignore_case"])
    err(request(p, "POST", "/count", body, [("Content-Type", "text/plain")]), mentions=["needle"])
    err(request(p, "POST", "/count", body), mentions=["needle"])
    err(request(p, "POST", "/count?needle=", body))                # empty needle
    err(request(p, "POST", "/count?needle=is&needle=", body))
    err(request(p, "POST", "/count?needle=a%20b", body))            # space
    err(request(p, "POST", "/count?needle=a%0Ab", body))            # \n
    err(request(p, "POST", "/count?needle=%0A", body))
    err(request(p, "POST", "/count?needle=%FF", body))              # invalid UTF-8
    err(request(p, "POST", "/count?needle=%C3", body))
    err(request(p, "POST", "/count?needle=%ED%A0%80", body))        # surrogate
    err(request(p, "POST", "/count?needle=%C0%AF", body))           # overlong
    err(request(p, "POST", "/count?needle=" + "a" * 257, body))     # default max_needle_bytes 256
    r = request(p, "POST", "/count?needle=" + "a" * 256, body)
    check_counts(r, {"a" * 256: 0}, len(body), "a 256-byte needle is allowed by default")
    many = "&".join("needle=n%d" % i for i in range(65))            # default max_needles 64
    err(request(p, "POST", "/count?" + many, body))
    many = "&".join("needle=n%d" % i for i in range(64))
    r = request(p, "POST", "/count?" + many, body)
    assert r.status == 200 and len(r.json()["counts"]) == 64, r


def test_json_errors():
    p = port()
    J = [("Content-Type", "application/json")]

    def jr(raw, mentions=(), status=400):
        if isinstance(raw, str):
            raw = raw.encode()
        return err(request(p, "POST", "/count", raw, J), status, mentions)

    jr('{"text": "is", "needle": "is", "extra": 1}', ["extra"])
    jr('{"Text": "is", "needle": "is"}', ["Text"])                  # case-sensitive keys
    jr('{"text": "is", "Needle": "is"}', ["Needle"])
    jr('{"text": "is"}', ["needle"])
    jr('{"needle": "is"}', ["text"])
    jr('{"text": "is", "needles": []}', ["needle"])
    jr('{"text": 5, "needle": "is"}', ["text"])
    jr('{"text": null, "needle": "is"}', ["text"])
    jr('{"text": ["is"], "needle": "is"}', ["text"])
    jr('{"text": "is", "needle": 5}', ["needle"])
    jr('{"text": "is", "needle": ["is"]}', ["needle"])
    jr('{"text": "is", "needles": "is"}', ["needles"])
    jr('{"text": "is", "needles": [1]}', ["needles"])
    jr('{"text": "is", "needle": "is", "ignore_case": "yes"}', ["ignore_case"])
    jr('{"text": "is", "needle": "is", "ignore_case": 1}', ["ignore_case"])
    jr('{"text": "is", "needle": "is", "mode": "fast"}', ["mode"])
    jr('{"text": "is", "needle": "is", "mode": 1}', ["mode"])
    jr('{"text": "is", "needle": "is", "boundary": "line"}', ["boundary"])
    jr('{"text": "is", "needle": ""}')
    jr('{"text": "is", "needle": "a b"}')
    jr('{"text": "is", "needle": "a\\nb"}')
    jr('{"text": "is", "needles": ["is", ""]}')
    jr('{"text": "is", "needle": "\\udc80"}')                        # lone surrogate: not UTF-8
    jr(b'{"text": "is", "needle": "\xff"}')                          # raw invalid UTF-8
    jr('{"text": "is", "needle": "%s"}' % ("a" * 257))
    jr(json.dumps({"text": "is", "needles": ["n%d" % i for i in range(65)]}))
    # invalid JSON
    jr('{"text": "is", "needle": }')
    jr('{"text": "is", "needle": "is"')
    jr('{"text": "is')
    jr('')
    jr('{"text": "is", "needle": "is"} x')                           # trailing garbage
    jr('{"text": "is", "needle": "is"}{}')
    jr('["is"]')
    jr('"is"')
    jr('null')
    # duplicate keys
    jr('{"text": "is", "text": "is is", "needle": "is"}', ["text"])
    jr('{"text": "is", "needle": "is", "needle": "a"}', ["needle"])


def test_json_nul_never_truncates():
    p = port()
    J = [("Content-Type", "application/json")]
    # text: 400, or counted in full (2, 7 bytes); never the truncated "x" (0, 1 byte)
    r = request(p, "POST", "/count", b'{"text": "x\\u0000 is is", "needle": "is"}', J)
    check_response(r)
    if r.status != 400:
        check_counts(r, {"is": 2}, 7, "text with \\u0000")
    else:
        check_error(r, 400)
    # needle: 400, or the needle "is\0" (0 matches); never the truncated "is" (2)
    r = request(p, "POST", "/count", b'{"text": "is is", "needle": "is\\u0000"}', J)
    check_response(r)
    if r.status != 400:
        check_counts(r, {"is\x00": 0}, 5, "needle with \\u0000")
    r = request(p, "POST", "/count", b'{"text": "is is", "needles": ["a\\u0000", "a"]}', J)
    check_response(r)
    if r.status != 400:
        check_counts(r, {"a\x00": 0, "a": 0}, 5, "needles with \\u0000")
    # a key with \u0000 is an unknown key, never "text"
    r = request(p, "POST", "/count", b'{"text\\u0000": "is", "needle": "is"}', J)
    err(r)
    r = request(p, "POST", "/count", b'{"text": "is", "needle\\u0000x": "is", "needle": "is"}', J)
    err(r)
    # a raw NUL byte after the value: invalid JSON
    r = request(p, "POST", "/count", b'{"text": "is", "needle": "is"}\x00', J)
    err(r)
    # a raw NUL byte inside strings (not escaped; control bytes must be
    # escaped in JSON): 400, never a C-string truncation
    r = request(p, "POST", "/count", b'{"text": "x\x00 is is", "needle": "is"}', J)
    check_response(r)
    if r.status != 400:
        check_counts(r, {"is": 2}, 7, "text with a raw NUL byte")
    r = request(p, "POST", "/count", b'{"text": "is is", "needle": "is\x00"}', J)
    check_response(r)
    if r.status != 400:
        check_counts(r, {"is\x00": 0}, 5, "needle with a raw NUL byte")
    err(request(p, "POST", "/count", b'{"text\x00": "is", "needle": "is"}', J))


def test_form_errors():
    p = port()
    F = [("Content-Type", "application/x-www-form-urlencoded")]

    def fr(raw, mentions=()):
        return err(request(p, "POST", "/count", raw.encode(), F), 400, mentions)

    fr("text=is", ["needle"])
    fr("needle=is", ["text"])
    fr("text=is&needle=is&foo=1", ["foo", "allowed: text, needle, needles, ignore_case, boundary, mode"])
    fr("text=is&needle=is&mode=fast", ["mode"])
    fr("text=is&needle=is&boundary=line", ["boundary"])
    fr("text=is&needle=is&ignore_case=maybe", ["ignore_case"])
    fr("text=is&needle=")
    fr("text=is&needle=a+b")
    fr("text=is&needle=a%0Ab")
    fr("text=is&needle=%FF")


def test_needle_limits_from_config():
    with w.Server({"limits": {"max_needles": 4, "max_needle_bytes": 16}}) as s:
        body = b"is a"
        err(request(s.port, "POST", "/count?needle=" + "x" * 17, body))
        r = request(s.port, "POST", "/count?needle=" + "x" * 16, body)
        check_counts(r, {"x" * 16: 0}, 4)
        # 16 bytes of UTF-8 (8 two-byte characters) is fine, 18 is not
        r = request(s.port, "POST", "/count?needle=" + "%C3%A9" * 8, body)
        check_counts(r, {"\u00e9" * 8: 0}, 4)
        err(request(s.port, "POST", "/count?needle=" + "%C3%A9" * 9, body))
        err(post_raw(s.port, body, ["a", "b", "c", "d", "e"]))
        # duplicates do not count against max_needles (distinct ones do)
        r = post_raw(s.port, body, ["a", "b", "c", "is", "a", "is", "b"])
        check_counts(r, {"a": 1, "b": 0, "c": 0, "is": 1}, 4)
        err(post_json(s.port, {"text": "is", "needles": ["a", "b", "c", "d", "e"]}))
        err(post_json(s.port, {"text": "is", "needle": "y" * 17}))
        err(post_form(s.port, None, raw=b"text=is&needle=a&needle=b&needle=c&needle=d&needle=e"))
        r = post_json(s.port, {"text": "is", "needles": ["a", "b", "c", "is", "is"]})
        check_counts(r, {"a": 0, "b": 0, "c": 0, "is": 1}, 2)


# ---------------------------------------------------------------- differential

def _send_and_check(c, rng, req, exp, nbytes, what):
    if len(req) > 20000:  # byte-sized pieces only for small requests (time)
        maxpiece = rng.choice([300, 5000, 70000])
    else:
        maxpiece = rng.choice([1, 7, 100, 5000])
    c.send_pieces(req, rng, maxpiece=maxpiece, sleep_every=rng.choice([0, 0, 50]))
    r = c.read_response()
    check_response(r, what=what)
    check_counts(r, exp, nbytes, what)


def test_differential_random_texts_and_chunkings():
    rng = random.Random(SEED)
    w.log("  seed %d (WC_SEED=%d to repeat)" % (SEED, SEED))
    # a low parallel threshold makes the block cutting run on small texts
    # (inline_max_bytes 4096: the small texts go both ways)
    with w.Server({"parallel": {"min_bytes": 65536, "inline_max_bytes": 4096}}) as s:
        c = s.conn()
        last = w.time.monotonic()
        for i in range(150):
            if rng.random() < 0.1:
                c.close()
                c = s.conn()
            ntok = rng.choice([0, 1, 3, 20, 200, 2000, 2000, 30000])
            if i % 15 == 7:
                ntok = rng.randint(250000, 400000)  # over 1 MiB: several streaming blocks
            kind = rng.choice(["raw", "raw", "raw", "chunked", "chunked", "json", "form"])
            needles = w.random_needles(rng)
            opts = {"mode": rng.choice(["auto", "sequential", "parallel"])}
            if kind in ("raw", "chunked") and rng.random() < 0.4:
                text = w.random_bytes_text(rng, ntok)
            else:
                text = w.random_text(rng, ntok).encode()
            valid = True
            try:
                text.decode()
            except UnicodeDecodeError:
                valid = False
            ic = rng.random() < 0.3
            bd = "word" if (valid and rng.random() < 0.3) else "space"
            if ic:
                opts["ignore_case"] = "true"
            if bd == "word":
                opts["boundary"] = "word"
            exp = ref_count(text, needles, ignore_case=ic, boundary=bd)
            what = "case %d (%s, %d bytes, needles %r, %r)" % (i, kind, len(text), needles, opts)
            if kind == "raw":
                req = build_request("POST", count_target(needles, **opts), text,
                                    [("Content-Type", rng.choice(["text/plain", "application/json"]))])
            elif kind == "chunked":
                body = w.chunk_body(text, rng.choice([1, 3, 64, 1000, 70000]), rng)
                req = build_request("POST", count_target(needles, **opts), body, content_length=False,
                                    headers=[("Transfer-Encoding", "chunked")])
            elif kind == "json":
                obj = {"text": text.decode()}
                if len(needles) == 1 and rng.random() < 0.5:
                    obj["needle"] = needles[0]
                else:
                    obj["needles"] = needles
                if ic:
                    obj["ignore_case"] = True
                if bd == "word":
                    obj["boundary"] = "word"
                obj["mode"] = opts["mode"]
                items = list(obj.items())
                rng.shuffle(items)
                body = json.dumps(dict(items), ensure_ascii=rng.random() < 0.5).encode()
                req = build_request("POST", "/count", body, [("Content-Type", "application/json")])
            else:
                fields = [("text", text.decode())] + [("needle", n) for n in needles] + list(opts.items())
                rng.shuffle(fields)
                body = urllib.parse.urlencode(fields).encode()
                req = build_request("POST", "/count", body,
                                    [("Content-Type", "application/x-www-form-urlencoded")])
            if w.time.monotonic() - last > 1.0:
                # computing the reference took a while: the keep-alive
                # timeout (5 s) may be near, use a fresh connection
                c.close()
                c = s.conn()
            _send_and_check(c, rng, req, exp, len(text), what)
            last = w.time.monotonic()
        c.close()


def _send_split(p, target, body, cuts, chunked=False):
    """Sends body so that the server's reads end at the given offsets: each
    piece in one send, with a pause after it."""
    with Conn(p, timeout=60 * w.SLOW) as c:
        if chunked:
            c.send(build_request("POST", target, None, [("Transfer-Encoding", "chunked")]))
        else:
            c.send(build_request("POST", target, None, [("Content-Length", str(len(body)))]))
        prev = 0
        for cut in list(cuts) + [len(body)]:
            piece = body[prev:cut]
            if chunked:
                piece = b"%x\r\n" % len(piece) + piece + b"\r\n" if piece else b""
            c.send(piece)
            w.time.sleep(0.03)
            prev = cut
        if chunked:
            c.send(b"0\r\n\r\n")
        r = c.read_response()
        check_response(r)
        return r


def test_inline_and_pool_agree():
    """parallel.inline_max_bytes: small bodies counted on the event loop give
    byte-identical answers to the same bodies counted in the worker pool
    (inline_max_bytes 0), one by one and pipelined in one write; bodies just
    over the threshold go to the pool."""
    rng = random.Random(SEED + 7)
    J = [("Content-Type", "application/json")]
    F = [("Content-Type", "application/x-www-form-urlencoded")]
    reqs = [
        build_request("POST", count_target(["is"]), b"is this is it"),
        build_request("POST", count_target(["is"]), b""),
        build_request("POST", count_target(["is", "it"], mode="parallel"), b"is it\r\nis it\nx"),
        build_request("POST", count_target(["IS"], ignore_case="true", boundary="word"), b"is, IS! this"),
        build_request("POST", count_target(["is"]), b"is is is", chunked=[1, 2]),
        build_request("POST", "/count", b'{"text":"is this is it","needle":"is"}', J),
        build_request("POST", "/count", b'{"text":"a b a","needles":["a","b"],"mode":"parallel"}', J),
        build_request("POST", "/count", b'{"text":"x","needle":""}', J),
        build_request("POST", "/count", b'{"text":', J),
        build_request("POST", "/count", b"text=is+is&needle=is", F),
        build_request("POST", "/count", b"needle=is", F),
        build_request("GET", "/healthz"),
    ]
    for n in (1000, 4095, 4096, 4097, 9000):  # around an inline_max_bytes of 4096
        text = w.random_text(rng, n).encode()[:n]
        reqs.append(build_request("POST", count_target(["is", "the"]), text))
        body = json.dumps({"text": text.decode("utf-8", "ignore"), "needle": "is"}).encode()
        reqs.append(build_request("POST", "/count", body, J))
    answers = {}
    for inline in (0, 4096, 1 << 20):
        with w.Server({"parallel": {"inline_max_bytes": inline}}) as s:
            got = []
            with s.conn() as c:
                for req in reqs:
                    c.send(req)
                    r = c.read_response()
                    got.append((r.status, r.body))
            with s.conn() as c:
                c.send(b"".join(reqs))
                for i in range(len(reqs)):
                    r = c.read_response()
                    assert (r.status, r.body) == got[i], "inline_max_bytes %d: pipelined answer %d %r != %r" % (
                        inline, i, (r.status, r.body), got[i])
            answers[inline] = got
    for inline in (4096, 1 << 20):
        for i, (a, b) in enumerate(zip(answers[0], answers[inline])):
            assert a == b, "request %d: pool %r, inline_max_bytes %d %r" % (i, a, inline, b)
    assert answers[0][0] == (200, b'{"count":2,"counts":{"is":2},"bytes":13}'), answers[0][0]


def test_large_json_fast_path():
    """JSON bodies over 64 KiB take the fast path (only the rest of the body
    goes through cJSON; the text is decoded in memchr runs, in slices with
    mode=parallel). Counts equal the reference on texts full of escapes
    (\\uXXXX, surrogate pairs, \\n, \\", \\\\, \\/), and every bad
    body gets the answer the cJSON path gives: the same error and position."""
    rng = random.Random(SEED + 11)
    J = [("Content-Type", "application/json")]
    words = ["is", "IS", "\u00e9t\u00e9", "caf\u00e9", "x\ty", "a\"b", "back\\slash", "sl/sh",
             "\U0001F600", "\u2028", "\u00ad", "is,"]
    parts, n = [], 0
    while n < 300000:
        parts.append(rng.choice(words))
        parts.append(rng.choice([" ", " ", " ", "\n", "\r\n", "  "]))
        n += len(parts[-1]) + len(parts[-2])
    text = "".join(parts)
    with w.Server({"parallel": {"min_bytes": 65536}}) as s:
        for ensure_ascii in (True, False):
            for mode in ["auto", "sequential", "parallel"]:
                for needles, ic, bd in [(["is"], False, "space"), (["IS", "caf\u00e9", "\U0001F600"], True, "word"),
                                        (["a\"b", "back\\slash", "sl/sh", "x\ty"], False, "space")]:
                    obj = {"needles": needles, "text": text, "mode": mode, "ignore_case": ic, "boundary": bd}
                    body = json.dumps(obj, ensure_ascii=ensure_ascii).encode()
                    assert len(body) > 65536
                    exp = ref_count(text.encode(), needles, ignore_case=ic, boundary=bd)
                    r = request(s.port, "POST", "/count", body, J)
                    check_counts(r, exp, len(text.encode()), "fast path, ascii=%s mode=%s needles=%r" % (
                        ensure_ascii, mode, needles))
        # options from the query string survive the fast path and the fallback
        body = json.dumps({"needle": "IS", "text": text}).encode()
        r = request(s.port, "POST", "/count?ignore_case=true&mode=parallel", body, J)
        check_counts(r, ref_count(text.encode(), ["IS"], ignore_case=True), len(text.encode()), "query options")
        # bad bodies: the error of the cJSON path, with the byte of the bad escape
        good = json.dumps({"text": text, "needle": "is"})
        start = good.index('"text": "') + 9
        cut = good.index(" ", start + (len(good) - start) * 3 // 4) + 1  # in the text, after a space
        for bad, what in [("\\uZZZZ", "bad hex"), ("\\q", "bad escape"), ("\\udc00", "lone low surrogate"),
                          ("\\ud800 x", "high surrogate alone"), ("\\ud800\\u0041", "high + non-low")]:
            for mode in ["sequential", "parallel"]:
                body = (good[:cut] + bad + good[cut:]).replace('"needle"', '"mode": "%s", "needle"' % mode, 1)
                pos = body.index(bad[:2], cut - 1)
                r = request(s.port, "POST", "/count", body.encode(), J)
                check_error(r, 400, "invalid_json", mentions=("near byte %d" % pos,))
        # NUL: the NUL message, however it is written
        for bad in ("\\u0000", "\x00"):
            body = (good[:cut] + bad + good[cut:]).replace('"needle"', '"mode": "parallel", "needle"', 1)
            r = request(s.port, "POST", "/count", body.encode(), J)
            check_error(r, 400, "invalid_json", mentions=("NUL",))
        # two bad escapes far apart (in different slices with mode=parallel,
        # decoded in place): the answer is still cJSON's, which looks for
        # NULs first (a \u0000 anywhere before a bad \u wins), then fails
        # at the first escape it rejects (\q), then reports a bad \u
        early = good.index(" ", start + (len(good) - start) // 8) + 1
        for a, b, want in [("\\uZZZZ", "\\q", "b"), ("\\q", "\\u0000", "NUL"),
                           ("\\uZZZZ", "\\u0000", "a"), ("\\u0000", "\\uZZZZ", "NUL"),
                           ("\\q", "\\udc00", "a"), ("\\ud800 ", "\\uZZZZ", "a")]:
            for mode in ["sequential", "parallel"]:
                body = good[:early] + a + good[early:cut] + b + good[cut:]
                pa, pb = early, cut + len(a)
                body = body.replace('"needle"', '"mode": "%s", "needle"' % mode, 1)
                r = request(s.port, "POST", "/count", body.encode(), J)
                if want == "NUL":
                    check_error(r, 400, "invalid_json", mentions=("NUL",))
                else:
                    check_error(r, 400, "invalid_json", mentions=("near byte %d" % (pa if want == "a" else pb),))
        # a bad \\u right before the end: cJSON takes it as six bytes, reads
        # the text's last backslash as escaping the closing quote, and
        # accepts the string; the answer names the bad \\u
        tail = "a" * 70000 + "\\uxyz\\\\"
        body = '{"needle": "a", "mode": "parallel", "text": "%s"}' % tail
        r = request(s.port, "POST", "/count", body.encode(), J)
        check_error(r, 400, "invalid_json", mentions=("near byte %d" % body.index("\\uxyz"),))
        # a text of "\\n" + LF lines without a space: no slice cut is safe,
        # found in one pass (moving from separator to separator was quadratic)
        body = ('{"needle": "a", "mode": "parallel", "text": "%s"}' % ("a\\n\n" * 400000)).encode()
        r = request(s.port, "POST", "/count", body, J, timeout=30 * w.SLOW)
        check_counts(r, {"a": 400000}, 400000 * 3, "no safe cut")
        # the fast path steps aside: escaped key, two texts, errors in the rest
        r = request(s.port, "POST", "/count", good.replace('"text"', '"te\\u0078t"', 1).encode(), J)
        check_counts(r, ref_count(text.encode(), ["is"]), len(text.encode()), "escaped key")
        r = request(s.port, "POST", "/count", good.replace('{', '{"text": "x", ', 1).encode(), J)
        check_error(r, 400, mentions=("twice",))
        r = request(s.port, "POST", "/count", good.replace('"needle"', '"needel"', 1).encode(), J)
        check_error(r, 400, mentions=("needel",))
        r = request(s.port, "POST", "/count", (good[:cut] + "\\q" + good[cut:]).replace('"needle"', '"needel"').encode(), J)
        check_error(r, 400, "invalid_json")


def test_json_text_found_while_body_arrives():
    """A JSON body of 4 MiB and more with a Content-Length is looked at in
    the pool while it arrives: every 1 MiB of new bytes a scan job looks for
    the end of its text (bodies that start {"text":"), and the parse job
    takes up where the last one stopped. The body is sent in pieces that end
    inside runs of backslashes (an escaped quote, an even run before a word)
    and right before the closing quote, with pauses so that the scan jobs
    stop there; with the last piece sent at once too, so that the body can
    be complete while a scan job runs (the parse job then waits for it).
    Every answer equals the reference, with the text first or not, in each
    mode; a bad escape late in the text gets cJSON's error and byte; a
    client gone half way leaves the server serving."""
    rng = random.Random(SEED + 13)
    J = [("Content-Type", "application/json")]
    mib = 1 << 20
    tricky = ['\\\\\\"', '\\\\\\\\x', '\\"', '\\\\ ', '\\\\\\\\\\"']  # JSON: \\\" \\\\x \" \\ \\\\\"

    # escaped words with a separator after each, and blocks of them
    words = [json.dumps(a)[1:-1] + b for a in ["is", "this", "is\n", "x", "tab\t", "\u00e9t\u00e9", "a\"b",
                                                 "\U0001F600"] for b in (" ", "\\n", "\\r\\n")]
    fill = ["".join(rng.choice(words) for _ in range(2000)) for _ in range(8)]

    def make(first, mode, bad=None):
        """(body, the decoded text, piece ends)"""
        pre = ' {\n "text" : "' if first else '{"needle": "is", "mode": "%s", "text": "' % mode
        post = '", "needles": ["is", "\\\\\\"", "x"], "mode": "%s"}' % mode if first else '"}'
        out, ends, n = [pre], [], len(pre)
        for k in range(1, 6):
            target = k * mib + rng.randrange(-3000, 3000)
            while n < target - 20000:
                out.append(rng.choice(fill))
                n += len(out[-1])
            while n < target - 200:
                out.append(rng.choice(words))
                n += len(out[-1])
            t = rng.choice(tricky)
            ends.append(n + rng.randrange(1, len(t)))  # inside the run
            out.append(t + " ")
            n += len(t) + 1
        if bad:
            out.append("is " + bad + " is ")
            n += len(bad) + 6
        out.append("is \\\\")  # an even run right before the closing quote
        n += 5
        ends.append(n)
        body = "".join(out) + post
        text = json.loads('"' + body[len(pre):n] + '"') if not bad else None
        return body.encode(), text, ends

    def send(s, body, ends, wait_last):
        with Conn(s.port, timeout=60 * w.SLOW) as c:
            c.send(build_request("POST", "/count", None, J + [("Content-Length", str(len(body)))]))
            at = 0
            for e in (ends if wait_last else ends[:3]) + [len(body)]:
                c.send(body[at:e])
                at = e
                time.sleep(0.03)
            return c.read_response()

    with w.Server({"limits": {"max_json_body_bytes": 64 << 20}, "log": {"level": "debug"}}) as s:
        for first in (True, False):
            for mode in ("sequential", "parallel", "auto"):
                for wait_last in (True, False):
                    body, text, ends = make(first, mode)
                    needles = ["is", '\\"', "x"] if first else ["is"]
                    r = send(s, body, ends, wait_last)
                    check_counts(r, ref_count(text.encode(), needles), len(text.encode()),
                                 "text first=%s, %s, last piece %s" % (first, mode,
                                                                       "after a pause" if wait_last else "at once"))
        for mode in ("sequential", "parallel"):
            body, _, ends = make(True, mode, bad="\\q")
            r = send(s, body, ends, True)
            check_error(r, 400, "invalid_json", mentions=("near byte %d" % body.index(b"\\q "),))
        # gone half way, with a scan job queued or running
        body, text, ends = make(True, "parallel")
        with Conn(s.port) as c:
            c.send(build_request("POST", "/count", None, J + [("Content-Length", str(len(body)))]))
            c.send(body[:ends[2]])
            time.sleep(0.01)
        body, text, ends = make(True, "auto")
        r = send(s, body, ends, False)
        check_counts(r, ref_count(text.encode(), ["is", '\\"', "x"]), len(text.encode()), "after a client left")
        assert request(s.port, "GET", "/healthz").status == 200
        # the debug diagnostics say that scan jobs ran; the body complete
        # while one runs is a race, run until it was seen (usually at once)
        assert "JSON text scanned as the body arrived" in s.stderr, s.stderr[-2000:]
        for _ in range(40):
            if "the parse waited for a scan job" in s.stderr:
                break
            body, text, ends = make(True, "sequential")
            check_counts(send(s, body, ends, False), ref_count(text.encode(), ["is", '\\"', "x"]),
                         len(text.encode()), "the body complete while a scan job runs")
        else:
            raise AssertionError("no parse waited for a scan job in 40 bodies")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))


def test_large_json_buffers_reused():
    """JSON and form buffers of 1 MiB and more are kept for the next large
    body of at least half their size (wc_bodypool_t) and freed after 2-3 s
    unused. A reused buffer still holds the bytes of the body before; every
    answer equals a fresh buffer's: counts in each mode, shorter bodies
    after longer ones, a bad escape (same message, same byte), chunked and
    form bodies; after the idle time the memory is given back."""
    J = [("Content-Type", "application/json")]

    def body(k, mode, needle="is"):
        return json.dumps({"text": (ZEN * k).decode(), "needle": needle, "mode": mode}).encode()

    with w.Server({"event_loops": 1, "limits": {"max_json_body_bytes": 128 << 20}}) as s:
        for k, mode in [(4000, "sequential"), (2500, "parallel"), (2100, "auto"), (4000, "parallel"),
                        (1300, "sequential"), (4500, "sequential"), (2400, "parallel")]:
            r = request(s.port, "POST", "/count", body(k, mode), J)
            check_counts(r, {"is": 10 * k}, 858 * k, "JSON, %d x the corpus, %s" % (k, mode))
        good = body(2500, "sequential").decode()
        cut = good.index(" ", len(good) // 2) + 1
        for mode in ("sequential", "parallel"):
            bad = (good[:cut] + "\\q" + good[cut:]).replace('"sequential"', '"%s"' % mode)
            r = request(s.port, "POST", "/count", bad.encode(), J)
            check_error(r, 400, "invalid_json", mentions=("near byte %d" % bad.index("\\q"),))
            r = request(s.port, "POST", "/count", body(3000, mode), J)  # after a failure
            check_counts(r, {"is": 30000}, 858 * 3000, "JSON after a bad one, %s" % mode)
        with Conn(s.port, timeout=60 * w.SLOW) as c:
            c.send(build_request("POST", "/count", body(3000, "parallel"), J, chunked=[100000, 7]))
            check_counts(c.read_response(), {"is": 30000}, 858 * 3000, "chunked JSON")
        r = post_form(s.port, {"text": (ZEN * 2000).decode(), "needle": "is"})
        check_counts(r, {"is": 20000}, 858 * 2000, "form")
        # bodies over 1 MiB are read straight into their buffer, up to their
        # last byte: pipelined requests after them, and a body in small
        # pieces, are read as usual
        with Conn(s.port, timeout=60 * w.SLOW) as c:
            reqs = [build_request("POST", "/count", body(k, m), J) for k, m in ((2000, "parallel"), (1500, "auto"))]
            c.send(reqs[0] + reqs[1] + build_request("POST", count_target(["is"]), ZEN) + reqs[0])
            for k in (2000, 1500, 1, 2000):
                check_counts(c.read_response(), {"is": 10 * k}, 858 * k, "pipelined after %d" % k)
            c.send_pieces(reqs[1], random.Random(SEED + 12), maxpiece=70000, sleep_every=8)
            check_counts(c.read_response(), {"is": 15000}, 858 * 1500, "in pieces")
        # 43 MB: its buffer is kept, then freed when unused
        r = request(s.port, "POST", "/count", body(50000, "sequential"), J, timeout=60 * w.SLOW)
        check_counts(r, {"is": 500000}, 858 * 50000, "43 MB")
        if w.SANITIZED:  # freed memory waits in the sanitizer's quarantine
            return
        busy = rss_kib(s.proc.pid)
        deadline = time.time() + 10
        while rss_kib(s.proc.pid) > busy - 30000 and time.time() < deadline:
            time.sleep(0.2)
        idle = rss_kib(s.proc.pid)
        w.log("  RSS %d KiB after a 43 MB JSON body, %d KiB when idle" % (busy, idle))
        assert idle < busy - 30000, (busy, idle)


def test_idle_blocks_given_back():
    """Raw bodies stream through 1 MiB blocks; each loop keeps up to 8 free
    ones for the next body (wc_blockpool_t) and frees those left unused for
    two date-timer ticks, and every block is a mapping of its own (main.c
    fixes malloc's mmap threshold), so the memory of a burst of uploads goes
    back to the kernel once they are over (before: the pool kept its 8
    blocks for good, and freed blocks stayed in malloc's heap). The counts
    of the burst and of an upload after the idle time are checked too."""
    if w.SANITIZED:  # freed memory waits in the sanitizer's quarantine
        return
    data = ZEN * 12000  # 10.3 MB: about 10 blocks each
    with w.Server({"event_loops": 1, "workers": 2}) as s:
        base = rss_kib(s.proc.pid)
        errs = []

        def upload(mode):
            try:
                r = request(s.port, "POST", count_target(["is"], mode=mode), data, timeout=60 * w.SLOW)
                check_counts(r, {"is": 120000}, len(data), "burst, %s" % mode)
            except Exception as e:  # noqa: BLE001 (reported below)
                errs.append(e)

        peak = [base]
        sampling = threading.Event()

        def sample():  # the peak during the burst (idle blocks may go while it runs)
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_kib(s.proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for _ in range(2):
                th = [threading.Thread(target=upload, args=(m,)) for m in ("parallel", "auto", "sequential",
                                                                            "parallel", "auto", "parallel")]
                [t.start() for t in th]
                [t.join() for t in th]
        finally:
            sampling.set()
            sampler.join()
        assert not errs, errs
        assert peak[0] > base + 5000, (base, peak[0])  # the burst filled the pool
        deadline = time.time() + 10
        while rss_kib(s.proc.pid) > base + 4000 and time.time() < deadline:
            time.sleep(0.2)
        idle = rss_kib(s.proc.pid)
        w.log("  RSS %d KiB at start, %d KiB at most during 12 uploads of 10.3 MB, %d KiB when idle"
              % (base, peak[0], idle))
        assert idle < base + 4000, (base, peak[0], idle)
        upload("parallel")  # the pool fills again
        assert not errs, errs


def test_many_and_long_needles():
    """A request's first 4 needles and their first 64 bytes live inside the
    request (no allocation); more needles, longer ones, and the move of the
    spec out of the fast JSON path's parse all give the reference counts:
    small JSON and form bodies (parsed on the event loop, cJSON's nodes in a
    per-thread arena) and a 300 KB JSON body (the fast path)."""
    rng = random.Random(SEED + 12)
    J = [("Content-Type", "application/json")]
    F = [("Content-Type", "application/x-www-form-urlencoded")]
    long1, long2 = "L" * 70, "caf\u00e9" * 9
    vocab = ["is", "it", "caf\u00e9", long1, long2, "a\"b", "x", "y", "z", "\U0001F600", "back\\slash"]
    for size in (200, 300000):
        words, n = [], 0
        while n < size:
            words.append(rng.choice(vocab))
            n += len(words[-1]) + 1
        text = " ".join(words)
        for k in (1, 3, 4, 5, 8, 11):
            needles = vocab[:k] if k != 11 else list(reversed(vocab))
            exp = ref_count(text.encode(), needles)
            body = json.dumps({"text": text, "needles": needles}).encode()
            r = request(port(), "POST", "/count", body, J)
            check_counts(r, exp, len(text.encode()), "json, %d bytes, %d needles" % (len(body), k))
            if size < 1000:
                form = urllib.parse.urlencode([("text", text)] + [("needle", x) for x in needles]).encode()
                r = request(port(), "POST", "/count", form, F)
                check_counts(r, exp, len(text.encode()), "form, %d needles" % k)


def test_needle_set_cache():
    """Each event loop keeps the needle sets of recent requests (4). A set in
    use is never evicted: a big raw body counted slowly with one set while
    small requests cycle through seven others (evicting and rebuilding) still
    gets its exact count; options are part of the key."""
    with w.Server({"event_loops": 1, "parallel": {"min_bytes": 65536}}) as s:
        big = ZEN * 3000  # 2.6 MB: several blocks in the pool
        with Conn(s.port, timeout=60 * w.SLOW) as slow:
            req = build_request("POST", count_target(["is", "better"]), big)
            slow.send(req[: len(req) // 2])
            for i in range(28):
                needles = [["is"], ["better"], ["is", "better"], ["never"], ["Zen"], ["is", "IS"], ["a"]][i % 7]
                ic = i % 2 == 1
                opts = {"ignore_case": "true"} if ic else {}
                r = request(s.port, "POST", count_target(needles, **opts), ZEN)
                check_counts(r, ref_count(ZEN, needles, ignore_case=ic), len(ZEN), "small %d" % i)
            slow.send(req[len(req) // 2:])
            r = slow.read_response()
            check_counts(r, {"is": 30000, "better": 24000}, len(big), "the big body")
        for needles in (["is"], ["is", "better"]):
            r = request(s.port, "POST", count_target(needles), ZEN)
            check_counts(r, ref_count(ZEN, needles), len(ZEN), "after")


def test_words_split_at_block_boundaries():
    # a needle split across the read that fills a block (the default
    # parallel.min_bytes is 1 MiB; 64 KiB is a common read size): every
    # offset of " is " around the boundary, each mode, Content-Length and chunked
    failures = []
    for cfg, bounds in [(None, [1 << 16, 1 << 20]), ({"parallel": {"min_bytes": 65536}}, [1 << 16, 1 << 17])]:
        with w.Server(cfg) as s:
            for B in bounds:
                for off in range(-3, 2):
                    body = b"x" * (B - 2 + off) + b" is " + b"y" * 100 + b" is"
                    exp = ref_count(body, ["is"])
                    assert exp == {"is": 2}
                    for mode in ["auto", "sequential", "parallel"]:
                        for chunked in (False, True):
                            r = _send_split(s.port, count_target(["is"], mode=mode), body, [B], chunked)
                            try:
                                check_counts(r, exp, len(body), "min_bytes %s: ' is ' at %d%+d, read boundary "
                                             "at %d, mode=%s%s" % (cfg and 65536, B, off, B, mode,
                                                                  " chunked" if chunked else ""))
                            except AssertionError as e:
                                failures.append(str(e))
    assert not failures, "%d cases wrong:\n  " % len(failures) + "\n  ".join(failures)


# ---------------------------------------------------------------- big bodies

def test_big_bodies_all_modes():
    n = 24000
    big = ZEN * n                          # 20,592,000 bytes
    assert len(big) > 20 * 10**6
    rng = random.Random(SEED + 1)
    for mode in ["auto", "sequential", "parallel"]:
        with Conn(port(), timeout=60 * w.SLOW) as c:
            c.send(build_request("POST", count_target(["is", "idea.", "Zen"], mode=mode), big))
            r = c.read_response()
            check_response(r)
            check_counts(r, {"is": 10 * n, "idea.": 2 * n, "Zen": n}, len(big), "20 MB mode=" + mode)
    for mode in ["sequential", "parallel"]:
        with Conn(port(), timeout=60 * w.SLOW) as c:
            c.send(build_request("POST", count_target(["is"], mode=mode, boundary="word",
                                                      ignore_case="true"), big,
                                 chunked=[rng.randint(1, 1 << 20) for _ in range(64)]))
            r = c.read_response()
            check_response(r)
            check_counts(r, {"is": ref_count(ZEN, ["is"], True, "word")["is"] * n}, len(big),
                         "20 MB chunked mode=" + mode)
    # JSON and form bodies over 1 MiB
    text = (ZEN * 2000).decode()
    r = post_json(port(), {"text": text, "needle": "is", "mode": "parallel"})
    check_counts(r, {"is": 20000}, len(text))
    r = post_form(port(), [("text", text), ("needle", "is")])
    check_counts(r, {"is": 20000}, len(text))


def test_http_client_keepalive():
    conn = http.client.HTTPConnection(w.HOST, port(), timeout=15 * w.SLOW)
    try:
        for i in range(5):
            body = ZEN * (i + 1)
            conn.request("POST", "/count?needle=is", body=body,
                         headers={"Content-Type": "text/plain"})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, (resp.status, data)
            assert resp.getheader("Content-Type", "").startswith("application/json")
            assert json.loads(data) == {"count": 10 * (i + 1), "counts": {"is": 10 * (i + 1)},
                                        "bytes": 858 * (i + 1)}, data
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"status": "ok"}
        conn.request("POST", "/count", body=json.dumps({"text": "is", "needle": "is"}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["count"] == 1
    finally:
        conn.close()


def test_zz_shutdown_clean():
    SHARED.stop()


if __name__ == "__main__":
    w.run(globals(), deadline=170)
