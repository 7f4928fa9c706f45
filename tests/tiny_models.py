"""Tiny ONNX models built at test time with the exact input/output contract of each family's published export.

Their outputs are simple known functions of their inputs, so a test can check the pre-processing (size,
channel order, normalisation) and the post-processing numerically, end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 18)]


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="image-to-mesh-tests")
    model.ir_version = 8  # readable by every ONNX Runtime the tests run
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_value", TensorProto.FLOAT if np.asarray(value).dtype.kind == "f" else TensorProto.INT64,
        np.asarray(value).shape, np.asarray(value).ravel().tolist()))


def channel_mean_depth(path: Path, input_name="pixel_values", output_name="predicted_depth", offset=3.0,
                       static_side: int | None = None) -> Path:
    """Depth Anything / MiDaS contract: image (1, 3, H, W) -> depth (1, H, W) = mean over channels + offset."""
    spatial = [static_side, static_side] if static_side else ["height", "width"]
    nodes = [
        helper.make_node("ReduceMean", [input_name, "axes"], ["mean"], keepdims=0),
        _const("axes", np.array([1], np.int64)),
        _const("offset", np.array(offset, np.float32)),
        helper.make_node("Add", ["mean", "offset"], [output_name]),
    ]
    graph = helper.make_graph(
        _topological(nodes), "channel_mean_depth",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, *spatial])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, *spatial])],
    )
    return _save(graph, path)


def depth_and_focal(path: Path, focal_px: float, offset=2.0) -> Path:
    """Depth Pro contract: pixel_values (1, 3, 1536, 1536) -> predicted_depth (1, 1536, 1536) metres (mean over
    channels + offset) and focallength_px (1,) in pixels of the 1536-wide input."""
    nodes = [
        helper.make_node("ReduceMean", ["pixel_values", "axes"], ["mean"], keepdims=0),
        _const("axes", np.array([1], np.int64)),
        _const("offset", np.array(offset, np.float32)),
        helper.make_node("Add", ["mean", "offset"], ["predicted_depth"]),
        _const("focallength_px", np.array([focal_px], np.float32)),
    ]
    graph = helper.make_graph(
        _topological(nodes), "depth_and_focal",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, 1536, 1536])],
        [helper.make_tensor_value_info("predicted_depth", TensorProto.FLOAT, [1, 1536, 1536]),
         helper.make_tensor_value_info("focallength_px", TensorProto.FLOAT, [1])],
    )
    return _save(graph, path)


def ramp_points(path: Path, tokens_per_unit_scale=900.0) -> Path:
    """MoGe-2 contract: image (B, 3, H, W) in 0..1 and num_tokens (int64 scalar) -> points (B, H, W, 3),
    normal (B, H, W, 3), mask (B, H, W), metric_scale (B,).

    With z = 1 + B and (x, y) = (R - 0.5, G - 0.5) * z, a photo whose red channel ramps as u / 255 and green as
    v / 255 is a surface seen by a camera of focal length 255 px (principal point at the centre of a 256-wide
    image). mask = R > 0.1; metric_scale = num_tokens / tokens_per_unit_scale.
    """
    nodes = [
        helper.make_node("Split", ["image", "split_sizes"], ["r", "g", "b"], axis=1),
        _const("split_sizes", np.array([1, 1, 1], np.int64)),
        _const("half", np.array(0.5, np.float32)),
        _const("one", np.array(1.0, np.float32)),
        _const("tenth", np.array(0.1, np.float32)),
        helper.make_node("Add", ["b", "one"], ["z"]),
        helper.make_node("Sub", ["r", "half"], ["rc"]),
        helper.make_node("Sub", ["g", "half"], ["gc"]),
        helper.make_node("Mul", ["rc", "z"], ["x"]),
        helper.make_node("Mul", ["gc", "z"], ["y"]),
        helper.make_node("Concat", ["x", "y", "z"], ["xyz"], axis=1),
        helper.make_node("Transpose", ["xyz"], ["points"], perm=[0, 2, 3, 1]),
        helper.make_node("Concat", ["rc", "gc", "one_map"], ["n_raw"], axis=1),
        helper.make_node("Mul", ["b", "zero"], ["zero_map"]),
        _const("zero", np.array(0.0, np.float32)),
        helper.make_node("Add", ["zero_map", "one"], ["one_map"]),
        helper.make_node("LpNormalization", ["n_raw"], ["n_unit"], axis=1, p=2),
        helper.make_node("Transpose", ["n_unit"], ["normal"], perm=[0, 2, 3, 1]),
        helper.make_node("Greater", ["r", "tenth"], ["inside"]),
        helper.make_node("Cast", ["inside"], ["inside_f"], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", ["inside_f", "squeeze_axes"], ["mask"]),
        _const("squeeze_axes", np.array([1], np.int64)),
        helper.make_node("Cast", ["num_tokens"], ["tokens_f"], to=TensorProto.FLOAT),
        _const("per_unit", np.array(tokens_per_unit_scale, np.float32)),
        helper.make_node("Div", ["tokens_f", "per_unit"], ["scale_scalar"]),
        helper.make_node("Reshape", ["scale_scalar", "scale_shape"], ["metric_scale"]),
        _const("scale_shape", np.array([1], np.int64)),
    ]
    graph = helper.make_graph(
        _topological(nodes), "ramp_points",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"]),
         helper.make_tensor_value_info("num_tokens", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("points", TensorProto.FLOAT, ["batch", "height", "width", 3]),
         helper.make_tensor_value_info("normal", TensorProto.FLOAT, ["batch", "height", "width", 3]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "height", "width"]),
         helper.make_tensor_value_info("metric_scale", TensorProto.FLOAT, [1])],
    )
    return _save(graph, path)


def _topological(nodes):
    """Order nodes so each comes after the producers of its inputs (ONNX requires it)."""
    produced = {name for n in nodes for name in n.input} - {name for n in nodes for name in n.output}
    ordered, pending = [], list(nodes)
    while pending:
        ready = [n for n in pending if all(i in produced for i in n.input)]
        assert ready, "cycle or missing input in a test graph"
        for n in ready:
            ordered.append(n)
            produced.update(n.output)
            pending.remove(n)
    return ordered


def slow_depth(path: Path, steps: int = 100_000, side: int = 768) -> Path:
    """Depth Anything's contract, with a loop of `steps` matrix products before the answer: a run that takes
    minutes to hours (about 8 ms a step), in constant memory, so it can be cancelled midway. The loop starts
    from the input, so no optimiser can fold it away at load time, and contributes 0: depth = mean over
    channels + 3."""

    matrix = (np.random.default_rng(0).standard_normal((side, side)) / np.sqrt(side)).astype(np.float32)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["m_in", "matrix"], ["m_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "step",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("m_in", TensorProto.FLOAT, [side, side])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("m_out", TensorProto.FLOAT, [side, side])],
    )
    nodes = [
        helper.make_node("Constant", [], ["matrix"], value=numpy_helper.from_array(matrix, "matrix_value")),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.zeros((), np.float32), "z")),
        helper.make_node("Constant", [], ["offset"], value=numpy_helper.from_array(np.full((), 3, np.float32), "o")),
        helper.make_node("Constant", [], ["trips"], value=numpy_helper.from_array(np.array(steps, np.int64), "t")),
        helper.make_node("Constant", [], ["go"], value=numpy_helper.from_array(np.array(True), "g")),
        helper.make_node("ReduceMean", ["pixel_values", "axes"], ["mean"], keepdims=0),
        _const("axes", np.array([1], np.int64)),
        helper.make_node("ReduceMean", ["pixel_values"], ["overall"], keepdims=0),
        helper.make_node("Mul", ["overall", "zero"], ["nil"]),
        helper.make_node("Add", ["matrix", "nil"], ["start"]),
        helper.make_node("Loop", ["trips", "go", "start"], ["end"], body=body),
        helper.make_node("ReduceSum", ["end"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["offset", "nothing"], ["shift"]),
        helper.make_node("Add", ["mean", "shift"], ["predicted_depth"]),
    ]
    graph = helper.make_graph(
        _topological(nodes), "slow_depth",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("predicted_depth", TensorProto.FLOAT, [1, "height", "width"])],
    )
    return _save(graph, path)


def compact_upscaler(path: Path, static_side: int | None = None, seed: int = 0) -> Path:
    """Real-ESRGAN general x4v3 contract (SRVGGNet compact, Qualcomm's export): image (1, 3, H, W) RGB in 0..1
    -> upscaled_image (1, 3, 4H, 4W) in 0..1. The real network's shape in small: 3x3 convolutions with a PReLU
    between them, a pixel shuffle (DepthToSpace 4) and the input's nearest-neighbour 4x upsampling added.
    Fixed random weights (small: the output stays near the input), so tiles must reproduce a whole-image run."""
    rng = np.random.default_rng(seed)
    spatial = [static_side, static_side] if static_side else ["height", "width"]
    out_spatial = [4 * static_side, 4 * static_side] if static_side else ["out_height", "out_width"]
    weights = {
        "w1": rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32), "b1": np.zeros(8, np.float32),
        "slope": np.full((8, 1, 1), 0.25, np.float32),
        "w2": rng.normal(0, 0.02, (48, 8, 3, 3)).astype(np.float32), "b2": np.zeros(48, np.float32),
        "scales": np.array([1, 1, 4, 4], np.float32),
    }
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name + "_value"))
             for name, value in weights.items()]
    nodes += [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c1", "slope"], ["a1"]),
        helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["c2"], ["detail"], blocksize=4, mode="DCR"),
        helper.make_node("Resize", ["image", "", "scales"], ["base"], mode="nearest"),
        helper.make_node("Add", ["base", "detail"], ["upscaled_image"]),
    ]
    graph = helper.make_graph(
        nodes, "compact_upscaler",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, *spatial])],
        [helper.make_tensor_value_info("upscaled_image", TensorProto.FLOAT, [1, 3, *out_spatial])],
    )
    return _save(graph, path)
