"""Op graph of one training step: tensors, ops, and the paper's algorithmic counts.

Counting rules follow the paper's tool, Catamount (see docs/counting.md): a matrix multiply is
2*K FLOPs per output element; an op accesses the bytes of all its inputs plus all its outputs;
the minimal footprint is the peak of live bytes when ops run in program order, each output
allocated when its op runs and each tensor freed after its last consumer. Nothing here knows
hardware.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs
import numpy as np

from accelsim.vocabulary import dtype_bytes

TENSOR_ROLES = ("weight", "input", "activation", "gradient", "weight_gradient", "optimizer_state")
OP_KINDS = ("gemm", "elementwise", "reduce", "softmax", "data", "update")
PHASES = ("forward", "backward", "update")
_LIVE, _FREED = 1, 2


@attrs.define(slots=True, eq=False)
class Tensor:
    """A value in the step. Weights, inputs and optimizer state live for the whole step."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * dtype_bytes(self.dtype)

    @property
    def persistent(self) -> bool:
        return self.role in ("weight", "optimizer_state")


@attrs.frozen(slots=True, eq=False)
class Op:
    """One kernel of the step.

    GEMMs carry `m, n, k` (C[m,n] = op(A)[m,k] @ op(B)[k,n], `batch_count` independent products
    of a batched GEMM; unrelated to the workload's subbatch);
    convolutions are lowered to their implicit GEMM. Others carry their FLOPs directly.
    `signature` is equal for ops that are the same computation on other data (e.g. one LSTM
    timestep and the next), so per-shape work (tiling, timing) is done once.
    """

    id: int
    name: str
    kind: str
    phase: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    flops: float
    m: int = 0
    n: int = 0
    k: int = 0
    batch_count: int = 1
    trans_a: bool = False
    trans_b: bool = False
    extra_bytes: int = 0
    layer: str = ""
    deps: tuple[int, ...] = ()
    #: GEMM only: C = A@B + D with D = inputs[2] read in the epilogue (beta = 1), as a fused
    #: gradient accumulation runs; set by `accelsim.fusion`, never by model builders.
    accumulate: bool = False
    #: What an op is for, when its kind does not say: "accumulate" marks a running sum of
    #: gradient contributions (what `accelsim.fusion` folds into the producing GEMM).
    tag: str = ""
    #: GEMM only: A and B are each `k_segments` tensors stacked along K (one recurrent weight
    #: gradient over all timesteps, `accelsim.fusion.stack_recurrent_weight_gradients`).
    k_segments: int = 1
    #: Groups of tensors this op reads or writes as one buffer each, stored one after the other
    #: in the group's order (as a kernel library's reserve space holds a recurrent layer's
    #: timesteps); a GEMM's operand is the group starting at inputs[0] / inputs[1] /
    #: outputs[0]. `trace_layout` allocates each group as one range. Set by `accelsim.fusion`.
    contiguous: tuple[tuple[int, ...], ...] = ()
    #: GEMM only: B starts this many rows into inputs[1] (a recurrent step reading the rows of
    #: a weight that its hoisted input GEMM did not).
    b_row_offset: int = 0

    @property
    def signature(self) -> tuple:
        return (self.kind, self.m, self.n, self.k, self.batch_count, self.trans_a, self.trans_b,
                self.flops, self.accumulate)


