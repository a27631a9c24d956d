"""Execution-graph passes: what a real kernel library fuses, applied to the algorithmic graph.

The algorithmic graph follows the framework op by op (Catamount's counting rules need that:
a weight gradient is a GEMM, then an AddN into the running sum). A GPU library runs the pair
as one GEMM whose epilogue adds into the accumulator (cuBLAS beta = 1, cuDNN's RNN weight
gradients): the per-timestep gradient is never written out, and the accumulator stays in one
buffer. That changes what a cache must hold to keep a recurrent layer resident, so the replay
runs on the fused graph while the report's algorithmic counts come from the original.
"""

from __future__ import annotations

import attrs

from accelsim.graph import Op, OpGraph


def fuse_gemm_accumulate(graph: OpGraph) -> tuple[OpGraph, int]:
    """Fold each `accumulate`-tagged add into the GEMM producing its new contribution.

    Pattern: G = gemm (batch 1) -> T, consumed only by A = add(prev, T) -> S with T and S of
    one shape. Result: G' = gemm(a, b, prev) -> S with `accumulate=True` and the add's FLOPs,
    placed where A was (prev may be produced between G and A). Returns the new graph and the
    number of fusions.
    """
    producer = {t: op.id for op in graph.ops for t in op.outputs}
    fused_into: dict[int, Op] = {}  # add op id -> replacement GEMM
    dropped: set[int] = set()
    for add in graph.ops:
        if add.tag != "accumulate" or len(add.inputs) != 2 or len(add.outputs) != 1:
            continue
        prev, contrib = add.inputs
        g_id = producer.get(contrib)
        if g_id is None:
            continue
        gemm = graph.ops[g_id]
        out = graph.tensors[add.outputs[0]]
        if (gemm.kind != "gemm" or gemm.batch_count != 1 or gemm.accumulate or g_id in dropped
                or graph.consumers(contrib) != [add.id]
                or graph.tensors[contrib].shape != out.shape
                or graph.tensors[prev].shape != out.shape):
            continue
        fused_into[add.id] = attrs.evolve(
            gemm, name=gemm.name, inputs=(*gemm.inputs[:2], prev), outputs=add.outputs,
            flops=gemm.flops + add.flops, accumulate=True, deps=tuple(sorted(
                {*gemm.deps, *add.deps})))
        dropped.add(g_id)
    if not fused_into:
        return graph, 0
    kept = [op for op in graph.ops if op.id not in dropped]
    remap = {op.id: new_id for new_id, op in enumerate(kept)}
    ops = []
    for new_id, old_op in enumerate(kept):
        source = fused_into.get(old_op.id, old_op)
        ops.append(attrs.evolve(source, id=new_id,
                                deps=tuple(remap[d] for d in source.deps if d in remap)))
    return OpGraph(graph.name, graph.tensors, ops), len(fused_into)
