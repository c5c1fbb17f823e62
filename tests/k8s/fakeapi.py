"""A fake Kubernetes API server on 127.0.0.1 for the Kubernetes-target tests (test support).

What is real: HTTP on a loopback port, spoken by the official `kubernetes` client and by
chaostoolkit-kubernetes through an ordinary kubeconfig file (`http://127.0.0.1:PORT`); the REST
paths, verbs and status codes of the API server for the resources below; label selectors
(`=`, `==`, `!=`, `in`, `notin`, exists, `!`), field selectors (`=`, `!=` on any dotted field, e.g.
`metadata.name`, `spec.nodeName`), `uid`, `resourceVersion` and `generation`; chunked watch
streams (`?watch=true`, replay from a resourceVersion, `timeoutSeconds`, 410 when history is gone);
JSON patches (RFC 6902, a failing `test` answers 422), JSON merge patches (RFC 7386), strategic
merge patches (as a merge patch that merges `containers`/`env`/`volumes` lists by `name`; custom
resources refuse them with 415, as the real server does); optimistic concurrency (a stale
`metadata.resourceVersion` in a PUT or patch answers 409); delete preconditions (`uid`,
`resourceVersion`: 409 on mismatch); the eviction subresource, answering 429 when a
PodDisruptionBudget (`minAvailable` / `maxUnavailable`, integers or percentages, counted over
Ready pods) forbids it; server-side `dryRun=All` (validated and answered, nothing stored);
SelfSubjectAccessReview.

What is faked, because no kube-apiserver can run on these machines: there is no scheduler, no
kubelet, no controllers (a Deployment creates no pods; an evicted pod is removed at once, with no
grace period and no replacement), no CNI (a NetworkPolicy is stored, not enforced), no RBAC and no
authentication (every request is allowed; a SelfSubjectAccessReview answers `allowed: true` unless
a test called `deny()`), no admission webhooks, no OpenAPI validation of bodies, no server-side
apply. Tests seed objects with `add()` and play the other actors (a controller, an admin) with
`update()`.

Every request is logged (`requests`: method, path, query, content type, parsed body, status) so
tests assert what the harness sent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from aiohttp import web

# (group, plural) -> (kind, namespaced, is custom resource)
RESOURCES: dict[tuple[str, str], tuple[str, bool, bool]] = {
    ("", "namespaces"): ("Namespace", False, False),
    ("", "nodes"): ("Node", False, False),
    ("", "pods"): ("Pod", True, False),
    ("apps", "deployments"): ("Deployment", True, False),
    ("networking.k8s.io", "networkpolicies"): ("NetworkPolicy", True, False),
    ("policy", "poddisruptionbudgets"): ("PodDisruptionBudget", True, False),
    ("serving.kserve.io", "inferenceservices"): ("InferenceService", True, True),
    ("serving.kserve.io", "llminferenceservices"): ("LLMInferenceService", True, True),
    ("authorization.k8s.io", "selfsubjectaccessreviews"): ("SelfSubjectAccessReview", False, False),
}
DEFAULT_VERSION = {
    "": "v1",
    "apps": "v1",
    "networking.k8s.io": "v1",
    "policy": "v1",
    "serving.kserve.io": "v1beta1",
    "authorization.k8s.io": "v1",
}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
HISTORY = 5000  # watch events kept for replay; older resourceVersions answer 410 Gone


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int = 0

    @property
    def dry_run(self) -> bool:
        if self.query.get("dryRun") == "All":
            return True
        opts = (self.body or {}).get("deleteOptions") if isinstance(self.body, dict) else None
        return bool(opts and "All" in (opts.get("dryRun") or []))

    @property
    def mutating(self) -> bool:
        """A request that could change the cluster (an access review only asks a question)."""
        return self.method in MUTATING and "selfsubjectaccessreviews" not in self.path


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }


# ---------------------------------------------------------------- selectors


def _split_top(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [p.strip() for p in out if p.strip()]


_SET = re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$")


def label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    reqs: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_top(selector or ""):
        m = _SET.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                reqs.append(lambda lb, k=key, v=vals: lb.get(k) in v)
            else:
                reqs.append(lambda lb, k=key, v=vals: lb.get(k) not in v)
        elif "!=" in part:
            k, v = (s.strip() for s in part.split("!=", 1))
            reqs.append(lambda lb, k=k, v=v: lb.get(k) != v)
        elif "=" in part:
            k, v = (s.strip() for s in part.replace("==", "=").split("=", 1))
            reqs.append(lambda lb, k=k, v=v: lb.get(k) == v)
        elif part.startswith("!"):
            reqs.append(lambda lb, k=part[1:].strip(): k not in lb)
        else:
            reqs.append(lambda lb, k=part: k in lb)
    return lambda labels: all(r(labels or {}) for r in reqs)


def _field_value(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return "false" if dotted == "spec.unschedulable" else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(selector: str) -> Callable[[dict[str, Any]], bool]:
    reqs: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_top(selector or ""):
        if "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(lambda o, k=k.strip(), v=v.strip(): _field_value(o, k) != v)
        else:
            k, v = part.replace("==", "=").split("=", 1)
            reqs.append(lambda o, k=k.strip(), v=v.strip(): _field_value(o, k) == v)
    return lambda obj: all(r(obj) for r in reqs)


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions) against labels; empty selects all."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr["key"], expr["operator"], set(expr.get("values") or [])
        ok = {
            "In": labels.get(key) in vals,
            "NotIn": labels.get(key) not in vals,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# ---------------------------------------------------------------- patches


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, list):
            if not t.isdigit() or int(t) >= len(cur):
                raise ApiError(422, "Invalid", f"path segment {t!r} not found")
            cur = cur[int(t)]
        elif isinstance(cur, dict) and t in cur:
            cur = cur[t]
        else:
            raise ApiError(422, "Invalid", f"path segment {t!r} not found")
    return cur


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, list):
        if not last.isdigit() or int(last) >= len(parent):
            raise ApiError(422, "Invalid", f"path {path} not found")
        return parent[int(last)]
    if not isinstance(parent, dict) or last not in parent:
        raise ApiError(422, "Invalid", f"path {path} not found")
    return parent[last]


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, "Invalid", f"index {last} out of range at {path}")
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise ApiError(422, "Invalid", f"cannot add at {path}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent, last = _parent(doc, tokens), tokens[-1]
    _get(doc, path)
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy; any failure (a `test` that does not hold, a missing path) -> 422."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            current = _get(doc, path)
            if current != op.get("value"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: testing value "
                    f"{path} failed: test failed",
                )
        elif kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        else:
            raise ApiError(422, "Invalid", f"unknown JSON patch op {kind!r}")
    return doc


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    """RFC 7386; `strategic` also merges lists of named items by name (containers, env, volumes)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif (
            strategic
            and key in ("containers", "env", "volumes", "initContainers")
            and isinstance(value, list)
            and isinstance(out.get(key), list)
        ):
            merged = copy.deepcopy(out[key])
            index = {item.get("name"): i for i, item in enumerate(merged) if isinstance(item, dict)}
            for item in value:
                name = item.get("name") if isinstance(item, dict) else None
                if name in index:
                    merged[index[name]] = merge_patch(merged[index[name]], item, True)
                else:
                    merged.append(copy.deepcopy(item))
            out[key] = merged
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


