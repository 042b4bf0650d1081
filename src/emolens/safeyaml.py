"""YAML from people and clients, read with bounds: PyYAML's ``SafeLoader`` plus depth and size limits.

A few hundred bytes of YAML can expand into gigabytes (nested aliases, the "billion laughs") or
nest deep enough to exhaust Python's recursion (``[[[[...]]]]``). :class:`BoundedLoader` refuses
both while the document is composed, before any Python object is built:

* nesting deeper than ``max_depth`` levels;
* a document whose tree, with every alias expanded where it is used, holds more than
  ``max_nodes`` nodes or more than ``max_chars`` characters of scalars;
* an alias that refers to the node that contains it (a recursive structure).

Each refusal is a :class:`YamlLimitError`, a ``yaml.MarkedYAMLError`` whose ``problem_mark`` gives
the line, so callers that already report YAML errors with their line need nothing more.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 32
"""Nesting levels a document may have (a campaign manifest needs 4)."""
MAX_NODES = 250_000
"""Nodes a document may expand to, aliases counted at every use."""
MAX_CHARS = 8 * 1024 * 1024
"""Characters of scalars a document may expand to, aliases counted at every use."""


class YamlLimitError(yaml.MarkedYAMLError):
    """A document over one of the loader's limits (too deep, expands too much, recursive alias)."""


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the limits of this module (see the module doc); use it as
    ``yaml.load(text, Loader=BoundedLoader)`` or through :func:`load` and :func:`compose`."""

    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES
    max_chars: int = MAX_CHARS

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise YamlLimitError(None, None, f"nested more than {self.max_depth} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            check_expansion(node, self.max_nodes, self.max_chars)
        return node


def check_expansion(root: yaml.Node, max_nodes: int = MAX_NODES, max_chars: int = MAX_CHARS) -> tuple[int, int]:
    """``(nodes, characters)`` of ``root`` with every alias expanded where it is used, computed
    without expanding anything (each distinct node is visited once). Raises
    :class:`YamlLimitError` past ``max_nodes`` or ``max_chars``, or for a recursive alias."""
    sizes: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            nodes, chars = 1, 0
            for child in _children(node):
                n, c = sizes[id(child)]
                nodes, chars = nodes + n, chars + c
            if nodes > max_nodes or chars > max_chars:
                what = f"{nodes} nodes" if nodes > max_nodes else f"{chars} characters"
                raise YamlLimitError(None, None, f"aliases expand this document past {what} (the limit is "
                                     f"{max_nodes} nodes and {max_chars} characters)", node.start_mark)
            sizes[key] = (nodes, chars)
            continue
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = (1, len(str(node.value)))
            continue
        if key in on_path:
            raise YamlLimitError(None, None, "an alias refers to a node that contains it (recursive)",
                                 node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load(text: str) -> Any:
    """The Python value of one YAML document, within the limits (:class:`yaml.YAMLError` otherwise)."""
    return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass: safe


def compose(text: str) -> yaml.Node | None:
    """The node tree of one YAML document, within the limits (:class:`yaml.YAMLError` otherwise)."""
    return yaml.compose(text, Loader=BoundedLoader)
