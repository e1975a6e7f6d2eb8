"""Latency of the status page and the JSON API with 100,000 messages in the database.

Serves the real app with waitress on loopback and drives it with a few client threads (http.client,
bounded request counts). Goal: status page p99 under 100 ms.

    .venv/bin/python benchmarks/bench_web.py [--messages 100000] [--clients 4] [--requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import re
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import describe as machine

from smsgate.config import config_from_dict
from smsgate.queue import Store
from smsgate.queue.clock import ts
from smsgate.web import create_app
from smsgate.web.serve import WebServer

PASSWORD = "benchmark password"




def numbers(n: int) -> list[str]:
    """Fictional NANP numbers (555-01xx) across area codes: well-formed, never a real phone."""
    return [f"+1{200 + i // 100:03d}55501{i % 100:02d}" for i in range(n)]


def populate(path: Path, messages: int, inbound: int) -> None:
    now = datetime.now(UTC)
    with Store.open(path, default_region="US") as store:
        m1 = store.modems.upsert("front-desk", state="ready", signal_dbm=-71, signal_bars=4, registration="home",
                                 operator="Simnet", msisdn="+15555550100", storage_used=3, storage_total=30)
        m2 = store.modems.upsert("back-office", state="ready", signal_dbm=-85, signal_bars=3, registration="home",
                                 operator="Simnet", msisdn="+15555550199", storage_used=0, storage_total=30)
        people = numbers(2000)
        texts = [f"Reminder: your appointment on day {d} at 10:{d:02d}. Reply YES to confirm." for d in range(30)]
        store.outbox.enqueue_many(
            ({"to": random.choice(people), "text": random.choice(texts)} for _ in range(messages)), campaign="bench"
        )
        store.accounts.add_user("bench", PASSWORD, "admin", actor="bench")
    conn = sqlite3.connect(path)
    rng = random.Random(7)
    updates = []
    for mid in range(1, messages + 1):
        created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        r = rng.random()
        state = "delivered" if r < 0.90 else "failed" if r < 0.95 else "undeliverable" if r < 0.97 else "queued"
        modem = m1 if rng.random() < 0.6 else m2
        done = created + timedelta(seconds=rng.uniform(5, 120))
        updates.append(
            (
                state,
                ts(created),
                None if state == "queued" else modem,
                None if state in ("queued", "failed") else ts(done),
                None if state == "queued" else ts(done),
                "+CMS ERROR: 38 network out of order" if state == "failed" else None,
                mid,
            )
        )
    conn.executemany(
        "UPDATE messages SET state = ?, created_at = ?, modem_id = ?, submitted_at = ?,"
        " finished_at = ? , last_error = ? WHERE id = ?",
        updates,
    )
    conn.execute("UPDATE contacts SET last_modem_id = NULL")
    rows = []
    for i in range(inbound):
        at = ts(now - timedelta(seconds=rng.uniform(0, 30 * 86400)))
        rows.append((f"bench-{i}", m1 if i % 3 else m2, rng.choice(people), "YES thanks", at))
    conn.executemany("INSERT INTO inbound (dedupe_key, modem_id, sender, body, received_at) VALUES (?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


class Client:
    """One keep-alive HTTP connection with the session cookie of a logged-in user."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        h = {**(headers or {}), **({"Cookie": self.cookie} if self.cookie else {})}
        self.conn.request(method, path, body=body, headers=h)
        response = self.conn.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, data

    def login(self) -> None:
        _, page = self.request("GET", "/login")
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
        form = f"username=bench&password={PASSWORD.replace(' ', '+')}&csrf_token={csrf}".encode()
        status, _ = self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 302, status


