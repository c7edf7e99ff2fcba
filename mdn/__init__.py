"""mdn: masked-training and zero-shot image denoising."""

__version__ = "0.1.0"
