"""Tri-colour marking over a Graph, remembering how each node was first reached.

Breadth-first from every root at once, so the remembered path to any node is a
shortest chain of references from some root (what ``explain`` prints).  A node
may be visited twice: flat (only parents/targets followed) and full; it is
marked either way.
"""

from __future__ import annotations

from collections import deque

import attrs

from .graph import Graph
from .nodes import COLLECTIBLE, Node

State = tuple[Node, bool]  # (node, reached flat)


@attrs.define(eq=False)
class Marking:
    graph: Graph
    marked: set[Node] = attrs.Factory(set)
    full: set[Node] = attrs.Factory(set)  # nodes whose labels/back-references were followed
    via: dict[State, tuple[State | None, str]] = attrs.Factory(dict)

    def unmarked(self) -> list[Node]:
        """Records a collection would delete, in a stable order."""
        return sorted(n for n in self.graph.records if n.kind in COLLECTIBLE and n not in self.marked)

    def chain(self, node: Node) -> list[tuple[Node, str]]:
        """[(node, how it was reached)] from a root down to ``node``; [] when unreachable."""
        state: State | None = (node, False) if (node, False) in self.via else (node, True)
        if state not in self.via:
            return []
        steps: list[tuple[Node, str]] = []
        while state is not None:
            previous, how = self.via[state]
            steps.append((state[0], how))
            state = previous
        steps.reverse()
        return steps


def mark(graph: Graph) -> Marking:
    m = Marking(graph=graph)
    via = m.via
    grays: deque[State] = deque()
    for node, flat, why in graph.roots:
        state = (node, flat)
        if state not in via:
            via[state] = (None, f"root: {why}")
            grays.append(state)
    while grays:
        state = grays.popleft()
        node, flat = state
        m.marked.add(node)
        if not flat:
            m.full.add(node)
        for target, target_flat, how in graph.edges(node, flat):
            nxt = (target, target_flat)
            if nxt not in via:
                via[nxt] = (state, how)
                grays.append(nxt)
    return m
