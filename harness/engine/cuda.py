"""The packed engine's speed switches and their device machinery: TF32, bf16 autocast, a CUDA
graph of the whole step, torch.compile. Plain functions where they can be, so that CPU tests
cover their logic; `python -m harness.gpucheck` measures and checks each on a GPU."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from harness.engine.streams import Streams
from harness.nets.stacked import Masks, StackedDropout


class SpeedUnsupported(ValueError):
    """A speed switch that cannot apply to this pack (the reason is the message)."""


SWITCHES = ("graph", "tf32", "bf16", "compile")   # the order of a speed's name
# TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 (NVIDIA's PyTorch containers set it) runs every fp32 matmul
# in TF32 whatever torch's switch says; NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS from TF32 altogether.
TF32_OVERRIDES = ("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "NVIDIA_TF32_OVERRIDE")


@dataclass(frozen=True)
class Speed:
    """The packed engine's speed switches, each measured by `python -m harness.gpucheck`:
    TF32 and CUDA graphs are CUDA's; bf16 autocast and torch.compile run on any device."""
    tf32: bool = False     # TF32 matmuls: inputs rounded to 10 mantissa bits
    bf16: bool = False     # bf16 autocast of the forward passes (no trajectory can follow fp32's)
    graph: bool = False    # the whole D (+ G) step captured once as a CUDA graph, then replayed
    compile: bool = False  # torch.compile of G and D (their linears as plain autograd ops)

    @property
    def name(self) -> str:
        """e.g. "fp32", "bf16", "graph+tf32": the switches that are on, in SWITCHES' order."""
        return "+".join(s for s in SWITCHES if getattr(self, s)) or "fp32"

    @staticmethod
    def parse(name: str) -> Speed:
        """Speed.parse("graph+tf32"): switches joined by "+" in any order; "fp32" is none."""
        parts = {p.strip() for p in name.lower().split("+")} - {"fp32"}
        unknown = parts - set(SWITCHES)
        if unknown or not name.strip():
            raise SpeedUnsupported(f"unknown speed {name!r}: fp32, or switches {', '.join(SWITCHES)} joined by '+'")
        return Speed(**{s: True for s in parts})

    def applied(self, family, settings: dict) -> tuple[Speed, list[str]]:
        """The switches that apply to a family's packs, and why the others do not: a CUDA graph
        replays one D + G step (families with 1 D step per G step), and torch.compile cannot
        differentiate twice (WGAN-GP's penalty)."""
        graph = self.graph and family.d_steps(settings) == 1
        compile_ = self.compile and not family.needs_double_backward
        why = ([f"no CUDA graph for {family.title} ({family.d_steps(settings)} D steps per G step)"]
               if self.graph and not graph else [])
        why += ([f"no torch.compile for {family.title} (its loss differentiates twice)"]
                if self.compile and not compile_ else [])
        return Speed(tf32=self.tf32, bf16=self.bf16, graph=graph, compile=compile_), why

    def check(self, device: torch.device, family=None) -> None:
        """SpeedUnsupported if a switch cannot apply on this device (or to this family)."""
        cuda_only = [name for name in ("tf32", "graph") if getattr(self, name)]
        if cuda_only and device.type != "cuda":
            raise SpeedUnsupported(f"{', '.join(cuda_only)} need a CUDA device, not {device}")
        if self.compile and family is not None and family.needs_double_backward:
            raise SpeedUnsupported(f"torch.compile cannot differentiate twice (aot_autograd has no double "
                                   f"backward), and {family.title}'s loss needs it")


@contextlib.contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """TF32 matmuls inside exactly when asked (an fp32 pack runs fp32 even where the process
    allows TF32), the previous setting after. (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 in the
    environment, as NVIDIA's containers set it, turns TF32 on below this switch: the GPU check
    clears it for its own runs, harness.tools.checks.clear_tf32_overrides.)"""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def dropout_masks_for(device: torch.device) -> Masks:
    """Reference-equal masks on CPU; one fast pack draw on accelerators (see the module docstring)."""
    return "reference" if device.type == "cpu" else "pack"


def autocast_dtype(device: torch.device, bf16: bool, bf16_supported: bool | None = None) -> torch.dtype | None:
    """bf16 autocast where asked for, on a CPU or a CUDA device that supports it; else None (fp32)."""
    if not bf16:
        return None
    if device.type != "cuda":
        return torch.bfloat16
    supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if supported else None


