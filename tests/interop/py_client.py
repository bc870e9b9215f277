#!/usr/bin/python3
"""Interop client: Debian's python3-websockets (10.4 in bookworm) against a
WebSocket echo endpoint. Run with /usr/bin/python3: that is the interpreter
the Debian package installs into.

Scenario (default): connect, check the negotiated subprotocol, send text and
binary messages (unicode, empty, a large one) one at a time and expect exact
echoes, then close with 4001 "bye" and report the close frame received.
--expect-status N: the handshake must be rejected with HTTP status N.
--expect-close CODE: send the --send texts, then wait for the server to
close with CODE; report its code and reason.

Prints one JSON line on stdout; exits 0 when everything matched, 1 on a
mismatch (the JSON has ok=false and error), 2 on bad arguments.
"""

import argparse
import asyncio
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

CLIENT = "python-websockets"


class Mismatch(Exception):
    """What the endpoint did differs from what the scenario expects."""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="ws:// URL of the echo endpoint")
    p.add_argument("--protocol", action="append", default=[], help="subprotocol to offer (repeatable)")
    p.add_argument("--expect-protocol", help='subprotocol the server must pick ("" for none)')
    p.add_argument("--header", action="append", default=[], help="extra handshake header K:V (repeatable)")
    p.add_argument("--expect-status", type=int, help="the handshake must be rejected with this HTTP status")
    p.add_argument("--expect-close", type=int, help="wait for a server-initiated close with this code")
    p.add_argument("--send", action="append", default=[], help="text to send before waiting (with --expect-close)")
    p.add_argument("--print-response-header", action="append", default=[], help="handshake response header to report")
    p.add_argument("--large-size", type=int, default=100 * 1024, help="size of the large messages (bytes)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole scenario")
    args = p.parse_args(argv)
    headers = []
    for h in args.header:
        k, sep, v = h.partition(":")
        if not sep or not k.strip():
            p.error(f"--header {h!r}: want K:V")
        headers.append((k.strip(), v.strip()))
    args.headers = headers
    return args


def messages(large_size):
    """The messages the default scenario sends, in order."""
    large_text = ("0123456789abcdef" * (large_size // 16 + 1))[:large_size]
    large_binary = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(large_size))
    return [
        "hello",
        "héllo wörld — κόσμε 😀 日本語",
        "",
        bytes(range(256)),
        b"",
        large_text,
        large_binary,
    ]


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return f"{kind} message of {len(m.encode() if isinstance(m, str) else m)} bytes"


def pick_headers(headers, names):
    return {n: headers.get(n) for n in names}


async def scenario(args, result):
    try:
        ws = await websockets.connect(
            args.url,
            subprotocols=args.protocol or None,
            extra_headers=args.headers,
            open_timeout=args.timeout,
            close_timeout=args.timeout,
            max_size=max(2**20, 2 * args.large_size),
        )
    except InvalidStatusCode as e:
        result["status"] = e.status_code
        result["response_headers"] = pick_headers(e.headers, args.print_response_header)
        if args.expect_status is None:
            raise Mismatch(f"handshake rejected with HTTP {e.status_code}, want 101")
        if e.status_code != args.expect_status:
            raise Mismatch(f"handshake rejected with HTTP {e.status_code}, want {args.expect_status}")
        return
    result["status"] = 101
    result["protocol"] = ws.subprotocol
    result["response_headers"] = pick_headers(ws.response_headers, args.print_response_header)
    try:
        if args.expect_status is not None:
            raise Mismatch(f"handshake succeeded with 101, want HTTP {args.expect_status}")
        if args.expect_protocol is not None and (ws.subprotocol or "") != args.expect_protocol:
            raise Mismatch(f"server picked subprotocol {json.dumps(ws.subprotocol)}, want {json.dumps(args.expect_protocol)}")
        if args.expect_close is not None:
            await wait_for_close(ws, args, result)
            return
        for m in messages(args.large_size):
            await ws.send(m)
            got = await ws.recv()
            if type(got) is not type(m) or got != m:
                raise Mismatch(f"{describe(m)}: echo differs: got {describe(got)}")
            result["echoed"] += 1
        await ws.close(code=4001, reason="bye")
        if ws.close_rcvd is None:
            raise Mismatch("no close frame received after closing with 4001")
        result["close"] = {"code": ws.close_rcvd.code, "reason": ws.close_rcvd.reason}
    finally:
        await ws.close()


async def wait_for_close(ws, args, result):
    for text in args.send:
        await ws.send(text)
    try:
        while True:
            m = await ws.recv()
            result["received"].append(m if isinstance(m, str) else f"<binary {len(m)} bytes>")
    except ConnectionClosed as e:
        if e.rcvd is None:
            raise Mismatch(f"connection ended without a close frame, want close {args.expect_close}")
        result["close"] = {"code": e.rcvd.code, "reason": e.rcvd.reason}
        if e.rcvd.code != args.expect_close:
            raise Mismatch(f"server closed with {e.rcvd.code} {json.dumps(e.rcvd.reason)}, want {args.expect_close}")


async def main(argv):
    args = parse_args(argv)
    result = {
        "ok": False,
        "client": CLIENT,
        "version": websockets.__version__,
        "url": args.url,
        "status": None,
        "protocol": None,
        "echoed": 0,
        "received": [],
        "close": None,
        "response_headers": {},
        "error": None,
    }
    try:
        await asyncio.wait_for(scenario(args, result), args.timeout)
        result["ok"] = True
    except Mismatch as e:
        result["error"] = str(e)
    except asyncio.TimeoutError:
        result["error"] = f"scenario timed out after {args.timeout}s"
    except Exception as e:  # any failure of the client is a finding: report it
        result["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(result, ensure_ascii=False, separators=(",", ":")), flush=True)
    if not result["ok"]:
        print(f"{CLIENT}: {result['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
