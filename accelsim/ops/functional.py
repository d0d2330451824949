"""The numpy numerics of every op under one name (``from accelsim.ops import functional as F``): stateless
functions, arrays in, arrays out, each with its gradient. They live with their ops (the family modules); this
module only gathers them. Layout NCHW for images, ``[..., features]`` for tokens; padding in ONNX order
``(top, left, bottom, right)``; every function keeps the input's float dtype unless its docstring says otherwise.
"""
from ._geometry import conv_output_size, pad, pads4, pair, same_padding, unpad, window
from .decoder import (causal_mask, causal_softmax, group_heads, rms_norm, rms_norm_backward, rope, silu, swiglu,
                      swiglu_backward, ungroup_heads)
from .elementwise import _blockwise, _gelu_block  # noqa: F401  (the numpy twin of the gelu kernel, for its test)
from .elementwise import (erf, gelu, gelu_backward, hardsigmoid, hardsigmoid_backward, hardswish, hardswish_backward,
                          relu, relu6, relu6_backward, relu_backward, sigmoid, sigmoid_backward, tanh_backward)
from ._conv import (col2im, col2im_nd, conv, conv2d, conv2d_backward, conv_backward, conv_transpose,
                    conv_transpose_backward, im2col, im2col_nd)
from .gemm import linear, linear_backward, linear_nd_backward
from .normalization import (batch_norm, batch_norm_backward, batch_norm_train, batch_norm_train_backward, fold_bn,
                            fold_bn_backward, layer_norm, layer_norm_backward, lrn, running_stats)
from .pooling import (avg_pool, avg_pool2d, avg_pool2d_backward, avg_pool2d_valid, avg_pool_backward, avg_pool_valid,
                      global_avg_pool, global_avg_pool_backward, max_pool, max_pool2d, max_pool2d_backward,
                      max_pool_backward)
from .sequence import (embedding, embedding_backward, l2_normalize, mask_bias, mean_pool, mean_pool_backward,
                       merge_heads, softmax, softmax_backward, split_heads)

__all__ = ["avg_pool", "avg_pool2d", "avg_pool2d_backward", "avg_pool2d_valid", "avg_pool_backward",
           "avg_pool_valid", "batch_norm", "batch_norm_backward", "batch_norm_train", "batch_norm_train_backward",
           "causal_mask", "causal_softmax", "col2im", "col2im_nd", "conv", "conv2d", "conv2d_backward",
           "conv_backward", "conv_output_size", "conv_transpose", "conv_transpose_backward", "embedding",
           "embedding_backward", "erf", "fold_bn", "fold_bn_backward", "gelu", "gelu_backward", "global_avg_pool",
           "global_avg_pool_backward", "group_heads", "hardsigmoid", "hardsigmoid_backward", "hardswish",
           "hardswish_backward", "im2col", "im2col_nd", "l2_normalize", "layer_norm", "layer_norm_backward",
           "linear", "linear_backward", "linear_nd_backward", "lrn", "mask_bias", "max_pool", "max_pool2d",
           "max_pool2d_backward", "max_pool_backward", "mean_pool", "mean_pool_backward", "merge_heads", "pad",
           "pads4", "pair", "relu", "relu6", "relu6_backward", "relu_backward", "rms_norm", "rms_norm_backward",
           "rope", "running_stats", "same_padding", "sigmoid", "sigmoid_backward", "silu", "softmax",
           "softmax_backward", "split_heads", "swiglu", "swiglu_backward", "tanh_backward", "ungroup_heads", "unpad",
           "window"]
