"""Moonshine's ONNX graphs made fit for ONNX Runtime at load (pure: a model in, changed in place).

The moonshine-cpp files keep each weight as int8 with a float scale and offset, and turn it
back into floats inside the graph on every run (Cast, Mul, Add: ``q * scale + offset``).
Folded into float weights (what the runtime does with such constant chains) a decoder step
reads 160 MB of floats; it is memory-bound, and two decodings at once share that bandwidth.
:func:`keep_int8` makes each MatMul read the int8 tensor itself instead, through ONNX
Runtime's ``DynamicQuantizeMatMul`` (the activations are quantized per call, the product is
integer, the weights are the files' own: ``offset / scale`` is an integer zero point in every
chain of these files). The token embedding, read by a Gather, is dequantized row by row after
it; its transpose (the output projection) becomes an int8 tensor of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from onnx import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
    helper,
    numpy_helper,
)

MICROSOFT = "com.microsoft"  # the domain of ONNX Runtime's own operators


@dataclass(frozen=True)
class Int8Weight:
    """One weight the graph dequantizes: ``(quantized - zero_point) * scale``."""

    quantized: str  # the int8 initializer
    scale_input: str  # the chain's float scale and offset initializers (shape [1])
    offset_input: str
    scale: float
    zero_point: int


def name_subgraphs(model: ModelProto) -> None:
    """Name each unnamed subgraph (If branches) after its attribute ("then_branch"): the
    runtime writes them without the name that ONNX requires of a graph."""
    for _, attribute in _subgraph_attributes(model.graph):
        if not attribute.g.name:
            attribute.g.name = attribute.name


def int8_weights(graph: GraphProto) -> dict[str, Int8Weight]:
    """The float tensors of ``graph`` made by a Cast-Mul-Add chain from an int8 initializer
    and per-tensor scale and offset whose ratio is an int8 zero point, by the chain's output."""
    initializers = {t.name: t for t in graph.initializer}
    made_by = {output: node for node in graph.node for output in node.output}
    found: dict[str, Int8Weight] = {}
    for add in graph.node:
        mul = made_by.get(add.input[0]) if add.op_type == "Add" and len(add.input) == 2 else None
        if mul is None or mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        cast = made_by.get(mul.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in initializers:
            continue
        quantized = initializers[cast.input[0]]
        scale_tensor = initializers.get(mul.input[1])
        offset_tensor = initializers.get(add.input[1])
        if quantized.data_type != TensorProto.INT8 or scale_tensor is None or offset_tensor is None:
            continue
        scale, offset = numpy_helper.to_array(scale_tensor), numpy_helper.to_array(offset_tensor)
        if scale.size != 1 or offset.size != 1 or float(scale.flat[0]) == 0.0:
            continue
        zero_point = -float(offset.flat[0]) / float(scale.flat[0])
        if abs(zero_point - round(zero_point)) > 1e-3 or not -128 <= round(zero_point) <= 127:
            continue  # not an int8 zero point: left to be folded into floats
        found[add.output[0]] = Int8Weight(
            quantized.name, mul.input[1], add.input[1], float(scale.flat[0]), round(zero_point)
        )
    return found


def keep_int8(model: ModelProto) -> int:
    """Rewrite ``model`` so that every MatMul whose weight is an int8 chain of the main graph
    (directly or through a 2-D Transpose, in any subgraph) runs as ``DynamicQuantizeMatMul``
    on the int8 tensor, and every Gather from one gathers int8 rows and dequantizes them.
    Chains and transposes no longer read are removed; a chain read otherwise (a Conv) stays,
    to be folded into floats. Returns how many weights are int8 only."""
    graph = model.graph
    weights = int8_weights(graph)
    if not weights:
        return 0
    quantized_names = {weight.quantized for weight in weights.values()}
    arrays = {t.name: t for t in graph.initializer if t.name in quantized_names}
    added: dict[str, TensorProto] = {}

    def constant(name: str, value: np.ndarray) -> str:
        if name not in added:
            added[name] = numpy_helper.from_array(value, name)
        return name

    transposed = {
        node.output[0]: weights[node.input[0]]
        for g in _graphs(graph) for node in g.node
        if node.op_type == "Transpose" and node.input[0] in weights
        and _is_2d_transpose(node, arrays[weights[node.input[0]].quantized])
    }

    def rewritten(node: NodeProto) -> list[NodeProto]:
        if node.op_type == "MatMul" and (node.input[1] in weights or node.input[1] in transposed):
            weight = weights.get(node.input[1]) or transposed[node.input[1]]
            quantized = weight.quantized
            if node.input[1] in transposed:
                matrix = numpy_helper.to_array(arrays[quantized])
                quantized = constant(f"{quantized}.transposed", np.ascontiguousarray(matrix.T))
            scale = constant(f"{weight.quantized}.scale", np.array(weight.scale, np.float32))
            zero = constant(f"{weight.quantized}.zero_point", np.array(weight.zero_point, np.int8))
            return [helper.make_node(
                "DynamicQuantizeMatMul", [node.input[0], quantized, scale, zero],
                list(node.output), name=f"{node.name or node.output[0]}.int8", domain=MICROSOFT,
            )]
        if node.op_type == "Gather" and node.input[0] in weights and _axis(node) == 0:
            weight, out = weights[node.input[0]], node.output[0]
            return [
                helper.make_node("Gather", [weight.quantized, node.input[1]], [f"{out}.int8"],
                                 name=f"{node.name or node.output[0]}.int8"),
                helper.make_node("Cast", [f"{out}.int8"], [f"{out}.cast"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{out}.cast", weight.scale_input], [f"{out}.scaled"]),
                helper.make_node("Add", [f"{out}.scaled", weight.offset_input], [out]),
            ]
        return [node]

    for g in _graphs(graph):
        nodes = [new for node in g.node for new in rewritten(node)]
        del g.node[:]
        g.node.extend(nodes)
    graph.initializer.extend(added.values())
    _drop_unread(graph)
    if not any(opset.domain == MICROSOFT for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MICROSOFT, 1))
    still_float = {output for node in graph.node for output in node.output}
    return sum(1 for name in weights if name not in still_float)


def _is_2d_transpose(node: NodeProto, matrix: TensorProto) -> bool:
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    return len(matrix.dims) == 2 and perm in ([], [[1, 0]])


def _axis(node: NodeProto) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "axis"), 0)


def _subgraph_attributes(graph: GraphProto) -> Iterator[tuple[NodeProto, AttributeProto]]:
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                yield node, attribute
                yield from _subgraph_attributes(attribute.g)


def _graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """``graph`` and every subgraph in it, outermost first. Lazily: a graph's subgraphs are
    reached through its nodes after the caller has seen (and maybe replaced) those nodes, so
    rewriting each graph as it comes reaches the subgraphs of the rewritten nodes."""
    yield graph
    for _, attribute in _subgraph_attributes(graph):
        yield attribute.g


def _drop_unread(graph: GraphProto) -> None:
    """Remove the nodes (in any graph) whose outputs nothing reads, until none is left, then
    the main graph's initializers that nothing reads. Names are unique across a model's
    graphs (a subgraph reads its outer scope's by name), so one set of read names serves all."""
    while True:
        read = {name for g in _graphs(graph) for node in g.node for name in node.input}
        read |= {value.name for g in _graphs(graph) for value in (*g.output, *g.input)}
        dropped = False
        for g in _graphs(graph):
            kept = [node for node in g.node if any(output in read for output in node.output)]
            if len(kept) < len(g.node):
                del g.node[:]
                g.node.extend(kept)
                dropped = True
        if not dropped:
            break
    tensors = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(tensors)
