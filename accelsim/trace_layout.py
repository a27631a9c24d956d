"""Where each tensor of a step lives: base addresses as a caching allocator places them.

The first concern of tracing a step (`accelsim.trace`): addresses make reuse visible to the
cache model, so weights keep one address for the whole step and freed activations are reused.
"""

from __future__ import annotations

import attrs
import numpy as np

from accelsim.graph import OpGraph

#: Kinds whose output may reuse the buffer of an input read for the last time (TF-style buffer
#: forwarding); a gradient running sum is then updated in place.
INPLACE_KINDS = ("elementwise", "update")


@attrs.frozen(eq=False)
class TensorLayout:
    """Base address of every tensor (indexed by tensor id) and the address space's size."""

    bases: np.ndarray
    size_bytes: int


def align_up(x: int, a: int) -> int:
    """`x` rounded up to a multiple of `a`."""
    return (x + a - 1) // a * a


def allocate(graph: OpGraph, align_bytes: int) -> TensorLayout:
    """Base address per tensor, as a caching allocator would place them in program order.

    Weights, optimizer state and graph inputs are placed first and never move (so they can
    stay resident across the step). Other tensors are allocated when produced and freed after
    their last use; a freed range is reused by the next tensor of the same aligned size, most
    recently freed first. An elementwise output may take over an input read for the last time
    (buffer forwarding), so a gradient running sum stays in one buffer.
    """
    tensors = graph.tensors
    n = len(tensors)
    base = np.full(n, -1, np.int64)
    size = [align_up(max(t.nbytes, 1), align_bytes) for t in tensors]
    last_use = np.full(n, -1, np.int64)
    for i, op in enumerate(graph.ops):
        for t in (*op.inputs, *op.outputs):
            last_use[t] = i
    fixed = [t.persistent or graph.producer(t.id) is None for t in tensors]
    # Tensors an op uses as one buffer (`Op.contiguous`) share one range, reserved when the
    # first of them is produced and freed after the last use of any.
    group_of, offset = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    groups: list[tuple[int, ...]] = []
    for op in graph.ops:
        for stack in op.contiguous:
            if group_of[stack[0]] >= 0:
                continue
            at = 0
            for t in stack:
                group_of[t], offset[t] = len(groups), at
                at += size[t]
            groups.append(stack)
    group_base = np.full(len(groups), -1, np.int64)
    group_size = [sum(size[t] for t in g) for g in groups]
    group_last = [max(int(last_use[t]) for t in g) for g in groups]
    group_fixed = [any(fixed[t] for t in g) for g in groups]
    top = 0
    for tensor in tensors:
        if fixed[tensor.id]:
            g = int(group_of[tensor.id])
            if g < 0:
                base[tensor.id] = top
                top += size[tensor.id]
                continue
            # a stack with a member this graph does not produce (a stage's received input)
            # is placed with the fixed tensors, whole, and never freed
            if group_base[g] < 0:
                group_base[g] = top
                top += group_size[g]
            base[tensor.id] = group_base[g] + offset[tensor.id]
    free: dict[int, list[int]] = {}
    donated = np.zeros(n, bool)
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            if base[t] >= 0:
                continue
            g = int(group_of[t])
            if g >= 0:
                if group_base[g] < 0:
                    pool = free.get(group_size[g])
                    group_base[g] = pool.pop() if pool else top
                    top = max(top, int(group_base[g]) + group_size[g])
                base[t] = group_base[g] + offset[t]
                continue
            if op.kind in INPLACE_KINDS or op.accumulate:
                # a fused GEMM accumulates into its addend (inputs[2]), never into A or B
                for s in (op.inputs[2:] if op.accumulate else op.inputs):
                    if (not fixed[s] and not donated[s] and last_use[s] == i and group_of[s] < 0
                            and size[s] == size[t] and s not in op.outputs and base[s] >= 0):
                        base[t] = base[s]
                        donated[s] = True
                        break
                if base[t] >= 0:
                    continue
            pool = free.get(size[t])
            if pool:
                base[t] = pool.pop()
            else:
                base[t] = top
                top += size[t]
        for t in {*op.inputs, *op.outputs}:
            if (last_use[t] == i and not fixed[t] and not donated[t] and base[t] >= 0
                    and group_of[t] < 0):
                free.setdefault(size[t], []).append(int(base[t]))
        for g in {int(group_of[t]) for t in (*op.inputs, *op.outputs) if group_of[t] >= 0}:
            if group_last[g] == i and group_base[g] >= 0 and not group_fixed[g]:
                free.setdefault(group_size[g], []).append(int(group_base[g]))
    return TensorLayout(bases=base, size_bytes=top)


__all__ = ["INPLACE_KINDS", "TensorLayout", "align_up", "allocate"]
