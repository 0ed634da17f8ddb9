"""Load benchmark for `digitrec serve`: throughput and p50/p99 latency at 1, 8 and 32 concurrent clients.

It starts `digitrec serve` on 127.0.0.1 (a free port) unless --url names a server already
running on this machine (loopback only: it refuses any other host). Each level runs until
--requests requests are done or --seconds have passed, whichever comes first, after a warm-up.
The clients are asyncio tasks speaking HTTP/1.1 keep-alive over raw sockets (a lean client,
so the load generator takes as little of the CPU as possible from the server it measures).

Payloads: `pixels` (JSON with a 28×28 array, the model's own input: the API's cheapest path),
`png` (a 280×280 PNG of a drawn digit in a multipart upload, what the drawing page sends:
decoding and MNIST normalization included).

    python benchmarks/load_server.py                       # both payloads, 1 worker
    python benchmarks/load_server.py --workers 2 --payload pixels
Results: benchmarks/results/load_server[_<tag>].json and .md. Goal: >= 500 req/s with p99 <= 20 ms
at 8 clients. The figures depend on how busy the machine is: the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def payloads() -> dict[str, tuple[bytes, str]]:
    """name -> (body, content type)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (280, 280), 255)
    d = ImageDraw.Draw(im)
    d.line([(80, 60), (200, 60), (120, 230)], fill=0, width=23, joint="curve")   # a drawn 7
    buf = io.BytesIO()
    im.save(buf, "PNG")
    png = buf.getvalue()
    boundary = "digitrecbenchboundary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
                 f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    small = np.asarray(im.resize((28, 28), Image.BILINEAR))
    pixels = json.dumps({"pixels": (255 - small).tolist()}).encode()
    return {"pixels": (pixels, "application/json"),
            "png": (multipart, f"multipart/form-data; boundary={boundary}")}


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, ctype: str) -> int:
        if self.writer is None:
            await self.open()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def run_level(host, port, path, body, ctype, clients: int, n_requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds

    async def client():
        nonlocal issued, errors
        conn = Conn(host, port)
        try:
            while issued < n_requests and time.perf_counter() < deadline:
                issued += 1
                t = time.perf_counter()
                try:
                    status = await conn.post(path, body, ctype)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    await conn.close()
                    continue
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    errors += 1
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    return {"clients": clients, "completed": len(latencies), "errors": errors, "seconds": round(wall, 3),
            "throughput_rps": round(len(latencies) / wall, 1) if wall else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
            "max_ms": round(float(lat.max()), 2) if len(lat) else None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit("digitrec serve exited:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy in {timeout:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a server already running on this machine (default: start one)")
    ap.add_argument("--model", help="model for the server this script starts (default: the bundled one)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server it starts")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    ap.add_argument("--payload", choices=["pixels", "png", "both"], default="both")
    ap.add_argument("--requests", type=int, default=3000, help="requests per level at most")
    ap.add_argument("--seconds", type=float, default=15.0, help="seconds per level at most")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up requests before each payload")
    ap.add_argument("--tag", default="", help="suffix for the result files")
    args = ap.parse_args(argv)

    proc = None
    if args.url:
        url = args.url.rstrip("/")
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"refusing to load-test {host}: this benchmark runs against 127.0.0.1 only")
    else:
        port = free_port()
        cmd = [sys.executable, "-m", "digitrec", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers)]
        if args.model:
            cmd += ["--model", args.model]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd + ["--log-level", "warning"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 80
        model = json.loads(urllib.request.urlopen(url + "/healthz").read())["model"]
        levels = [int(x) for x in args.levels.split(",")]
        names = ["pixels", "png"] if args.payload == "both" else [args.payload]
        bodies = payloads()
        load_before = os.getloadavg()
        results = []
        for name in names:
            body, ctype = bodies[name]
            asyncio.run(run_level(host, port, "/v1/predict", body, ctype, 4, args.warmup, 30))
            for c in levels:
                r = asyncio.run(run_level(host, port, "/v1/predict", body, ctype, c, args.requests, args.seconds))
                r["payload"] = name
                results.append(r)
                print(f"{name:6s} clients {c:3d}: {r['throughput_rps']:8.1f} req/s  p50 {r['p50_ms']} ms  "
                      f"p99 {r['p99_ms']} ms  errors {r['errors']}  ({r['completed']} in {r['seconds']} s)",
                      flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    cmdline = "python benchmarks/load_server.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {"command": cmdline.strip(), "model": model, "workers": None if args.url else args.workers,
            "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    goal = next((r for r in results if r["clients"] == 8 and r["payload"] == names[0]), None)
    meta["goal_8_clients"] = ({"payload": goal["payload"], "met": goal["throughput_rps"] >= 500 and goal["p99_ms"] <= 20
                               and goal["errors"] == 0} if goal else None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "load_server" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [f"# Load benchmark: digitrec serve ({model})", "",
             f"Command: `{meta['command']}`  ", f"Server workers: {meta['workers']}; CPUs: {meta['cpus']}; "
             f"load average before/after: {meta['loadavg_before']} / {meta['loadavg_after']}; {meta['time']}", "",
             "| payload | clients | req/s | p50 ms | p99 ms | max ms | completed | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['payload']} | {r['clients']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['max_ms']} | {r['completed']} | {r['errors']} |")
    lines += ["", "Goal: >= 500 req/s with p99 <= 20 ms at 8 clients"
              + (f" ({goal['payload']} payload): {'met' if meta['goal_8_clients']['met'] else 'NOT met'}." if goal else "."),
              "The machine was shared with other jobs when measured unless the load average says otherwise."]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / (stem + '.json')} and .md")
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
