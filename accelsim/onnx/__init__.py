"""ONNX in and out (optional extra ``accelsim[onnx]``): import any ONNX model as an accelsim graph, run it on the
one executor, import ONNX Runtime's quantized models, export accelsim's quantization as ONNX QDQ.

* :func:`import_onnx` (``importer.py``) — ``.onnx`` file → :class:`OnnxImport` (the :class:`~accelsim.graph.Model`,
  its weights, graph input/output names); :func:`accelsim.load_model` calls it for ``.onnx`` paths.
* ``proto.py`` reads the file (one-line errors for truncated, non-ONNX, missing external data); ``fold.py`` sets
  dynamic dimensions, runs ONNX shape inference and folds constants; ``ops_map.py`` is the table ONNX op →
  accelsim op.
"""
from .importer import OnnxImport, import_onnx

__all__ = ["OnnxImport", "import_onnx"]
