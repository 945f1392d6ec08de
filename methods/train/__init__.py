"""Training: UDRL (MoCo) pre-training of the DRE and Panini-Net fine-tuning, 1 to N processes.

Entry point: `run_task(task, config, resume)`; configs from `load_config` (see `config.py`).
"""

from bench.methods.train.config import load_config

__all__ = ["load_config"]