def run(name: str, clients: list[Client], per_client: int, call: Callable[[Client, int], int]) -> None:
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def worker(c: Client, k: int) -> None:
        mine = []
        for i in range(per_client):
            t0 = time.perf_counter()
            status = call(c, k * per_client + i)
            mine.append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                with lock:
                    errors.append(status)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c, k)) for k, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"{name:34s} n={len(latencies):4d} clients={len(clients)}  p50 {q[49]:6.1f} ms  p99 {q[98]:6.1f} ms"
        f"  max {max(latencies):6.1f} ms  {len(latencies) / elapsed:6.1f} req/s"
        + (f"  ERRORS {len(errors)} (e.g. {errors[0]})" if errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--inbound", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint (split over clients)")
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" notes under load
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        populate(db, args.messages, args.inbound)
        print(
            f"database: {args.messages} messages, {args.inbound} inbound, {db.stat().st_size / 1e6:.1f} MB"
            f" (built in {time.perf_counter() - t0:.1f} s)"
        )
        config = config_from_dict({"database": str(db),
                                   "clinic": {"region": "US", "timezone": "America/New_York"},
                                   "web": {"api_sends_per_minute": 0}})
        app = create_app(config)
        with Store.open(db) as store:
            _, token = store.accounts.create_token("bench", "admin", actor="bench")
            # A fresh daemon heartbeat, so /api/v1/health answers "ok" as it would in production.
            store.set_status("daemon", {"running": True, "pid": os.getpid()})
            sample_ids = [r["id"] for r in store.query("SELECT id FROM messages ORDER BY random() LIMIT 500")]
        auth = {"Authorization": f"Bearer {token}"}
        server = WebServer(app, "127.0.0.1", 0, threads=max(4, args.clients))
        thread = server.start_thread()
        try:
            clients = [Client(server.port) for _ in range(args.clients)]
            for c in clients:
                c.login()
            per = max(args.requests // args.clients, 1)
            run(
                "GET /status (1 client)",
                clients[:1],
                min(per * 2, args.requests),
                lambda c, i: c.request("GET", "/status")[0],
            )
            run("GET /status", clients, per, lambda c, i: c.request("GET", "/status")[0])
            run("GET /inbox", clients, per, lambda c, i: c.request("GET", "/inbox")[0])
            run("GET /outbox?state=failed", clients, per, lambda c, i: c.request("GET", "/outbox?state=failed")[0])
            run("GET /reports", clients, max(per // 4, 5), lambda c, i: c.request("GET", "/reports")[0])
            run("GET /api/v1/health", clients, per, lambda c, i: c.request("GET", "/api/v1/health")[0])
            run("GET /api/v1/modems", clients, per, lambda c, i: c.request("GET", "/api/v1/modems", None, auth)[0])
            run(
                "GET /api/v1/messages/<id>",
                clients,
                per,
                lambda c, i: c.request("GET", f"/api/v1/messages/{sample_ids[i % len(sample_ids)]}", None, auth)[0],
            )
            run(
                "POST /api/v1/messages",
                clients,
                per,
                lambda c, i: c.request(
                    "POST",
                    "/api/v1/messages",
                    json.dumps({"to": "+15555550101", "text": f"bench {i}", "idempotency_key": f"bench-{i}"}).encode(),
                    {**auth, "Content-Type": "application/json"},
                )[0],
            )
            run("GET /metrics", clients, max(per // 2, 5), lambda c, i: c.request("GET", "/metrics", None, auth)[0])
        finally:
            server.close()
            thread.join(10)
        # The same page with the shared status snapshot switched off: every request scans the queue.
        config.web.status_cache_seconds = 0.0
        server = WebServer(create_app(config), "127.0.0.1", 0, threads=max(4, args.clients))
        thread = server.start_thread()
        try:
            clients = [Client(server.port) for _ in range(args.clients)]
            for c in clients:
                c.login()
            per = max(args.requests // args.clients, 1)
            run("GET /status (no cache, 1 client)", clients[:1], per, lambda c, i: c.request("GET", "/status")[0])
            run("GET /status (no cache)", clients, per, lambda c, i: c.request("GET", "/status")[0])
        finally:
            server.close()
            thread.join(10)


if __name__ == "__main__":
    main()
