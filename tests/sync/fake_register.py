"""A minimal register that follows docs/protocol.md, on loopback, with injectable faults.

It is a peer implementation (not a mock): it verifies request signatures, the device checkpoint, the
entries against its stored tree and the consistency proof, stores entries in memory, and cosigns.
``faults`` is a list of actions consumed one per request: ``"503"``, ``"429"``, ``"drop"`` (commit,
then close the connection without answering), ``"reset-body"`` (commit, then send half an answer),
``"commit-503"`` (commit, then answer 503 with the cosigned checkpoint in the body, as a register
whose answer failed after its commit might), ``"stale-ack"``; ``""`` lets a request through.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.httpsig import ReplayCache, SignatureRejected, keyid_of, verify_request
from ledger.merkle import CompactRange, MemoryHashStore, leaf_hash, tree_hash, verify_consistency
from ledger.note import CosignatureSigner, Ed25519Verifier, add_signatures


class DeviceLog:
    def __init__(self, verifier: Ed25519Verifier) -> None:
        self.verifier = verifier
        self.entries: list[bytes] = []
        self.tree = MemoryHashStore()
        self.cosigned: str | None = None
        self.heartbeats: list[dict[str, Any]] = []


class FakeRegister(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cosigner: CosignatureSigner, devices: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cosigner = cosigner
        self.logs: dict[str, DeviceLog] = {}
        for vkey in devices:
            v = Ed25519Verifier.from_vkey(vkey)
            self.logs[keyid_of(v.name, v.key_hash)] = DeviceLog(v)
        self.replay = ReplayCache()
        self.lock = threading.Lock()
        self.faults: list[str] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.equivocate = False
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def log(self) -> DeviceLog:
        return next(iter(self.logs.values()))

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def lookup(self, keyid: str) -> Ed25519Verifier | None:
        dev = self.logs.get(keyid)
        return dev.verifier if dev else None

    # -- protocol ------------------------------------------------------------------------------------
    def push(self, dev: DeviceLog, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.equivocate:
            return 409, {"error": "equivocation", "detail": "test register says so"}
        try:
            cp, _ = open_checkpoint(body["checkpoint"], [dev.verifier])
        except LedgerError as exc:
            return 422, {"error": "unverifiable", "detail": str(exc)}
        start, old_size = int(body["start"]), int(body["old_size"])
        entries = [base64.b64decode(e) for e in body["entries"]]
        proof = [base64.b64decode(p) for p in body["proof"]]
        if cp.size != start + len(entries):
            return 422, {"error": "unverifiable", "detail": "checkpoint size != start + entries"}
        stored = len(dev.entries)
        if start > stored:
            return 409, {"error": "gap", "detail": f"have {stored}", "size": stored}
        for i, e in enumerate(entries[: max(0, stored - start)]):
            if dev.entries[start + i] != e:
                return 409, {"error": "equivocation", "detail": f"entry {start + i} differs"}
        if old_size > stored or old_size > cp.size:
            return 422, {"error": "unverifiable", "detail": "old_size beyond what is stored"}
        new = entries[max(0, stored - start) :]
        frontier = CompactRange.from_reader(stored, dev.tree) if cp.size > stored else None
        if frontier is not None:
            for e in new:
                frontier.append(leaf_hash(e))
            root = frontier.root()
        else:
            root = tree_hash(cp.size, dev.tree)
        if root != cp.root:
            return 409, {"error": "equivocation", "detail": "checkpoint root differs from stored tree"}
        try:
            verify_consistency(old_size, cp.size, tree_hash(old_size, dev.tree), cp.root, proof)
        except LedgerError as exc:
            return 422, {"error": "unverifiable", "detail": str(exc)}
        for e in new:
            dev.entries.append(e)
            dev.tree.append(leaf_hash(e))
        note = add_signatures(body["checkpoint"], self.cosigner)
        if dev.cosigned is None or open_checkpoint(dev.cosigned, [dev.verifier])[0].size <= cp.size:
            dev.cosigned = note
        if isinstance(body.get("heartbeat"), dict):
            dev.heartbeats.append(body["heartbeat"])
        return 200, {"size": len(dev.entries), "cosigned": note}


class _Handler(BaseHTTPRequestHandler):
    server: FakeRegister
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _send(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.server.requests.append((self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = srv.faults.pop(0) if srv.faults else None
        if fault == "503":
            return self._send(503, {"error": "unavailable", "detail": "injected"})
        if fault == "429":
            return self._send(429, {"error": "rate_limited", "detail": "injected"}, {"Retry-After": "0"})
        try:
            keyid = verify_request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                raw,
                srv.lookup,
                now=int(time.time()),
                replay=srv.replay,
            )
        except SignatureRejected as exc:
            return self._send(401, {"error": "unauthorized", "detail": exc.reason})
        dev = srv.logs[keyid]
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        with srv.lock:
            if self.command == "GET" and self.path == "/v1/state":
                status, data = 200, {"size": len(dev.entries), "cosigned": dev.cosigned}
            elif self.command == "POST" and self.path == "/v1/push":
                before = dev.cosigned
                status, data = srv.push(dev, json.loads(raw))
                if fault == "stale-ack" and before is not None:  # store, but answer with an older size
                    data = {"size": open_checkpoint(before, [dev.verifier])[0].size, "cosigned": before}
                if fault == "commit-503" and status == 200:  # stored and cosigned, but a 5xx answer
                    status, data = 503, {"error": "unavailable", "detail": "injected after commit", **data}
            elif self.command == "POST" and self.path == "/v1/heartbeat":
                dev.heartbeats.append(json.loads(raw)["heartbeat"])
                status, data = 200, {}
            else:
                status, data = 404, {"error": "not_found", "detail": self.path}
        if fault == "drop":
            srv.requests.append((self.command, self.path, -1))
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if fault == "reset-body":
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        return self._send(status, data)
