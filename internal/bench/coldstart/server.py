#!/usr/bin/env python3
"""The Python baseline of go run ./internal/bench/coldstart.

A FastAPI + uvicorn + scikit-learn server for the iris sample, written the
way one usually is: at start it imports scikit-learn, reads the weights of
samples/iris/model/iris.onnx (the MatMul weight W and the Add bias B that
samples/iris/train/train.py exported) with the onnx package into a
sklearn.linear_model.LogisticRegression, and serves POST /predict with the
same Open Inference Protocol body as the cortex iris function, answering
the same outputs: label (INT64 class index) and probabilities (FP32).

Usage: python3 server.py --model PATH [--host 127.0.0.1] [--port 8000]
"""

import argparse
from typing import List, Optional

import numpy as np
import onnx
import uvicorn
from fastapi import FastAPI, HTTPException
from onnx import numpy_helper
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression


def load(path):
    """A LogisticRegression with the ONNX graph's coefficients."""
    graph = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    add = next(n for n in graph.node if n.op_type == "Add")
    w = init[matmul.input[1]]  # [features, classes]
    b = init[add.input[1]]  # [classes]
    clf = LogisticRegression()  # lbfgs, 3 classes: predict_proba is the softmax
    clf.coef_ = w.T.astype(np.float64)
    clf.intercept_ = b.astype(np.float64)
    clf.classes_ = np.arange(w.shape[1])
    clf.n_features_in_ = w.shape[0]
    return clf


class Tensor(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: list


class InferRequest(BaseModel):
    id: Optional[str] = None
    inputs: List[Tensor]


def make_app(clf):
    app = FastAPI()

    @app.post("/predict")
    def predict(req: InferRequest):
        if len(req.inputs) != 1 or req.inputs[0].datatype != "FP32":
            raise HTTPException(400, "want one FP32 input")
        t = req.inputs[0]
        try:
            x = np.asarray(t.data, dtype=np.float32).reshape(t.shape)
        except ValueError as e:
            raise HTTPException(400, str(e))
        if x.ndim != 2 or x.shape[1] != clf.n_features_in_:
            raise HTTPException(400, f"want shape [N, {clf.n_features_in_}], got {t.shape}")
        proba = clf.predict_proba(x)
        label = clf.classes_[proba.argmax(axis=1)]
        out = {
            "model_name": "iris",
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [len(label)], "data": label.tolist()},
                {"name": "probabilities", "datatype": "FP32", "shape": list(proba.shape),
                 "data": proba.astype(np.float32).ravel().tolist()},
            ],
        }
        if req.id is not None:
            out["id"] = req.id
        return out

    return app


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    a = p.parse_args()
    uvicorn.run(make_app(load(a.model)), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
