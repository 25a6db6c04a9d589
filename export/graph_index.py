"""One index of an ONNX graph that every rewrite reads: who produces a tensor, who consumes it, the constants.

Rewrites change the graph through the ModelProto itself; an index is rebuilt after each one (`GraphIndex(model)`
is cheap: one pass over the nodes).
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper


class GraphIndex:
    def __init__(self, model: onnx.ModelProto):
        self.model, self.graph = model, model.graph
        self.nodes = list(self.graph.node)  # topological order, as ONNX keeps it
        self.producer: dict[str, onnx.NodeProto] = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers = {i.name: i for i in self.graph.initializer}
        self.outputs = {o.name for o in self.graph.output}

    def constant(self, name: str):
        """An initializer's value as a numpy array."""
        return numpy_helper.to_array(self.initializers[name])

    def downstream(self, starts) -> set[str]:
        """Every tensor computed from the outputs of the nodes for which starts(node) holds, those included."""
        reached: set[str] = set()
        for node in self.nodes:
            if starts(node) or reached.intersection(node.input):
                reached.update(node.output)
        return reached

    def upstream_nodes(self, name: str, stop=lambda node: False) -> list[onnx.NodeProto]:
        """The nodes a tensor is computed from, not walking past a node for which stop(node) holds (it is
        returned, its inputs are not followed)."""
        seen, found, stack = set(), [], [name]
        while stack:
            src = self.producer.get(stack.pop())
            if src is None or id(src) in seen:
                continue
            seen.add(id(src))
            found.append(src)
            if not stop(src):
                stack.extend(src.input)
        return found

    def replace_nodes(self, nodes: list[onnx.NodeProto], prune: bool = False) -> None:
        """Put `nodes` in the graph in place of its nodes; with prune, drop the initializers no node reads any more."""
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        if not prune:
            return
        used = {name for n in nodes for name in n.input}
        kept = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)

    def in_topological_order(self, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """nodes reordered so that every node comes after the producers of its inputs, otherwise kept in the
        given order (a rewrite that adds nodes can append them and sort once)."""
        made = {i.name for i in self.graph.input} | {i.name for i in self.graph.initializer} | {""}
        ordered, waiting = [], list(nodes)
        while waiting:
            ready = next((n for n in waiting if all(i in made for i in n.input)), None)
            if ready is None:
                raise ValueError(f"the graph has a cycle or a missing input at {waiting[0].name or waiting[0].op_type}")
            waiting.remove(ready)
            ordered.append(ready)
            made.update(ready.output)
        return ordered
