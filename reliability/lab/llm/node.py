"""A GPU node of the LLM-serving twin: `python -m reliability.lab.llm.node SPEC_JSON` (docs/twin.md 1).

Verifies both checkpoints before anything listens (a corrupt one refuses to serve: exit 1), then
serves the agent port at once and the api port after `load_s`. SIGTERM/SIGINT end it; after Xid 79
it keeps running, reporting the Xid, until it is killed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from reliability.errors import InputError
from reliability.lab.llm.blas import limit_blas_threads
from reliability.lab.llm.server import Node
from reliability.lab.llm.spec import spec_from_argv
from reliability.lab.llm.tinylm import CheckpointError, load_checkpoint
from reliability.lab.model import CheckpointError as PredictorCheckpointError
from reliability.lab.model import load_checkpoint as load_predictor
from reliability.lab.serving import new_event_loop


async def _main(node: Node) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.serve(stop)


def main() -> None:
    try:
        spec = spec_from_argv()
    except InputError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
    try:
        model = load_checkpoint(spec.checkpoint, spec.sha256)
        predictor = load_predictor(spec.predictor_checkpoint, spec.predictor_sha256)
    except (OSError, CheckpointError, PredictorCheckpointError) as exc:
        print(f"node {spec.id}: refusing to serve: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s node {spec.id} %(levelname)s %(message)s")
    limit_blas_threads(1)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_main(Node(spec, model, predictor)))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
