"""Control protocol of a running simulator: JSON lines over a UNIX socket.

Each request is one JSON object on one line with an ``op``; each answer is one line, ``{"ok": true, ...}``
or ``{"ok": false, "error": "..."}``. Ops: ``status``, ``list``, ``text`` (from, to, text[, shuffle, concat_ref]),
``inbox`` (number), ``fault`` (modem, kind[, args]), ``report`` (number, outcome).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fault_table import FAULT_KINDS, FAULTS_BY_NAME, parse_fault_args

if TYPE_CHECKING:
    from .core import Simulator

log = logging.getLogger(__name__)


class ControlError(RuntimeError):
    """The simulator refused a control request, or is not running at that socket."""


def apply_fault(sim: Simulator, modem: str, kind: str, args: list[Any]) -> None:
    """Run one fault by name with string or typed arguments (the CLI passes strings)."""
    fault = FAULTS_BY_NAME.get(kind)
    if fault is None:
        raise ValueError(f"unknown fault {kind!r}; choose one of {', '.join(FAULT_KINDS)}")
    handle = sim.modem(modem).faults
    getattr(handle, fault.name)(**parse_fault_args(fault, list(args)))


def handle_request(sim: Simulator, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "status":
        return {"ok": True, "modems": len(sim.modems), "base_dir": str(sim.base_dir)}
    if op == "list":
        return {"ok": True, "modems": [
            {"name": m.name, "personality": m.personality, "msisdn": m.msisdn, "path": str(m.path),
             "tty": m.tty_path, "plugged": m.plugged, "registered": m.registered, "imei": m.imei,
             "imsi": m.imsi, "iccid": m.iccid, "counters": dataclasses.asdict(m.counters)}
            for m in sim.modems
        ]}
    if op == "text":
        ref = request.get("concat_ref")
        if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int)):
            raise ValueError(f"concat_ref must be a whole number from 0 to 255, not {ref!r}")
        parts = sim.handset(str(request["from"])).send(
            str(request["to"]), str(request["text"]), shuffle=bool(request.get("shuffle", False)), concat_ref=ref,
        )
        return {"ok": True, "parts": parts}
    if op == "inbox":
        handset = sim.handset(str(request["number"]))
        return {"ok": True, "texts": handset.received_texts(), "parts": [
            {"from": m.sender, "text": m.text, "concat": m.concat, "mr": m.mr,
             "srr": m.status_report_requested, "received_at": m.received_at.isoformat()}
            for m in handset.inbox
        ]}
    if op == "fault":
        apply_fault(sim, str(request["modem"]), str(request["kind"]), list(request.get("args", [])))
        return {"ok": True}
    if op == "report":
        sim.handset(str(request["number"])).set_report_outcome(str(request["outcome"]))
        return {"ok": True}
    raise ValueError(f"unknown op {op!r}; use status, list, text, inbox, fault or report")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        for raw in self.rfile:
            try:
                request = json.loads(raw)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                answer = handle_request(self.server.sim, request)
            except (ValueError, KeyError, LookupError, TypeError, RuntimeError) as exc:
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, sim: Simulator) -> None:
        self.sim = sim
        super().__init__(path, _Handler)


class ControlServer:
    """Serves the control protocol for one in-process ``Simulator``."""

    def __init__(self, sim: Simulator, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        self._server = _Server(str(self.path), sim)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, name="smsgate-sim-control",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        if self.path.exists():
            self.path.unlink()


class SimulatorClient:
    """Talks to a running simulator; what ``smsgate sim text|inbox|fault`` call."""

    def __init__(self, socket_path: Path | str, timeout: float = 10.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            try:
                s.connect(str(self.socket_path))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise ControlError(
                    f"no simulator is listening on {self.socket_path} (start one with `smsgate sim start`)"
                ) from exc
            s.sendall(json.dumps({"op": op, **params}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data:
            raise ControlError(f"simulator at {self.socket_path} closed the connection without answering")
        answer: dict[str, Any] = json.loads(data)
        if not answer.get("ok"):
            raise ControlError(str(answer.get("error", "request failed")))
        return answer

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def list_modems(self) -> list[dict[str, Any]]:
        return list(self.request("list")["modems"])

    def text(self, sender: str, to: str, text: str, *, shuffle: bool = False, concat_ref: int | None = None) -> int:
        params: dict[str, Any] = {"from": sender, "to": to, "text": text, "shuffle": shuffle}
        if concat_ref is not None:
            params["concat_ref"] = concat_ref
        return int(self.request("text", **params)["parts"])

    def inbox(self, number: str) -> dict[str, Any]:
        return self.request("inbox", number=number)

    def fault(self, modem: str, kind: str, *args: str) -> None:
        self.request("fault", modem=modem, kind=kind, args=list(args))

    def set_report_outcome(self, number: str, outcome: str) -> None:
        self.request("report", number=number, outcome=outcome)
