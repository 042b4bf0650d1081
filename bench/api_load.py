"""Load test of the REST API on loopback: start ``emolens serve``, hammer ``POST /v1/analyze``, report.

    .venv/bin/python bench/api_load.py                      # 8 clients for 30 s, a real 640x480 photo
    .venv/bin/python bench/api_load.py -c 4 -d 10 --threads 2 --workers 1 --json out.json
    .venv/bin/python bench/api_load.py -c 4 -d 20 --memory-cap-mb 1536 --uploads 4 --upload-parts 300

The server runs as a child process on 127.0.0.1 (a free port) and is stopped at the end; the load
is bounded by ``--duration`` and stops by itself. Prints requests/s, latency percentiles and the
count of every status code and client error.

Memory: the server runs under a cap (``--memory-cap-mb``, RLIMIT_DATA: its heap and private
mappings; 0 = none) and its resident memory (VmRSS of the server and its children) is sampled every
0.1 s: idle after startup, peak under load, and after the load. ``--uploads N`` adds N clients that
send campaign uploads of ``--upload-parts`` parts of 1 MB each (streamed, never built in the
client's memory) during the image load, half of them without the API key (the server has one: 401
before the body is read), half with it (each part streamed to disk by the server, the manifest then
refused, so no job runs). A server that holds uploads in memory passes the cap and fails (errors,
or the process dies); one that streams stays flat.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO_CANDIDATES = ("face_recognition_two_people.jpg", "dlib_2008_002506.jpg", "fer_justin.jpg")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_image(path: Path | None, size: tuple[int, int] = (640, 480)) -> tuple[bytes, str]:
    """JPEG bytes of ``size``: the given photo, a real shared photo, or a generated picture."""
    shared = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data" / "media" / "photos"
    candidates = [path] if path else [shared / n for n in PHOTO_CANDIDATES]
    source = next((p for p in candidates if p and p.is_file()), None)
    if source is not None:
        img = Image.open(source).convert("RGB")
        w, h = img.size  # centre-crop to the target aspect ratio, then resize
        target = size[0] / size[1]
        if w / h > target:
            cw = int(h * target)
            img = img.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
        else:
            ch = int(w / target)
            img = img.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
        img = img.resize(size, Image.Resampling.BILINEAR)
        name = source.name
    else:
        yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
        arr = np.stack([xx * 255 // size[0], yy * 255 // size[1], (xx + yy) % 256], axis=-1).astype(np.uint8)
        img = Image.fromarray(arr)
        name = "generated"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), name


BENCH_KEY = "bench-key"
PART_BYTES = 1 << 20


def start_server(port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "emolens", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(args.workers), "--log-level", "warning"]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOLENS_API_KEY")}
    if args.uploads:
        env["EMOLENS_API_KEY"] = BENCH_KEY
        env["EMOLENS_JOBS_DIR"] = str(args.jobs_dir)
    cap = args.memory_cap_mb * 1024 * 1024

    def limit() -> None:  # in the child, before exec: the server and its workers live under the cap
        if cap > 0:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    return subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=limit)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (VmRSS from /proc; 0 once gone)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out + [g for c in out for g in _children(c)]


class RssSampler:
    """Samples the server's resident memory every ``every_s`` in a thread; ``peak`` and ``last``."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        self.pid, self.every_s = pid, every_s
        self.peak = self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.last = rss_bytes(self.pid)
            self.peak = max(self.peak, self.last)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def upload_body(parts: int, boundary: str) -> Any:
    """A campaign upload, generated part by part: a manifest naming a missing file, then ``parts``
    parts of 1 MB (the server streams them to disk, then refuses the manifest: no job runs)."""
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="c.yaml"\r\n\r\n'
           "ads: [{name: A, duration_s: 5}]\nrecordings: [{viewer: v, ad: A, recording: missing.mp4}]\n\r\n").encode()
    block = b"\x00" * PART_BYTES
    for i in range(parts):
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="r/{i}.bin"\r\n'
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        yield block
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def upload_loop(base: str, parts: int, with_key: bool, deadline: float, rec: Recorder) -> None:
    boundary = "benchBOUNDARY7d1e"
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    if with_key:
        headers["X-API-Key"] = BENCH_KEY
    with httpx.Client(base_url=base, timeout=120) as client:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                r = client.post("/v1/campaigns", content=upload_body(parts, boundary), headers=headers)
                outcome = f"upload {r.status_code}"
            except httpx.HTTPError as e:
                outcome = f"upload {type(e).__name__}"
            rec.add(time.perf_counter() - t0, outcome, None)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode} before it was ready")
        try:
            r = httpx.get(base + "/healthz", timeout=2)
            if r.status_code == 200:
                return dict(r.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Recorder:
    """Latencies and outcomes from every client thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.faces: Counter[int] = Counter()

    def add(self, latency: float, outcome: str, faces: int | None) -> None:
        with self.lock:
            self.latencies.append(latency)
            self.statuses[outcome] += 1
            if faces is not None:
                self.faces[faces] += 1


def client_loop(base: str, image: bytes, deadline: float, rec: Recorder, key: str | None = None) -> None:
    with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key} if key else {}) as client:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            faces = None
            try:
                r = client.post("/v1/analyze", files={"file": ("bench.jpg", image, "image/jpeg")})
                outcome = str(r.status_code)
                if r.status_code == 200:
                    faces = len(r.json()["faces"])
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            rec.add(time.perf_counter() - t0, outcome, faces)


def run_load(base: str, image: bytes, concurrency: int, duration: float, uploads: int = 0,
             parts: int = 0) -> tuple[Recorder, Recorder, float]:
    rec, up = Recorder(), Recorder()
    start = time.monotonic()
    deadline = start + duration
    key = BENCH_KEY if uploads else None
    threads = [
        threading.Thread(target=client_loop, args=(base, image, deadline, rec, key), daemon=True)
        for _ in range(concurrency)
    ]
    threads += [threading.Thread(target=upload_loop, args=(base, parts, i % 2 == 1, deadline, up), daemon=True)
                for i in range(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rec, up, time.monotonic() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(rec: Recorder, elapsed: float, args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    lat_ms = [v * 1000 for v in rec.latencies]
    ok = rec.statuses.get("200", 0)
    out = {
        "model": info.get("model"),
        "image": args.image_name,
        "image_bytes": args.image_bytes,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "threads": args.threads,
        "duration_s": round(elapsed, 2),
        "requests": len(lat_ms),
        "ok": ok,
        "errors": len(lat_ms) - ok,
        "requests_per_s": round(len(lat_ms) / elapsed, 2) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(lat_ms, 50), 1),
            "p90": round(percentile(lat_ms, 90), 1),
            "p99": round(percentile(lat_ms, 99), 1),
            "max": round(max(lat_ms), 1) if lat_ms else None,
            "mean": round(statistics.fmean(lat_ms), 1) if lat_ms else None,
        },
        "statuses": dict(rec.statuses),
        "faces_per_response": {str(k): v for k, v in sorted(rec.faces.items())},
    }
    print(f"model {out['model']}, image {out['image']} ({out['image_bytes']} bytes, 640x480)")
    print(f"{args.concurrency} clients, {out['duration_s']} s, workers={args.workers} threads={args.threads}")
    print(f"requests {out['requests']}  ok {ok}  errors {out['errors']}  ->  {out['requests_per_s']} req/s")
    lat = out["latency_ms"]
    print(f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
    print(f"statuses {out['statuses']}  faces per response {out['faces_per_response']}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("-d", "--duration", type=float, default=30.0, help="seconds of load (default 30)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load first (default 2)")
    p.add_argument("--image", type=Path, help="photo to send (resized to 640x480)")
    p.add_argument("--model", help="model for the server (default: the shipped default)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads per model on the server")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--memory-cap-mb", type=int, default=2048, help="server memory cap, RLIMIT_DATA (0: none)")
    p.add_argument("--uploads", type=int, default=0, help="clients sending 1-MB-part campaign uploads meanwhile")
    p.add_argument("--upload-parts", type=int, default=200, help="parts per campaign upload (1 MB each)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds idle after the load before the last RSS")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.duration > 3600:
        p.error("need --concurrency >= 1 and 0 < --duration <= 3600")
    image, args.image_name = test_image(args.image)
    args.image_bytes = len(image)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="emolens-load-jobs-") as jobs_dir:
        args.jobs_dir = Path(jobs_dir)
        proc = start_server(port, args)
        try:
            info = wait_ready(base, proc, args.startup_timeout)
            idle = rss_bytes(proc.pid)
            if args.warmup > 0:
                run_load(base, image, args.concurrency, args.warmup)
            with RssSampler(proc.pid) as sampler:
                rec, up, elapsed = run_load(base, image, args.concurrency, args.duration, args.uploads,
                                            args.upload_parts)
            time.sleep(args.settle)
            after = rss_bytes(proc.pid)
            alive = proc.poll() is None
        finally:
            stop_server(proc)
    out = report(rec, elapsed, args, info)
    mb = 1024 * 1024
    out["memory"] = {"cap_mb": args.memory_cap_mb, "idle_rss_mb": round(idle / mb, 1),
                     "peak_rss_mb": round(sampler.peak / mb, 1), "after_rss_mb": round(after / mb, 1),
                     "server_alive": alive}
    out["uploads"] = {"clients": args.uploads, "parts": args.upload_parts, "sent": len(up.latencies),
                      "statuses": dict(up.statuses)}
    m = out["memory"]
    print(f"server RSS (cap {args.memory_cap_mb} MB): idle {m['idle_rss_mb']} MB, peak under load "
          f"{m['peak_rss_mb']} MB, {args.settle:g} s after {m['after_rss_mb']} MB; alive at the end: {alive}")
    if args.uploads:
        print(f"campaign uploads of {args.upload_parts} x 1 MB: {len(up.latencies)} sent, {dict(up.statuses)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if out["errors"] == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
