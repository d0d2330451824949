"""Accuracy of quantized real models next to their FP32 baseline (tasks, PTQ pipeline, quantization card)."""