class OpGraph:
    """Tensors and ops of one training step, ops in a valid program (topological) order."""

    def __init__(self, name: str, tensors: Sequence[Tensor], ops: Sequence[Op]) -> None:
        self.name = name
        self.tensors = list(tensors)
        self.ops = list(ops)
        self._producer: dict[int, int] = {}
        self._consumers: dict[int, list[int]] = {}
        for op in self.ops:
            for t in op.outputs:
                self._producer.setdefault(t, op.id)
            for t in op.inputs:
                self._consumers.setdefault(t, []).append(op.id)

    def _used(self, t: Tensor) -> bool:
        """A tensor some op reads or writes (a graph pass may orphan tensors it fused away)."""
        return t.id in self._producer or t.id in self._consumers

    # --- structure -------------------------------------------------------------------------
    def producer(self, tensor_id: int) -> int | None:
        return self._producer.get(tensor_id)

    def consumers(self, tensor_id: int) -> list[int]:
        return self._consumers.get(tensor_id, [])

    def predecessors(self, op: Op) -> list[int]:
        """Ops whose outputs `op` reads (data dependencies), plus explicit extra deps."""
        preds = {self._producer[t] for t in op.inputs if t in self._producer}
        preds.discard(op.id)
        preds.update(op.deps)
        return sorted(p for p in preds if p < op.id)

    # --- algorithmic counts ------------------------------------------------------------------
    @property
    def params(self) -> int:
        return sum(t.elements for t in self.tensors if t.role == "weight")

    @property
    def flops(self) -> float:
        return float(sum(op.flops for op in self.ops))

    def op_bytes(self, op: Op) -> int:
        """Bytes an op reads plus writes, by the tensor sizes of its inputs and outputs."""
        tensors = self.tensors
        return (sum(tensors[t].nbytes for t in op.inputs)
                + sum(tensors[t].nbytes for t in op.outputs) + op.extra_bytes)

    @property
    def bytes_accessed(self) -> int:
        return sum(self.op_bytes(op) for op in self.ops)

    @property
    def total_footprint_bytes(self) -> int:
        """Every tensor's bytes, as if nothing were ever freed."""
        return sum(t.nbytes for t in self.tensors if self._used(t))

    def footprint_by_role(self) -> dict[str, int]:
        out = dict.fromkeys(TENSOR_ROLES, 0)
        for t in self.tensors:
            if self._used(t):
                out[t.role] += t.nbytes
        return out

    def minimal_footprint_bytes(self) -> int:
        """Peak live bytes walking ops in program order (the paper's minimal footprint).

        Persistent tensors (weights, optimizer state) and graph inputs are live from the start;
        an op's outputs are allocated when it runs; a tensor is freed after its last consumer
        unless persistent. An op's inputs and outputs are live together while it runs, except
        that an accumulating GEMM (C += A@B, `Op.accumulate`: only in the executed graph) writes
        into its addend's buffer, which it reads for the last time.
        """
        return int(self._walk()[0].max(initial=0))

    def peak_footprint_by_role(self) -> dict[str, int]:
        """Live bytes per tensor role at the peak: what the minimal footprint is made of."""
        return self._walk()[1]

    def live_bytes_profile(self) -> np.ndarray:
        """Live bytes while each op runs (inputs and outputs of the op included)."""
        return self._walk()[0]

    def _walk(self) -> tuple[np.ndarray, dict[str, int]]:
        last_use: dict[int, int] = {}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                last_use[t] = i
        tensors = self.tensors
        by_role = dict.fromkeys(TENSOR_ROLES, 0)
        state: dict[int, int] = {}
        for t in tensors:
            if self._used(t) and (t.persistent or t.id not in self._producer):
                state[t.id] = _LIVE
                by_role[t.role] += t.nbytes
        live = sum(by_role.values())
        peak, peak_roles = -1.0, dict(by_role)
        profile = np.zeros(len(self.ops), dtype=np.float64)
        for i, op in enumerate(self.ops):
            for t in op.outputs:
                if t in state:
                    continue
                addend = op.inputs[2] if op.accumulate and len(op.inputs) > 2 else None
                if (addend is not None and state.get(addend) == _LIVE
                        and not tensors[addend].persistent and last_use.get(addend, -1) <= i
                        and tensors[addend].nbytes == tensors[t].nbytes):
                    # C += A@B writes into its addend's buffer: the sum changes name, not size
                    state[addend] = _FREED
                    by_role[tensors[addend].role] -= tensors[t].nbytes
                    by_role[tensors[t].role] += tensors[t].nbytes
                    state[t] = _LIVE
                    continue
                state[t] = _LIVE
                live += tensors[t].nbytes
                by_role[tensors[t].role] += tensors[t].nbytes
            profile[i] = live
            if live > peak:
                peak, peak_roles = live, dict(by_role)
            for t in (*op.inputs, *op.outputs):
                if state.get(t) == _LIVE and not tensors[t].persistent and last_use.get(t, -1) <= i:
                    state[t] = _FREED
                    live -= tensors[t].nbytes
                    by_role[tensors[t].role] -= tensors[t].nbytes
        return profile, peak_roles

    def summary(self) -> dict[str, float]:
        return {"params": self.params, "flops": self.flops, "bytes_accessed": self.bytes_accessed,
                "minimal_footprint_bytes": self.minimal_footprint_bytes(),
                "total_footprint_bytes": self.total_footprint_bytes}

    def weight_gradients(self) -> dict[int, tuple[int, int, int]]:
        """Update op index -> (weight tensor, its gradient, op producing the gradient): what a
        data-parallel step must all-reduce before each update."""
        out = {}
        for i, op in enumerate(self.ops):
            if op.kind != "update":
                continue
            w = next((t for t in op.inputs if self.tensors[t].role == "weight"), None)
            g = next((t for t in op.inputs if self.tensors[t].role == "weight_gradient"), None)
            p = self.producer(g) if g is not None else None
            if w is not None and g is not None and p is not None:
                out[i] = (w, g, p)
        return out

    def ops_by_phase(self, phase: str) -> list[Op]:
        return [op for op in self.ops if op.phase == phase]


