"""KServe Open Inference Protocol v2 (REST) for the node's predictive model (pure).

Request: `{"id"?, "inputs": [{"name", "shape": [N, F], "datatype": "FP32", "data": [...]}]}` (data flat
in row-major order, or nested); response: `{"model_name", "model_version", "id", "outputs": [{"name":
"output-0", "shape": [N, O], "datatype": "FP32", "data": [...]}]}`. Errors are `{"error": "..."}` with
KServe's status codes (400 invalid input, 404 unknown model, 503 not ready, 500 inference failed).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reliability.lab.model import Mlp

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}


class OipError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class InferInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    inputs: list[InferInput] = Field(min_length=1, max_length=1)
    parameters: dict[str, Any] | None = None


def parse_infer(raw: bytes, model: Mlp, max_batch: int) -> tuple[str, np.ndarray]:
    """(request id, inputs as an N x F array) or OipError(400)."""
    try:
        req = InferRequest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise OipError(400, f"Invalid infer request: {str(exc).splitlines()[0]}") from exc
    inp = req.inputs[0]
    dtype = DATATYPES.get(inp.datatype)
    if dtype is None:
        raise OipError(400, f"Unsupported datatype {inp.datatype}; use one of {', '.join(DATATYPES)}")
    try:
        x = np.asarray(inp.data, dtype=dtype).reshape(inp.shape).astype(np.float32)
    except (ValueError, TypeError) as exc:
        raise OipError(400, f"Input {inp.name}: data does not match shape {inp.shape}: {exc}") from exc
    if x.ndim != 2 or x.shape[1] != model.features or not 0 < x.shape[0] <= max_batch:
        raise OipError(
            400, f"Input {inp.name}: shape must be [1..{max_batch}, {model.features}], got {inp.shape}"
        )
    return req.id or str(uuid.uuid4()), x


def infer_response(name: str, version: str, request_id: str, y: np.ndarray) -> dict[str, Any]:
    return {
        "model_name": name,
        "model_version": version,
        "id": request_id,
        "parameters": None,
        "outputs": [
            {
                "name": "output-0",
                "shape": list(y.shape),
                "datatype": "FP32",
                "parameters": None,
                "data": [float(v) for v in y.ravel()],
            }
        ],
    }


def model_metadata(name: str, version: str, model: Mlp) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [version],
        "platform": "numpy",
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, model.features]}],
        "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1, int(model.w3.shape[1])]}],
    }
