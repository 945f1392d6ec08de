"""Restoration methods: StyleGAN2, Panini-Net, baseline adapters, and the method registry.

`create_method(name, weights=None, device="cpu")` is the one factory (DESIGN.md, "Python").
Importing this package is cheap; a method's network code is imported when it is created.
"""

from bench.methods.registry import Method, MethodEntry, MethodSpec, create_method, list_methods

__all__ = ["Method", "MethodEntry", "MethodSpec", "create_method", "list_methods"]
