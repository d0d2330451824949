"""accelsim: a systolic-array / INT4-INT8 MAC accelerator emulator with a quantization front end."""
__version__ = "0.1.0"
