"""The rewrites Moonshine's ONNX graphs get at load, on small graphs built like the
moonshine-cpp files: int8 weights dequantized by Cast-Mul-Add in the main graph, read by
MatMuls, a Gather and a Transpose inside If branches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import GraphProto, ModelProto, TensorProto, helper, numpy_helper

from ivr.speech.moonshine_graph import int8_weights, keep_int8, name_subgraphs

ROWS, COLUMNS = 24, 16


def _chain(name: str, quantized: np.ndarray, scale: float, zero_point: float) -> tuple[
    list[Any], list[TensorProto]
]:
    """The files' dequantization: ``float(q) * scale + offset``, offset = -zero_point * scale."""
    nodes = [
        helper.make_node("Cast", [f"{name}_quantized"], [f"{name}_cast"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{name}_cast", f"{name}_scale"], [f"{name}_mul"]),
        helper.make_node("Add", [f"{name}_mul", f"{name}_offset"], [f"{name}_add"]),
    ]
    tensors = [
        numpy_helper.from_array(quantized, f"{name}_quantized"),
        numpy_helper.from_array(np.array([scale], np.float32), f"{name}_scale"),
        numpy_helper.from_array(np.array([-zero_point * scale], np.float32), f"{name}_offset"),
    ]
    return nodes, tensors


def _branch(name: str, use_weights: bool) -> GraphProto:
    """A branch: ``x @ w + embedding[ids] @ embedding.T`` (or ``x`` alone), unnamed as the
    runtime writes them."""
    out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)
    if not use_weights:
        return helper.make_graph([helper.make_node("Identity", ["x"], [f"{name}_y"])], "", [],
                                 [out])
    nodes = [
        helper.make_node("MatMul", ["x", "w_add"], [f"{name}_xw"]),
        helper.make_node("Gather", ["embedding_add", "ids"], [f"{name}_rows"]),
        helper.make_node("Transpose", ["embedding_add"], [f"{name}_et"], perm=[1, 0]),
        helper.make_node("MatMul", [f"{name}_rows", f"{name}_et"], [f"{name}_logits"]),
        helper.make_node("ReduceSum", [f"{name}_logits"], [f"{name}_sum"], keepdims=1),
        helper.make_node("Add", [f"{name}_xw", f"{name}_sum"], [f"{name}_y"]),
    ]
    return helper.make_graph(nodes, "", [], [out])


def _model(zero_point: float = 3.0) -> ModelProto:
    rng = np.random.default_rng(7)
    w_nodes, w_tensors = _chain("w", rng.integers(-128, 128, (ROWS, COLUMNS), np.int8), 0.02,
                                zero_point)
    e_nodes, e_tensors = _chain("embedding", rng.integers(-128, 128, (10, ROWS), np.int8),
                                0.01, -5.0)
    branch = helper.make_node("If", ["cond"], ["y"], then_branch=_branch("then", True),
                              else_branch=_branch("else", False))
    graph = helper.make_graph(
        [*w_nodes, *e_nodes, branch], "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, ROWS]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [*w_tensors, *e_tensors],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


def _run(model: ModelProto, cond: bool = True) -> np.ndarray:
    import onnxruntime  # type: ignore[import-untyped]  # no stubs

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).normal(0, 1, (2, ROWS)).astype(np.float32)
    feeds = {"x": x, "ids": np.array([1, 7]), "cond": np.array(cond)}
    return np.asarray(session.run(None, feeds)[0])


def _ops(graph: GraphProto) -> list[str]:
    ops = []
    for node in graph.node:
        ops.append(node.op_type)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                ops += _ops(attribute.g)
    return ops


def test_unnamed_subgraphs_are_named_after_their_attribute() -> None:
    """The runtime writes If branches without the name ONNX requires; each gets its
    attribute's name, and a branch that has a name keeps it."""
    model = _model()
    (then_branch,) = [a for a in model.graph.node[-1].attribute if a.name == "then_branch"]
    then_branch.g.name = "mine"
    name_subgraphs(model)
    names = {a.name: a.g.name for a in model.graph.node[-1].attribute}
    assert names == {"then_branch": "mine", "else_branch": "else_branch"}


def test_int8_chains_are_found_with_their_integer_zero_points() -> None:
    """Each Cast-Mul-Add from an int8 initializer is a weight; ``-offset / scale`` is its zero
    point. A ratio that is no integer is not one (its chain is left to be folded)."""
    weights = int8_weights(_model().graph)
    assert sorted(weights) == ["embedding_add", "w_add"]
    assert weights["w_add"].quantized == "w_quantized"
    assert weights["w_add"].zero_point == 3 and weights["embedding_add"].zero_point == -5
    assert weights["w_add"].scale == pytest.approx(0.02)
    assert sorted(int8_weights(_model(zero_point=2.5).graph)) == ["embedding_add"]


def test_matmuls_run_on_the_int8_weights_and_give_what_the_float_graph_gives() -> None:
    """MatMuls on a weight (directly or through its transpose, inside a branch) become
    DynamicQuantizeMatMul on int8 tensors, the Gather gathers int8 rows; no float copy of a
    weight is left, and the outputs are the float graph's within the error of quantizing
    the activations."""
    floats = _model()
    name_subgraphs(floats)
    expected = _run(floats)
    model = _model()
    name_subgraphs(model)
    assert keep_int8(model) == 2
    ops = _ops(model.graph)
    assert ops.count("DynamicQuantizeMatMul") == 2
    assert "MatMul" not in ops and "Transpose" not in ops
    assert ops.count("Cast") == 1  # the gathered rows, not a weight
    kinds = {t.name: t.data_type for t in model.graph.initializer}
    assert kinds["w_quantized"] == kinds["embedding_quantized.transposed"] == TensorProto.INT8
    assert not any(t.data_type == TensorProto.FLOAT and len(t.dims) == 2
                   for t in model.graph.initializer)
    assert any(opset.domain == "com.microsoft" for opset in model.opset_import)
    got = _run(model)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0.02, atol=0.02 * np.abs(expected).max())
    np.testing.assert_array_equal(_run(model, cond=False), _run(floats, cond=False))


def test_a_model_without_int8_chains_is_left_as_it_is() -> None:
    """Nothing to keep int8: the model is not touched."""
    model = _model(zero_point=2.5)
    for node in list(model.graph.node):
        if node.output[0].startswith("embedding"):
            model.graph.node.remove(node)
    (then_branch,) = [a for a in model.graph.node[-1].attribute if a.name == "then_branch"]
    then_branch.g.CopyFrom(_branch("then", False))
    before = model.SerializeToString()
    assert keep_int8(model) == 0
    assert model.SerializeToString() == before


def test_a_weight_also_read_by_another_operator_keeps_its_float_chain() -> None:
    """A weight some other node reads as floats (the encoder's convolutions) keeps its chain
    for the runtime to fold; its MatMuls still read the int8 tensor, and it is not counted."""
    model = _model()
    model.graph.node.append(helper.make_node("Identity", ["w_add"], ["w_float"]))
    model.graph.output.append(helper.make_tensor_value_info("w_float", TensorProto.FLOAT, None))
    name_subgraphs(model)
    assert keep_int8(model) == 1
    assert [n.op_type for n in model.graph.node].count("Cast") == 1
    assert _ops(model.graph).count("DynamicQuantizeMatMul") == 2
