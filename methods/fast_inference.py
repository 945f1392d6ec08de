"""Fast inference for a Method: half-precision weights and CUDA-graph replay.

`FastForward(model, precision, cuda_graph)` converts the model's weights to `precision` ("fp32", "fp16"
or "bf16") and calls it with the input cast to that dtype, returning float32. With `cuda_graph=True`
the first call for each input shape (i.e. batch size) runs a few warm-up forwards on a side stream,
captures one forward into a CUDA graph with static input and output buffers, and later calls copy
the input in, replay the graph and copy the output out. Why: at batch 1 a Panini-Net SR forward
launches hundreds of small kernels (23 RRDBs at 64 px), so its GPU time is CPU launch time, which
half precision alone cannot reduce; a graph replays them in one launch.

A model used with graphs must not sync with the host inside `forward` while a stream is capturing
(Panini-Net skips its NaN check then: `Method.restore` checks the input before), must not change
its parameters' storage after the capture (a `.to()` after the first call replays stale weights),
and one graph (with its own memory pool) is kept per input shape until `reset()`.

`enable_fast_inference(method, precision, cuda_graph)` installs a FastForward on a Method (its
`forward_native`, hence `restore`, then uses it) and records both choices in `method.protocol`. The
default (fp32 without a graph) installs nothing, so the default path stays the bit-exact one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from bench.errors import BenchError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def precision_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a precision name; BenchError for an unknown name."""
    if precision not in PRECISIONS:
        raise BenchError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


class _Captured(NamedTuple):
    graph: torch.cuda.CUDAGraph
    input: torch.Tensor
    output: torch.Tensor


class FastForward:
    """Callable: float input (any dtype/device) -> float32 output of `model` run in `precision`, optionally graphed.

    The model is converted in place (`model.to(dtype)`) and put in eval mode; it stays on its device.
    """

    def __init__(self, model: nn.Module, precision: str = "fp32", cuda_graph: bool = False, warmup: int = 3):
        self.dtype = precision_dtype(precision)
        tensor = next(iter(model.parameters()), None)
        self.device = tensor.device if tensor is not None else torch.device("cpu")
        if cuda_graph and self.device.type != "cuda":
            raise BenchError(
                f"cuda_graph=True needs the model on a CUDA device, but it is on '{self.device}'; "
                "pass device='cuda' or leave cuda_graph=False"
            )
        self.model = model.to(self.dtype).eval()
        self.precision, self.cuda_graph, self.warmup = precision, cuda_graph, warmup
        self._captured: dict[tuple[int, ...], _Captured] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if not self.cuda_graph:
                return self.model(x.to(self.device, self.dtype)).float()
            captured = self._captured.get(tuple(x.shape)) or self._capture(x)
            captured.input.copy_(x)  # casts to the model dtype and moves to its device
            captured.graph.replay()
            return captured.output.to(torch.float32, copy=True)  # the next replay overwrites the buffer

    def _capture(self, x: torch.Tensor) -> _Captured:
        static_input = torch.empty(x.shape, dtype=self.dtype, device=self.device)
        static_input.copy_(x)  # real values: warm-up forwards validate their input
        side, current = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):  # lazy init and cudnn autotuning happen here, outside the capture
            for _ in range(self.warmup):
                self.model(static_input)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device), torch.cuda.graph(graph):
            static_output = self.model(static_input)
        captured = _Captured(graph, static_input, static_output)
        self._captured[tuple(x.shape)] = captured
        return captured

    def reset(self) -> None:
        """Drop the captured graphs and their memory (the next call captures again)."""
        self._captured.clear()


def check_fast_inference(name: str, device: str | torch.device, precision: str, cuda_graph: bool) -> None:
    """BenchError (naming method `name`) for an unknown precision, a non-bool cuda_graph or graphs off CUDA."""
    if precision not in PRECISIONS:
        raise BenchError(f"{name}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not isinstance(cuda_graph, bool):
        raise BenchError(f"{name}: cuda_graph must be True or False, got {cuda_graph!r}")
    if cuda_graph and torch.device(device).type != "cuda":
        raise BenchError(f"{name}: cuda_graph=True needs device='cuda', got device='{device}'; "
                         "use a CUDA device or leave cuda_graph=False")


def enable_fast_inference(method, precision: str = "fp32", cuda_graph: bool = False):
    """Run `method` (a registry Method) in `precision` weights, optionally with CUDA graphs; returns it.

    fp32 without graphs leaves the model untouched. The choice is recorded in `method.protocol`.
    """
    check_fast_inference(method.spec.name, method.device, precision, cuda_graph)
    if precision != "fp32" or cuda_graph:
        method.fast_forward = FastForward(method.model, precision, cuda_graph)
    method.protocol.update(precision=precision, cuda_graph=cuda_graph)
    return method
