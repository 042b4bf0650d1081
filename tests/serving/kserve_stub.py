"""A stand-in for Triton's HTTP/REST endpoint (the KServe v2 protocol with Triton's model-config and binary
tensor extensions) serving an ``emolens export-triton`` repository with ONNX Runtime, for client tests.

Routes: ``GET /v2/health/ready``, ``GET /v2/models/NAME``, ``GET /v2/models/NAME/config``,
``POST /v2/models/NAME/infer`` (JSON ``data`` or binary tensors: ``Inference-Header-Content-Length``).
Unknown models and malformed requests get Triton's ``{"error": ...}`` with status 400. Every infer
request's batch size is recorded in ``StubTriton.batches``; requests beyond ``max_batch_size`` are refused.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from google.protobuf import json_format

from emolens.serving.triton_repo import read_config

_NUMPY = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}
_ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?(/config|/infer|/ready)?$")


class StubTriton:
    """The models of a repository folder, loaded with ONNX Runtime."""

    def __init__(self, repo: Path) -> None:
        self.configs = {p.name: read_config(p / "config.pbtxt") for p in sorted(repo.iterdir())}
        self.sessions = {n: ort.InferenceSession(str(repo / n / "1" / "model.onnx"),
                                                 providers=["CPUExecutionProvider"]) for n in self.configs}
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def config_json(self, name: str) -> dict[str, Any]:
        body = json_format.MessageToDict(self.configs[name], preserving_proto_field_name=True)
        for tensor in [*body.get("input", []), *body.get("output", [])]:  # Triton prints int64 dims as numbers
            tensor["dims"] = [int(d) for d in tensor.get("dims", [])]
        return body

    def metadata(self, name: str) -> dict[str, Any]:
        cfg = self.configs[name]

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": _wire(t.data_type), "shape": [-1, *t.dims]} for t in items]

        return {"name": name, "versions": ["1"], "platform": cfg.platform,
                "inputs": tensors(cfg.input), "outputs": tensors(cfg.output)}

    def infer(self, name: str, header: dict[str, Any], binary: bytes) -> tuple[dict[str, Any], bytes]:
        feeds, offset = {}, 0
        for t in header["inputs"]:
            dtype, shape = _NUMPY[t["datatype"]], [int(d) for d in t["shape"]]
            size = (t.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                arr = np.frombuffer(binary[offset : offset + size], dtype=dtype).reshape(shape)
                offset += size
            else:
                arr = np.asarray(t["data"], dtype=dtype).reshape(shape)
            feeds[t["name"]] = arr
        batch = len(next(iter(feeds.values())))
        if batch > self.configs[name].max_batch_size:
            raise ValueError(f"inference request batch-size must be <= {self.configs[name].max_batch_size}")
        with self.lock:
            self.batches.append(batch)
        wanted = header.get("outputs") or [{"name": o.name} for o in self.configs[name].output]
        values = self.sessions[name].run([o["name"] for o in wanted], feeds)
        outputs, blobs = [], b""
        for o, v in zip(wanted, values, strict=True):
            entry: dict[str, Any] = {"name": o["name"], "datatype": "FP32", "shape": list(v.shape)}
            if (o.get("parameters") or {}).get("binary_data"):
                raw = np.ascontiguousarray(v, dtype=np.float32).tobytes()
                entry["parameters"] = {"binary_data_size": len(raw)}
                blobs += raw
            else:
                entry["data"] = v.astype(np.float32).ravel().tolist()
            outputs.append(entry)
        return {"model_name": name, "model_version": "1", "outputs": outputs}, blobs


def _wire(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2 as mc

    return str(mc.DataType.Name(data_type)).removeprefix("TYPE_")


def _handler(stub: StubTriton) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, message: str) -> None:
            self._send(400, json.dumps({"error": message}).encode())

        def do_GET(self) -> None:
            if self.path == "/v2/health/ready":
                return self._send(200, b"")
            m = _ROUTE.match(self.path.split("?")[0])
            if m is None or m.group(1) not in stub.configs:
                return self._error(f"Request for unknown model: '{m.group(1) if m else self.path}'")
            if m.group(2) == "/config":
                return self._send(200, json.dumps(stub.config_json(m.group(1))).encode())
            if m.group(2) == "/ready":
                return self._send(200, b"")
            return self._send(200, json.dumps(stub.metadata(m.group(1))).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            m = _ROUTE.match(self.path.split("?")[0])
            if m is None or m.group(2) != "/infer" or m.group(1) not in stub.configs:
                return self._error(f"Request for unknown model or route: {self.path}")
            n = int(self.headers.get("Inference-Header-Content-Length", len(body)))
            try:
                header, blobs = stub.infer(m.group(1), json.loads(body[:n]), body[n:])
            except (KeyError, ValueError, TypeError) as e:
                return self._error(str(e))
            text = json.dumps(header).encode()
            if not blobs:
                return self._send(200, text)
            return self._send(200, text + blobs, {"Content-Type": "application/octet-stream",
                                                  "Inference-Header-Content-Length": str(len(text))})

    return Handler


@contextmanager
def serve(repo: Path) -> Iterator[tuple[str, StubTriton]]:
    """(``host:port``, the stub) while a server for ``repo`` runs on 127.0.0.1 in a thread."""
    stub = StubTriton(repo)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", stub
    finally:
        server.shutdown()
        server.server_close()
