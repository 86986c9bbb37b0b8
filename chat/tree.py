"""The message tree: a conversation is a tree, the page shows one branch (root → active leaf).

Regenerate adds a sibling assistant reply, edit-and-resend adds a sibling user message, and
switching picks another sibling: all three only add nodes and move the active leaf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    id: int
    parent_id: int | None


class Tree:
    def __init__(self, nodes: Iterable[Node]):
        self.parent: dict[int, int | None] = {}
        self.children: dict[int | None, list[int]] = defaultdict(list)
        for node in sorted(nodes, key=lambda n: n.id):
            self.parent[node.id] = node.parent_id
            self.children[node.parent_id].append(node.id)

    def path_to(self, leaf_id: int | None) -> list[int]:
        """Ids from the root down to leaf_id (empty for None or an unknown id)."""
        path = []
        current = leaf_id
        while current is not None and current in self.parent:
            path.append(current)
            current = self.parent[current]
        return path[::-1]

    def siblings(self, node_id: int) -> list[int]:
        return self.children[self.parent[node_id]]

    def leaves(self) -> list[int]:
        """Every branch's last message, in the order a depth-first walk from the roots meets them."""
        found, stack = [], list(reversed(self.children.get(None, [])))
        while stack:
            node = stack.pop()
            below = self.children.get(node)
            if below:
                stack.extend(reversed(below))
            else:
                found.append(node)
        return found

    def latest_leaf_under(self, node_id: int) -> int:
        """Follow the newest child down: where the user was when they last left that branch."""
        current = node_id
        while self.children.get(current):
            current = self.children[current][-1]
        return current
