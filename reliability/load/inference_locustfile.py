"""A plain HTTP Locust user (run by Locust, never imported by the harness): `LoadRun(user=None)`
without a locustfile. It drives `reliability.load.stub_server` in the load generator's own tests and
its overhead benchmark (Locust's cost measured without the lab's); the LLM twin's users are in
`llm_locustfile`.

POST /v1/predict with {"inputs": [[floats]]}; any non-2xx answer or a network error is a failure.
Timeouts are short so that a partitioned region shows up as failed seconds, not as a stall.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant_throughput, task

from reliability.load.plugin import ReliabilityShape  # noqa: F401 - Locust picks the shape up from here

FEATURES = int(os.environ.get("RELIABILITY_FEATURES", "4"))


class InferenceUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("RELIABILITY_USER_RPS", "10")))
    network_timeout = float(os.environ.get("RELIABILITY_REQUEST_TIMEOUT_S", "5"))
    connection_timeout = 2.0

    @task
    def predict(self) -> None:
        body = {"inputs": [[round(random.uniform(-1, 1), 4) for _ in range(FEATURES)]]}
        self.client.post("/v1/predict", json=body, name="/v1/predict")
