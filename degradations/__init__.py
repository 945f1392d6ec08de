"""Degradations: pure functions of (uint8 RGB HWC image, parameters) and seeded parameter presets."""

from bench.degradations.presets import DEFAULT_PRESET, PRESETS, TASKS, get_preset

__all__ = ["DEFAULT_PRESET", "PRESETS", "TASKS", "get_preset"]
