"""panini-bench: a reproducibility benchmark suite for GAN-prior face restoration.

`bench` is the one import root; `methods/`, `degradations/`, `datasets/` and `reports/` are mapped
into it as `bench.methods`, `bench.degradations`, ... (see pyproject.toml). Importing `bench` is
cheap: nothing heavy (torch, metric packages) is imported here.
"""

__version__ = "0.1.0"
