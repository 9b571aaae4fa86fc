#!/usr/bin/env python3
"""Train the iris sample model and write it as ONNX.

A multinomial logistic regression on scikit-learn's bundled iris data set,
exported by building the ONNX graph by hand from the learned coefficients
(skl2onnx is not needed):

    input [N,4] FP32 -> MatMul(W) -> Add(b) -> logits [N,3]
    logits -> ArgMax(axis=1, keepdims=0) -> label         INT64 [N]
    logits -> Softmax(axis=1)            -> probabilities FP32  [N,3]

`label` is the first graph output on purpose: the KServe V1 route answers
with the first output, so V1 predictions are class indices.

Usage: python3 train.py [OUTPUT]   (default: ../model/iris.onnx)
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, checker, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

# ONNX Runtime 1.30 runs opsets up to 21+ and IR versions up to 10; opset 15
# with IR 8 is what onnx 1.12 writes by default for it and is widely supported.
OPSET = 15
IR_VERSION = 8
SEED = 42


def train():
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=SEED, stratify=iris.target
    )
    clf = LogisticRegression(multi_class="multinomial", max_iter=1000, random_state=SEED)
    clf.fit(x_train, y_train)
    print(f"train accuracy: {clf.score(x_train, y_train):.4f}")
    print(f"test accuracy:  {clf.score(x_test, y_test):.4f}")
    return clf, list(iris.target_names)


def build(clf, labels):
    w = clf.coef_.T.astype(np.float32)  # [4, 3]
    b = clf.intercept_.astype(np.float32)  # [3]
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["input", "W"], ["xw"], name="matmul"),
            helper.make_node("Add", ["xw", "B"], ["logits"], name="add"),
            helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0),
            helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        ],
        name="iris_logistic_regression",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        outputs=[
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=[
            numpy_helper.from_array(w, name="W"),
            numpy_helper.from_array(b, name="B"),
        ],
    )
    model = helper.make_model(
        graph,
        producer_name="cortex-samples-iris",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    model.doc_string = "Iris species from sepal and petal length and width (cm)."
    helper.set_model_props(model, {"labels": ",".join(labels)})
    checker.check_model(model, full_check=True)
    return model, w, b


def reference(x, w, b):
    """What the graph computes, in float32, to check the export."""
    logits = x.astype(np.float32) @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits.argmax(axis=1), e / e.sum(axis=1, keepdims=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "model", "iris.onnx")
    clf, labels = train()
    model, w, b = build(clf, labels)

    x = load_iris().data
    label, proba = reference(x, w, b)
    if not np.array_equal(label, clf.predict(x)):
        sys.exit("exported graph disagrees with scikit-learn on the labels")
    if not np.allclose(proba, clf.predict_proba(x), atol=1e-5):
        sys.exit("exported graph disagrees with scikit-learn on the probabilities")

    onnx.save(model, out)
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes, opset {OPSET}, IR {IR_VERSION})")


if __name__ == "__main__":
    main()
