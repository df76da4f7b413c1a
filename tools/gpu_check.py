#!/usr/bin/env python
"""GPU readiness check of every method: python tools/gpu_check.py [--device cuda|cpu] --out DIR

Thin CLI of :mod:`nasbench.gpu_check` (see its docstring and README "Checking a GPU
machine"). Writes DIR/gpu_check.json and DIR/gpu_check.txt; exit status 1 if a check
failed, 2 for bad arguments (e.g. --device cuda without CUDA; nothing is written then).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.gpu_check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
