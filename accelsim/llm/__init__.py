"""Decoder LLMs from GGUF files (``pip install "accelsim[llm]"``): the architecture table and graph
(:mod:`.architecture`), the GGUF reader and importer (:mod:`.gguf_file`, :mod:`.importer`), the tokenizer from
the file's metadata (:mod:`.tokenizer`), inference and greedy generation with a KV cache (:mod:`.run`, on
:mod:`accelsim.nn.decode`), weight-only re-quantization (:mod:`.requant`) and accuracy on real text
(:mod:`.accuracy`). docs/llm.md describes the graph and what the cost model reads from it."""
