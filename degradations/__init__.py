"""Degradations: pure functions of (uint8 RGB HWC image, parameters) and seeded parameter presets."""