# ---------------------------------------------------------------- the server


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _budget(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)  # rounded up, as the disruption controller does
    return int(value)


@dataclass
class _Hold:
    method: str
    pattern: re.Pattern[str]
    released: threading.Event = field(default_factory=threading.Event)


class FakeKubeAPI:
    """Start with `with FakeKubeAPI() as api:`; `api.url`, `api.kubeconfig(path, ...)`."""

    def __init__(self, kube_system_uid: str | None = None) -> None:
        self.kube_system_uid = kube_system_uid or str(uuid.uuid4())
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {
            key: {} for key in RESOURCES
        }
        self._rv = 100
        self._history: list[tuple[int, tuple[str, str], str, dict[str, Any]]] = []
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._denied: set[tuple[str, str, str]] = set()
        self._holds: list[_Hold] = []
        self.requests: list[Logged] = []
        self.traffic: Any = None  # the Prometheus-side stand-in a test pairs with it (tests/k8s/traffic.py)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
        self._store[("", "namespaces")][("", "kube-system")]["metadata"]["uid"] = self.kube_system_uid

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeKubeAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                app = web.Application(client_max_size=16 * 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not ready.wait(10) or errors:
            raise RuntimeError(f"fake API server did not start: {errors}")

    def stop(self) -> None:
        for hold in self._holds:
            hold.released.set()
        if self._loop is not None and self._thread is not None:
            loop = self._loop

            def close_watchers() -> None:
                for q in list(self._watchers):
                    q.put_nowait(None)
                loop.call_later(0.05, loop.stop)

            loop.call_soon_threadsafe(close_watchers)
            self._thread.join(10)
            self._loop = None

    def kubeconfig(
        self,
        path: Path,
        context: str = "staging",
        others: dict[str, str] | None = None,
        current: str | None = None,
    ) -> Path:
        """Write a kubeconfig whose `context` points here; `others` maps more context names to
        servers (another fake, or an address nothing listens on)."""
        servers = {context: self.url, **(others or {})}
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": f"c-{n}", "cluster": {"server": s}} for n, s in servers.items()],
            "users": [{"name": "harness", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": n, "context": {"cluster": f"c-{n}", "user": "harness"}} for n in servers],
            "current-context": current or context,
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    # ------------------------------------------------------------ test helpers

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Seed an object (not logged), e.g. nodes and pods a cluster would already have."""
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        plural = self._plural_of(group, obj["kind"])
        with self._lock:
            ns = obj["metadata"].get("namespace", "") if RESOURCES[(group, plural)][1] else ""
            stored = self._prepare_new(copy.deepcopy(obj), (group, plural), ns)
            self._commit((group, plural), ns, stored, "ADDED")
            return copy.deepcopy(stored)

    def update(self, plural: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Another actor changes an object (a controller, an admin): `fn` edits it in place."""
        key = self._key_for_plural(plural)
        with self._lock:
            obj = self._store[key][(namespace, name)]
            fn(obj)
            self._commit(key, namespace, obj, "MODIFIED")

    def remove(self, plural: str, namespace: str, name: str) -> None:
        key = self._key_for_plural(plural)
        with self._lock:
            obj = self._store[key].pop((namespace, name))
            self._bump(obj)
            self._emit(key, "DELETED", obj)

    def get(self, plural: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        key = self._key_for_plural(plural)
        with self._lock:
            obj = self._store[key].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, plural: str) -> list[dict[str, Any]]:
        key = self._key_for_plural(plural)
        with self._lock:
            return [copy.deepcopy(o) for o in self._store[key].values()]

    def deny(self, verb: str, resource: str, namespace: str = "") -> None:
        """SelfSubjectAccessReviews for this verb/resource (and namespace, if given) answer denied."""
        self._denied.add((verb, resource, namespace))

    def hold(self, method: str, path_regex: str) -> threading.Event:
        """Matching requests wait (logged, unanswered) until the returned event is set."""
        hold = _Hold(method, re.compile(path_regex))
        self._holds.append(hold)
        return hold.released

    def mutations(self, include_dry_run: bool = False) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if r.mutating and (include_dry_run or not r.dry_run)]

    def wait_for(self, predicate: Callable[[Logged], bool], timeout: float = 30.0) -> Logged:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for r in self.requests:
                    if predicate(r):
                        return r
            time.sleep(0.02)
        raise TimeoutError("no such request reached the fake API server")

    # ------------------------------------------------------------ storage

    @staticmethod
    def _plural_of(group: str, kind: str) -> str:
        for (g, plural), (k, _, _) in RESOURCES.items():
            if g == group and k == kind:
                return plural
        raise KeyError(f"{group}/{kind} is not served by the fake")

    @staticmethod
    def _key_for_plural(plural: str) -> tuple[str, str]:
        for key in RESOURCES:
            if key[1] == plural:
                return key
        raise KeyError(plural)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)

    def _prepare_new(self, obj: dict[str, Any], key: tuple[str, str], ns: str) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        if RESOURCES[key][1]:
            meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        if key == ("", "pods"):
            # Admission adds the service-account token volume to every pod.
            spec = obj.setdefault("spec", {})
            spec.setdefault("volumes", []).append(
                {
                    "name": "kube-api-access",
                    "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
                }
            )
        if key == ("", "namespaces"):
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        return obj

    def _commit(self, key: tuple[str, str], ns: str, obj: dict[str, Any], kind: str) -> None:
        self._bump(obj)
        self._store[key][(ns, obj["metadata"]["name"])] = obj
        self._emit(key, kind, obj)

    def _emit(self, key: tuple[str, str], kind: str, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        self._history.append((self._rv, key, kind, snapshot))
        del self._history[:-HISTORY]
        loop = self._loop
        if loop is not None:
            for q in list(self._watchers):
                loop.call_soon_threadsafe(q.put_nowait, (self._rv, key, kind, snapshot))

    # ------------------------------------------------------------ HTTP

    @staticmethod
    def _route(path: str) -> tuple[tuple[str, str], str, str, str]:
        """Path -> (resource key, namespace, name, subresource)."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or (group, rest[0]) not in RESOURCES:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return (group, plural), ns, name, sub

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = {k: v[-1] for k, v in parse_qs(request.query_string).items()}
        entry = Logged(request.method, request.path, query, content_type, body)
        with self._lock:
            self.requests.append(entry)
        for hold in self._holds:
            if hold.method == request.method and hold.pattern.search(request.path):
                while not hold.released.is_set():
                    await asyncio.sleep(0.02)
        try:
            if request.path in ("/version", "/version/"):
                entry.status = 200
                return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"})
            key, ns, name, sub = self._route(request.path)
            if request.method == "GET" and not name and query.get("watch") in ("true", "1"):
                entry.status = 200
                return await self._watch(request, key, ns, query)
            status, payload = self._dispatch(request.method, key, ns, name, sub, query, content_type, body)
        except ApiError as err:
            entry.status = err.code
            return web.json_response(status_body(err.code, err.reason, err.message), status=err.code)
        entry.status = status
        return web.json_response(payload, status=status)

    def _dispatch(
        self,
        method: str,
        key: tuple[str, str],
        ns: str,
        name: str,
        sub: str,
        query: dict[str, str],
        content_type: str,
        body: Any,
    ) -> tuple[int, Any]:
        _, namespaced, custom = RESOURCES[key]
        dry = query.get("dryRun") == "All"
        if not namespaced and ns:
            raise ApiError(404, "NotFound", f"{key[1]} is not namespaced")
        with self._lock:
            store = self._store[key]
            if key == ("authorization.k8s.io", "selfsubjectaccessreviews"):
                if method != "POST":
                    raise ApiError(405, "MethodNotAllowed", "only create is allowed")
                return 201, self._review(body)
            if method == "GET" and not name:
                return 200, self._list(key, ns, query)
            if method == "POST" and not name:
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "body must be an object")
                obj_ns = ns if namespaced else ""
                if namespaced and (body.get("metadata") or {}).get("namespace", ns) != ns:
                    raise ApiError(400, "BadRequest", "the namespace of the object does not match the path")
                if (obj_ns, (body.get("metadata") or {}).get("name", "")) in store:
                    raise ApiError(
                        409, "AlreadyExists", f'{key[1]} "{body["metadata"]["name"]}" already exists'
                    )
                obj = self._prepare_new(copy.deepcopy(body), key, obj_ns)
                if dry:
                    obj["metadata"]["resourceVersion"] = str(self._rv)
                    return 201, obj
                self._commit(key, obj_ns, obj, "ADDED")
                return 201, obj
            current = store.get((ns, name))
            if current is None:
                raise ApiError(404, "NotFound", f'{key[1]} "{name}" not found')
            if sub == "eviction" and key == ("", "pods") and method == "POST":
                return self._evict(current, body, dry)
            if sub and sub != "status":
                raise ApiError(404, "NotFound", f"subresource {sub} is not served by the fake")
            if method == "GET":
                return 200, current
            if method == "DELETE":
                pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
                meta = current["metadata"]
                if pre.get("uid") and pre["uid"] != meta["uid"]:
                    raise ApiError(
                        409,
                        "Conflict",
                        f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                        f"{meta['uid']}",
                    )
                if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                    raise ApiError(409, "Conflict", "Precondition failed: resourceVersion mismatch")
                body_dry = isinstance(body, dict) and "All" in (body.get("dryRun") or [])
                if not (dry or body_dry):
                    del store[(ns, name)]
                    self._bump(current)
                    self._emit(key, "DELETED", current)
                return 200, current
            if method in ("PUT", "PATCH"):
                updated = self._updated(current, method, content_type, body, custom)
                meta = updated.setdefault("metadata", {})
                for immutable in ("uid", "name", "namespace", "creationTimestamp"):
                    if current["metadata"].get(immutable) is not None:
                        meta[immutable] = current["metadata"][immutable]
                sent_rv = meta.get("resourceVersion")
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    raise ApiError(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {key[1]} "{name}": the object has been '
                        "modified; please apply your changes to the latest version and try again",
                    )
                if updated.get("spec") != current.get("spec"):
                    meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
                self._server_defaults(key, current, updated)
                if dry:
                    return 200, updated
                self._commit(key, ns, updated, "MODIFIED")
                return 200, updated
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")

    @staticmethod
    def _updated(current: dict[str, Any], method: str, content_type: str, body: Any, custom: bool) -> Any:
        if method == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "body must be an object")
            return copy.deepcopy(body)
        if content_type == "application/json-patch+json":
            return json_patch(current, body)
        if content_type == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            return merge_patch(current, body)
        if content_type == "application/strategic-merge-patch+json":
            if custom:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                )
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a strategic merge patch must be a JSON object")
            return merge_patch(current, body, strategic=True)
        raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")

    @staticmethod
    def _server_defaults(key: tuple[str, str], before: dict[str, Any], after: dict[str, Any]) -> None:
        if key == ("", "nodes"):
            # As the API server does: NoExecute taints get the time they were added.
            for taint in (after.get("spec") or {}).get("taints") or []:
                if taint.get("effect") == "NoExecute" and not taint.get("timeAdded"):
                    taint["timeAdded"] = _now()
            # omitempty fields, as the real server stores them
            if (after.get("spec") or {}).get("unschedulable") is False:
                del after["spec"]["unschedulable"]
            if (after.get("spec") or {}).get("taints") == []:
                del after["spec"]["taints"]

    def _list(self, key: tuple[str, str], ns: str, query: dict[str, str]) -> dict[str, Any]:
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""))
        items = [
            o
            for (ons, _), o in sorted(self._store[key].items())
            if (not ns or ons == ns) and labels(o["metadata"].get("labels") or {}) and fields(o)
        ]
        kind = RESOURCES[key][0]
        version = DEFAULT_VERSION.get(key[0], "v1")
        return {
            "kind": f"{kind}List",
            "apiVersion": f"{key[0]}/{version}" if key[0] else "v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _evict(self, pod: dict[str, Any], body: Any, dry: bool) -> tuple[int, Any]:
        opts = (body or {}).get("deleteOptions") or {} if isinstance(body, dict) else {}
        dry = dry or "All" in (opts.get("dryRun") or [])
        ns = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        pods_here = [p for (pns, _), p in self._store[("", "pods")].items() if pns == ns]
        for (pns, pdb_name), pdb in self._store[("policy", "poddisruptionbudgets")].items():
            spec = pdb.get("spec") or {}
            if pns != ns or not selector_matches(spec.get("selector"), labels):
                continue
            covered = [
                p
                for p in pods_here
                if selector_matches(spec.get("selector"), p["metadata"].get("labels") or {})
            ]
            healthy = sum(1 for p in covered if _pod_ready(p))
            if spec.get("minAvailable") is not None:
                allowed = healthy - _budget(spec["minAvailable"], len(covered))
            else:
                allowed = _budget(spec.get("maxUnavailable", 0), len(covered)) - (len(covered) - healthy)
            if allowed < 1:
                raise ApiError(
                    429,
                    "TooManyRequests",
                    f"Cannot evict pod as it would violate the pod's disruption budget. ({pdb_name})",
                )
        if not dry:
            del self._store[("", "pods")][(ns, pod["metadata"]["name"])]
            self._bump(pod)
            self._emit(("", "pods"), "DELETED", pod)
        return 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201, "metadata": {}}

    def _review(self, body: Any) -> dict[str, Any]:
        attrs = ((body or {}).get("spec") or {}).get("resourceAttributes") or {}
        verb, resource = attrs.get("verb", ""), attrs.get("resource", "")
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"
        ns = attrs.get("namespace", "")
        denied = (verb, resource, ns) in self._denied or (verb, resource, "") in self._denied
        out = copy.deepcopy(body) if isinstance(body, dict) else {}
        out["status"] = {
            "allowed": not denied,
            "reason": "denied by the test" if denied else "the fake API server has no RBAC",
        }
        return out

    async def _watch(
        self, request: web.Request, key: tuple[str, str], ns: str, query: dict[str, str]
    ) -> web.StreamResponse:
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""))
        timeout = min(float(query.get("timeoutSeconds") or 60), 300.0)
        since = query.get("resourceVersion") or "0"
        queue: asyncio.Queue[Any] = asyncio.Queue()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            return (
                (not ns or meta.get("namespace") == ns) and labels(meta.get("labels") or {}) and fields(obj)
            )

        async def send(kind: str, obj: dict[str, Any]) -> None:
            await response.write((json.dumps({"type": kind, "object": obj}) + "\n").encode())

        with self._lock:
            self._watchers.add(queue)
            backlog: list[tuple[str, dict[str, Any]]] = []
            last = self._rv
            if since == "0":
                backlog = [("ADDED", copy.deepcopy(o)) for o in self._store[key].values() if wanted(o)]
            else:
                oldest = self._history[0][0] if self._history else self._rv + 1
                if int(since) < oldest - 1:
                    backlog = [("ERROR", status_body(410, "Expired", f"too old resource version: {since}"))]
                else:
                    backlog = [
                        (k, o)
                        for rv, kk, k, o in self._history
                        if kk == key and rv > int(since) and wanted(o)
                    ]
        try:
            for kind, obj in backlog:
                await send(kind, obj)
                if kind == "ERROR":
                    return response
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=left)
                except TimeoutError:
                    break
                if item is None:
                    break
                rv, kk, kind, obj = item
                if kk == key and rv > last and wanted(obj):
                    await send(kind, obj)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(queue)
        return response


# ---------------------------------------------------------------- object builders for tests


def node(
    name: str,
    region: str,
    gpu: bool = True,
    ready: bool = True,
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = {"topology.kubernetes.io/region": region, "kubernetes.io/hostname": name}
    if gpu:
        labels["nvidia.com/gpu.present"] = "true"
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            ]
        },
    }


def pod(
    name: str,
    namespace: str,
    node_name: str,
    labels: dict[str, str] | None = None,
    owner: str | None = "ReplicaSet",
    ready: bool = True,
    tolerations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner,
                "name": f"{name}-owner",
                "uid": str(uuid.uuid4()),
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "main", "image": "busybox"}],
            "tolerations": tolerations or [],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def iter_mutating_paths(api: FakeKubeAPI, include_dry_run: bool = False) -> Iterator[tuple[str, str]]:
    for r in api.mutations(include_dry_run):
        yield r.method, r.path
