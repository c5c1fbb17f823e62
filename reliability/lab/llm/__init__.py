"""The lab's GPU node as a twin of a vLLM server with NVIDIA's DCGM exporter beside it (docs/twin.md 1).

One job per module: `tinylm` (the language model, its checkpoint and golden answers), `engine`
(continuous batching, pure), `metrics` (vLLM, HTTP and DCGM series under their real names), `openai`
and `oip` (the wire formats), `faults`, `spec`, `runner` (the engine loop), `server` (HTTP) and
`node` (the process: `python -m reliability.lab.llm.node SPEC_JSON`).
"""
