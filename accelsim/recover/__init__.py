"""Accuracy recovery for quantized models: QAT and distillation (LSQ fake quant on the one executor),
PTQ switches (MSE weight clipping, bias correction, AdaRound, SmoothQuant), sensitivity-driven mixed precision
with the hardware model as objective, and the ``accelsim quantize --auto`` escalation."""