def compiled(module: nn.Module) -> nn.Module:
    """torch.compile of a stacked G or D, with the dropout masks drawn outside what is compiled.

    A mask drawn from a generator of its own (StackedDropout) breaks dynamo's graph, so a
    Sequential with dropout layers is compiled as the runs between them, the dropouts eager.
    Shapes are static (a pack keeps its shapes for its whole run, and inductor specialises its
    kernels to them): each pack size and architecture compiles anew, which is why the Pack resets
    dynamo's caches when it is built instead of marking the pack dimension dynamic."""
    if not any(isinstance(m, StackedDropout) for m in module.modules()):
        return torch.compile(module)
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential) and any(isinstance(m, StackedDropout) for m in child):
            runs, run = [], []
            for layer in child:
                if isinstance(layer, StackedDropout):
                    runs += ([torch.compile(nn.Sequential(*run))] if run else []) + [layer]
                    run = []
                else:
                    run.append(layer)
            setattr(module, name, nn.Sequential(*runs, *([torch.compile(nn.Sequential(*run))] if run else [])))
        elif not isinstance(child, StackedDropout):
            setattr(module, name, compiled(child))
    return module


def fail_on_recompile_limit(config=None) -> None:
    """Make dynamo's recompile limit an error: past it, dynamo would run the pack eagerly and
    say nothing, and a compile measurement or check would be an eager one. torch >= 2.7 calls the
    switch fail_on_recompile_limit_hit, earlier ones fail_on_cache_limit_hit; a torch with neither
    cannot, so compile is SpeedUnsupported there. `config`: torch._dynamo.config (a stand-in in tests)."""
    if config is None:
        import torch._dynamo.config as config
    for name in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):
        if hasattr(config, name):
            setattr(config, name, True)
            return
    raise SpeedUnsupported(f"torch {torch.__version__} has no switch that makes dynamo's recompile limit an error "
                           "(fail_on_recompile_limit_hit, fail_on_cache_limit_hit), and past the limit a compiled "
                           "pack would run eagerly, unreported")


def compile_counts() -> dict[str, int]:
    """Dynamo's counts since its last reset: graphs compiled and graph breaks."""
    from torch._dynamo.utils import counters
    return {"graphs": int(counters["stats"]["unique_graphs"]),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


class GraphedSteps:
    """The loop's step (`Loop.body` of harness.engine.loop: the D step, then the G step) as one CUDA graph.

    The batch and z are drawn as the eager loop draws them (outside the graph, from the seeds'
    streams) and copied into the graph's static inputs; then the graph replays the forward passes,
    losses, backward passes and both optimizers' updates in one launch. The first WARMUP steps run
    eagerly on a side stream (cuBLAS workspaces, gradient buffers, optimizer state), as torch
    advises before a capture; the step after them is captured, then replayed. What the graph reads
    and writes is static: parameters, their gradient buffers, optimizer state, a family's state
    (updated in place), the frozen-member mask. Random numbers drawn inside the step (the pack's
    dropout masks) come from generators registered with the graph, so every replay draws anew."""
    WARMUP = 3

    def __init__(self, body, streams: Streams, data: torch.Tensor, B: int, nz: int,
                 generators: list[torch.Generator]):
        self.body, self.streams, self.data, self.B, self.nz = body, streams, data, B, nz
        self.generators = generators
        self.side = torch.cuda.Stream()
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, start: int, g_step: bool) -> tuple:
        real, z = self.streams.batch(self.data, start, self.B), self.streams.randn(self.B, self.nz)
        self.calls += 1
        if self.calls <= self.WARMUP:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                out = self.body(real, z, g_step)
            torch.cuda.current_stream().wait_stream(self.side)
            return out
        if self.graph is None:
            self.capture(real, z, g_step)
        self.real.copy_(real)
        self.z.copy_(z)
        self.graph.replay()
        return self.out

    def capture(self, real: torch.Tensor, z: torch.Tensor, g_step: bool) -> None:
        self.real, self.z = real.clone(), z.clone()
        graph = torch.cuda.CUDAGraph()
        if self.generators:
            register = getattr(graph, "register_generator_state", None)
            if register is None:
                raise RuntimeError(f"this PyTorch ({torch.__version__}) cannot register a generator of its own "
                                   "with a CUDA graph (the pack's dropout masks); run without graph")
            for g in self.generators:
                register(g)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            self.out = self.body(self.real, self.z, g_step)
        self.graph = graph
