"""ddlib: bias in dataset distillation, and KDE + SupCon re-weighting that repairs it.

A reproduction of Cui, Wang, Xiong & Hsieh, "Mitigating Bias in Dataset Distillation" (ICML 2024).
"""

__version__ = "0.1.0"