class GraphBuilder:
    """Appends tensors and ops in program order; model builders call this, never OpGraph."""

    def __init__(self, name: str, dtype: str = "fp32") -> None:
        self.name = name
        self.dtype = dtype
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.phase = "forward"

    # --- tensors -----------------------------------------------------------------------------
    def tensor(self, name: str, shape: Iterable[int], role: str = "activation",
               dtype: str | None = None) -> Tensor:
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"tensor {name}: negative dimension in {shape}")
        t = Tensor(id=len(self.tensors), name=name, shape=shape, dtype=dtype or self.dtype,
                   role=role)
        self.tensors.append(t)
        return t

    def weight(self, name: str, shape: Iterable[int]) -> Tensor:
        return self.tensor(name, shape, role="weight")

    def input(self, name: str, shape: Iterable[int], dtype: str | None = None) -> Tensor:
        return self.tensor(name, shape, role="input", dtype=dtype)

    # --- ops ---------------------------------------------------------------------------------
    def op(self, name: str, kind: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
           flops: float, **fields: object) -> Op:
        op = Op(id=len(self.ops), name=name, kind=kind, phase=self.phase,
                inputs=tuple(t.id for t in inputs), outputs=tuple(t.id for t in outputs),
                flops=float(flops), **fields)  # type: ignore[arg-type]
        self.ops.append(op)
        return op

    def matmul(self, name: str, a: Tensor, b: Tensor, *, trans_a: bool = False,
               trans_b: bool = False, out_role: str = "activation") -> Tensor:
        """C = op(A) @ op(B): both 2-D, or both [batch..., rows, cols] with equal batch dims.

        2*M*N*K FLOPs per product (Catamount's MatMul/BatchMatMul rule).
        """
        if len(a.shape) != len(b.shape) or a.shape[:-2] != b.shape[:-2]:
            raise ValueError(f"{name}: operands must be 2-D or share batch dims, got "
                             f"{a.shape} x {b.shape}")
        (ar, ac), (br, bc) = a.shape[-2:], b.shape[-2:]
        m, ka = (ac, ar) if trans_a else (ar, ac)
        kb, n = (bc, br) if trans_b else (br, bc)
        if ka != kb:
            raise ValueError(f"{name}: inner dimensions differ ({a.shape} x {b.shape}, "
                             f"trans_a={trans_a}, trans_b={trans_b})")
        batch = math.prod(a.shape[:-2])
        c = self.tensor(f"{name}:out", (*a.shape[:-2], m, n), role=out_role)
        self.op(name, "gemm", [a, b], [c], 2.0 * m * n * ka * batch, m=m, n=n, k=ka,
                batch_count=batch, trans_a=trans_a, trans_b=trans_b)
        return c

    def pointwise(self, name: str, inputs: Sequence[Tensor], flops_per_element: float = 1.0,
                  shape: Iterable[int] | None = None, out_role: str = "activation",
                  kind: str = "elementwise", tag: str = "") -> Tensor:
        """An elementwise op over the output's elements."""
        out_shape = tuple(shape) if shape is not None else inputs[0].shape
        out = self.tensor(f"{name}:out", out_shape, role=out_role)
        self.op(name, kind, inputs, [out], flops_per_element * out.elements, tag=tag)
        return out

    def data(self, name: str, inputs: Sequence[Tensor], shape: Iterable[int],
             out_role: str = "activation") -> Tensor:
        """Shape-only ops (gather, concat, slice, transpose): bytes moved, no FLOPs."""
        out = self.tensor(f"{name}:out", shape, role=out_role)
        self.op(name, "data", inputs, [out], 0.0)
        return out

    def build(self) -> OpGraph:
        return OpGraph(self.name, self.tensors, self.ops)
