"""One cluster instance for tests/fixtures/cluster_driver.py, through the Python package.

Reads one JSON request per line on stdin and writes exactly one JSON line per request on
stdout (the protocol is in .notes/cluster-api.md); nothing else goes to stdout. A failed
call answers ``{"error": "SB_<CODE>", "message": ...}`` with the exception's code.

    python3 tests/fixtures/cluster_driver.py -- python3 tests/python/cluster_node.py
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Dict, List, Optional

import switchboard


class Node:
    """The state one instance keeps between requests."""

    def __init__(self) -> None:
        self.manager: Optional[switchboard.Manager] = None
        self.outboxes: Dict[int, switchboard.Outbox] = {}
        self.pools: Dict[str, switchboard.Pool] = {}

    @property
    def m(self) -> switchboard.Manager:
        if self.manager is None:
            raise switchboard.FailedPrecondition("no manager yet: send start first")
        return self.manager

    @property
    def cluster(self) -> switchboard.Cluster:
        c = self.m.cluster
        if c is None:
            raise switchboard.FailedPrecondition("the manager is in no cluster")
        return c

    # --- the requests -------------------------------------------------------------

    def start(self, config: Dict[str, Any]) -> Dict[str, Any]:
        self.manager = switchboard.Manager(config)
        c = self.cluster
        return {"node_id": c.node_id, "number": c.node_number, "joined": c.joined}

    def register(self, user: Optional[str], topics: List[str]) -> Dict[str, Any]:
        outbox = self.m.registry.register_outbox(user=user, topics=topics)
        self.outboxes[outbox.id] = outbox
        return {"id": outbox.id}

    def drain(self, id: int) -> Dict[str, Any]:
        outbox = self.outboxes[id]
        messages: List[str] = []
        for _ in range(10_000):
            item = outbox.try_next()
            if item is None:
                break
            if isinstance(item, str):
                messages.append(item)
            elif isinstance(item, bytes):
                messages.append(item.decode())
            # PING: the registry asks for a ping; not a message.
        return {"messages": messages}

    def broadcast(self, target: Dict[str, Any], data: str, ack: bool) -> Dict[str, Any]:
        t = _target(target)
        if not ack:
            return {"local": self.m.registry.broadcast(data, **t).recipients}
        r = self.cluster.broadcast(data, **t)
        return {"local": r.local.recipients, "remote": r.remote, "unacknowledged": r.unacknowledged}

    def members(self) -> Dict[str, Any]:
        c = self.cluster
        return {"joined": c.joined, "members": sorted(m.node_id for m in c.members())}

    def list(self, filter: Dict[str, Any]) -> Dict[str, Any]:
        page = self.cluster.list(
            user=filter.get("user"),
            topic=filter.get("topic"),
            limit=filter.get("limit", 0),
            cursor=filter.get("cursor"),
        )
        return {
            "ids": [c.id for _, c in page.connections],
            "nodes": [node for node, _ in page.connections],
            "next_cursor": page.next_cursor,
            "answered": list(page.answered.nodes),
            "missing": list(page.answered.missing),
        }

    def disconnect(self, target: Dict[str, Any], reason: str) -> Dict[str, Any]:
        r = self.cluster.disconnect(reason=reason, **_target(target))
        return {"total": r.total, "by_node": r.by_node, "missing": list(r.answered.missing)}

    def stats(self) -> Dict[str, Any]:
        s = self.cluster.stats()
        return {
            "connections": s.total.connections,
            "by_node": {node: st.connections for node, st in s.by_node.items()},
            "missing": list(s.answered.missing),
        }

    def pool(self, name: str, target: str, config: Dict[str, Any]) -> Dict[str, Any]:
        self.pools[name] = self.m.pool(name, target, config)
        return {}

    def acquire(self, pool: str) -> Dict[str, Any]:
        with self.pools[pool].acquire():
            pass
        return {}

    def pool_stats(self, pool: str) -> Dict[str, Any]:
        s = self.pools[pool].stats()
        return {
            "connect_failed_total": s.connect_failed_total,
            "created_total": s.created_total,
            "rejected_total": s.rejected_total,
        }

    def breaker(self, pool: str) -> Dict[str, Any]:
        return {"state": self.pools[pool].breaker_state()}

    def resource(self, id: str, kind: str, props: Dict[str, Any]) -> Dict[str, Any]:
        self.m.resources.create(id, kind, **props)
        return {}

    def resource_status(self, id: str) -> Dict[str, Any]:
        r = self.cluster.resource_status(id)
        return {"by_node": r.by_node, "missing": list(r.answered.missing)}

    def events(self) -> Dict[str, Any]:
        out: List[str] = []
        for _ in range(10_000):
            e = self.m.poll_event(0)
            if e is None:
                break
            out.append(f"{e.kind}:{e.reason or ''}")
        return {"events": out}

    def close(self) -> Dict[str, Any]:
        for outbox in self.outboxes.values():
            outbox.close()
        if self.manager is not None:
            self.manager.close(timeout=5.0)
        return {}


def _target(t: Dict[str, Any]) -> Dict[str, Any]:
    """The driver's target as the keyword arguments of the registry's and the cluster's
    calls (``except`` is ``exclude`` in Python)."""
    return {
        "all": bool(t.get("all", False)),
        "topics": t.get("topics", []),
        "users": t.get("users", []),
        "ids": t.get("ids", []),
        "exclude": t.get("except", []),
    }


#: The requests, each a method of :class:`Node` taking the request's fields.
OPS = frozenset(
    "start register drain broadcast members list disconnect stats pool acquire pool_stats "
    "breaker resource resource_status events close".split()
)


def main() -> int:
    node = Node()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.pop("op")
        try:
            if op not in OPS:
                raise switchboard.InvalidArgument(f"unknown op {op!r}")
            handler: Callable[..., Dict[str, Any]] = getattr(node, op)
            reply = handler(**req)
        except switchboard.SwitchboardError as e:
            reply = {"error": e.code, "message": str(e)}
        except Exception as e:  # noqa: BLE001 - a bug of this child, reported as one
            reply = {"error": "SB_INTERNAL", "message": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if op == "close":
            return 0
    node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
