#!/usr/bin/env python3
"""Write types.onnx: one input and one output per supported element type,
to test that tensors of each type pass through the onnx predictor.

out_X = Neg(X) for signed numbers, Not(X) for BOOL, Identity for the rest.
Reproduce with Debian's python3-onnx: python3 types.py
"""
import os

from onnx import TensorProto, checker, helper, save

TYPES = [
    ("f32", TensorProto.FLOAT, "Neg"),
    ("f64", TensorProto.DOUBLE, "Neg"),
    ("i8", TensorProto.INT8, "Neg"),
    ("i32", TensorProto.INT32, "Neg"),
    ("i64", TensorProto.INT64, "Neg"),
    ("u8", TensorProto.UINT8, "Identity"),
    ("b", TensorProto.BOOL, "Not"),
    ("s", TensorProto.STRING, "Identity"),
]

nodes = [helper.make_node(op, [n], ["out_" + n]) for n, _, op in TYPES]
inputs = [helper.make_tensor_value_info(n, t, ["N", 2]) for n, t, _ in TYPES]
outputs = [helper.make_tensor_value_info("out_" + n, t, ["N", 2]) for n, t, _ in TYPES]
model = helper.make_model(helper.make_graph(nodes, "types", inputs, outputs),
                          opset_imports=[helper.make_opsetid("", 15)])
model.ir_version = 8
checker.check_model(model, full_check=True)
save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "types.onnx"))
