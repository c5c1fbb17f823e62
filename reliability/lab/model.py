"""The model every GPU node serves: a seeded numpy MLP stored as a checkpoint with a SHA-256.

Pure functions; the node loads and verifies the checkpoint at start, the canary prober uses the same
weights to know the right answers.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reliability.files import write_atomic
from reliability.lab.config import PredictorConfig


class CheckpointError(Exception):
    pass


@dataclass(frozen=True)
class Mlp:
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray

    @property
    def features(self) -> int:
        return int(self.w1.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3))

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        h = np.maximum(h @ self.w2 + self.b2, 0.0)
        return np.asarray(h @ self.w3 + self.b3)


def init_weights(cfg: PredictorConfig) -> Mlp:
    rng = np.random.default_rng(cfg.seed)

    def layer(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        w = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in, n_out)).astype(np.float32)
        return w, rng.normal(0.0, 0.1, size=n_out).astype(np.float32)

    w1, b1 = layer(cfg.features, cfg.hidden)
    w2, b2 = layer(cfg.hidden, cfg.hidden)
    w3, b3 = layer(cfg.hidden, cfg.outputs)
    return Mlp(w1, b1, w2, b2, w3, b3)


def write_checkpoint(path: Path, cfg: PredictorConfig) -> str:
    """Write the weights (npz) atomically; returns the SHA-256 the nodes check before serving."""
    buf = io.BytesIO()
    m = init_weights(cfg)
    np.savez(buf, w1=m.w1, b1=m.b1, w2=m.w2, b2=m.b2, w3=m.w3, b3=m.b3)
    data = buf.getvalue()
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: Path, sha256: str) -> Mlp:
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: sha256 {actual[:12]}..., expected {sha256[:12]}..."
        )
    with np.load(io.BytesIO(data)) as z:
        return Mlp(*(np.asarray(z[k]) for k in ("w1", "b1", "w2", "b2", "w3", "b3")))


def canary_inputs(features: int, count: int = 16, seed: int = 1234) -> np.ndarray:
    """Fixed inputs whose answers the canary prober knows."""
    return np.random.default_rng(seed).uniform(-1, 1, size=(count, features)).astype(np.float32)


def outputs_match(expected: np.ndarray, got: object) -> bool:
    """A NaN, a wrong shape or a wrong value is a wrong answer."""
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if arr.shape != expected.shape or not np.all(np.isfinite(arr)):
        return False
    return bool(np.allclose(arr, expected, rtol=1e-3, atol=1e-4))
