"""Execution-graph passes: what a real kernel library fuses, applied to the algorithmic graph.

The algorithmic graph follows the framework op by op (Catamount's counting rules need that:
a weight gradient is a GEMM, then an AddN into the running sum). A GPU library runs the pair
as one GEMM whose epilogue adds into the accumulator (cuBLAS beta = 1, cuDNN's RNN weight
gradients): the per-timestep gradient is never written out, and the accumulator stays in one
buffer. That changes what a cache must hold to keep a recurrent layer resident, so the replay
runs on the fused graph while the report's algorithmic counts come from the original.

A kernel library goes further for a recurrent layer (cuDNN's RNN weight gradient): it keeps
every timestep's layer input and gate gradient in one contiguous buffer (the reserve space)
and computes the weight gradient as ONE GEMM over all timesteps, dW = [x_0; ...; x_T]^T @
[dz_0; ...; dz_T], after the backward loop, instead of T GEMMs that each read and write the
whole gradient (`stack_recurrent_weight_gradients`); and it multiplies the inputs of all
timesteps by the input rows of the kernel in one GEMM before the loop, so each timestep
multiplies only the recurrent state (`hoist_recurrent_input_gemms`). `execute` applies the
passes in order; `vocabulary.RECURRENT_EXECUTIONS` names the two ways a recurrent layer can
run (workload `recurrent_execution`: "library", the default, or "framework", which keeps the
per-timestep accumulation).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from accelsim.graph import Op, OpGraph, Tensor
from accelsim.vocabulary import RECURRENT_EXECUTIONS


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
    return _rebuild(graph, fused_into, dropped), len(fused_into)


def _rebuild(graph: OpGraph, replaced: dict[int, Op], dropped: set[int],
             inserted: dict[int, Op] | None = None) -> OpGraph:
    """`graph` with ops `dropped` removed, ops `replaced` by others and new ops `inserted`
    before the op of the given id; ids and deps renumbered (deps name old ids)."""
    inserted = inserted or {}
    order: list[tuple[int | None, Op]] = []
    for op in graph.ops:
        if op.id in inserted:
            order.append((None, inserted[op.id]))
        if op.id not in dropped:
            order.append((op.id, replaced.get(op.id, op)))
    remap = {old: new_id for new_id, (old, _op) in enumerate(order) if old is not None}
    ops = [attrs.evolve(source, id=new_id,
                        deps=tuple(remap[d] for d in source.deps if d in remap))
           for new_id, (_old, source) in enumerate(order)]
    return OpGraph(graph.name, graph.tensors, ops)


def _accumulation_chains(graph: OpGraph) -> list[tuple[list[int], list[int]]]:
    """Each running sum of gradient contributions: (accumulate add ids in order, contribution
    tensor ids in order), the first contribution being the sum's starting value."""
    producer = {t: op.id for op in graph.ops for t in op.outputs}
    adds = {op.id: op for op in graph.ops
            if op.tag == "accumulate" and len(op.inputs) == 2 and len(op.outputs) == 1}
    continued = {producer.get(op.inputs[0]) for op in adds.values()}
    chains = []
    for last in adds:
        if last in continued:
            continue  # not the end of its chain
        chain_adds, contribs = [], []
        a, plain = last, True
        while True:
            chain_adds.append(a)
            contribs.append(adds[a].inputs[1])
            prev = adds[a].inputs[0]
            nxt = producer.get(prev)
            if nxt not in adds:
                contribs.append(prev)
                break
            if graph.consumers(prev) != [a]:
                plain = False  # an intermediate sum read elsewhere: not a plain running sum
                break
            a = nxt
        if plain:
            chains.append((chain_adds[::-1], contribs[::-1]))
    return chains


def stack_recurrent_weight_gradients(graph: OpGraph) -> tuple[OpGraph, int]:
    """Run each recurrent weight gradient as one GEMM over all timesteps (cuDNN style).

    Pattern: a running sum (`accumulate`-tagged adds) of two or more contributions, each a
    batch-1 GEMM dW_t = A_t^T @ B_t (trans_a, not trans_b: K is the timestep's batch rows of
    both stored operands) of one (m, n), consumed only by the sum. Because
    sum_t A_t^T B_t = [A_0; ...]^T [B_0; ...], the chain becomes one GEMM with K = sum of the
    K_t, whose A and B are the timesteps' tensors stacked (`Op.k_segments`; `trace_layout`
    stores each stack contiguously, as the reserve space does). It runs where the sum was
    complete and writes the sum's tensor; its FLOPs are the chain's (GEMMs and adds), so the
    executed graph keeps the algorithmic FLOPs. A chain is left alone if an operand is a
    weight or graph input (fixed address), appears twice, or already belongs to a different
    stack. Returns the new graph and the number of GEMMs stacked away.
    """
    producer = {t: op.id for op in graph.ops for t in op.outputs}
    member_of = _stacks_of(graph)  # tensor -> the stack it is stored in
    replaced: dict[int, Op] = {}
    dropped: set[int] = set()
    removed = 0
    for chain_adds, contribs in _accumulation_chains(graph):
        if len(contribs) < 2 or any(c not in producer for c in contribs):
            continue
        gemms = [graph.ops[producer[c]] for c in contribs]
        if any(g.kind != "gemm" or g.batch_count != 1 or g.accumulate
                or g.k_segments != 1 or not g.trans_a or g.trans_b
                or len(g.inputs) != 2 or len(g.outputs) != 1
                or (g.m, g.n) != (gemms[0].m, gemms[0].n) for g in gemms):
            continue
        if any(graph.consumers(c) != [a] for c, a in zip(contribs[1:], chain_adds, strict=True)) \
                or graph.consumers(contribs[0]) != [chain_adds[0]]:
            continue
        stacks = (tuple(g.inputs[0] for g in gemms), tuple(g.inputs[1] for g in gemms))
        if not _can_stack(graph, stacks, member_of):
            continue
        for stack in stacks:
            for t in stack:
                member_of[t] = stack
        last = graph.ops[chain_adds[-1]]
        ids = {g.id for g in gemms} | set(chain_adds)
        deps = {d for i in ids for d in graph.ops[i].deps} - ids
        inputs = (stacks[0][0], stacks[1][0], *stacks[0][1:], *stacks[1][1:])
        replaced[last.id] = attrs.evolve(
            gemms[0], name=f"{gemms[0].name}/all_timesteps", inputs=inputs,
            outputs=last.outputs, k=sum(g.k for g in gemms), k_segments=len(gemms),
            contiguous=stacks,
            flops=sum(graph.ops[i].flops for i in ids), phase=last.phase,
            deps=tuple(sorted(deps)))
        dropped |= ids - {last.id}
        removed += len(gemms) - 1
    if not replaced:
        return graph, 0
    return _rebuild(graph, replaced, dropped), removed


def _can_stack(graph: OpGraph, stacks: Sequence[tuple[int, ...]],
               member_of: dict[int, tuple[int, ...]]) -> bool:
    """Every tensor of each stack is allocated when produced (not a weight or graph input),
    appears once, and is in no other stack (two chains may share one identical stack)."""
    for stack in stacks:
        if len(set(stack)) != len(stack):
            return False
        for t in stack:
            if graph.tensors[t].persistent or graph.producer(t) is None:
                return False
            if member_of.get(t, stack) != stack:
                return False
    return set(stacks[0]).isdisjoint(stacks[1])


def _stacks_of(graph: OpGraph) -> dict[int, tuple[int, ...]]:
    """Tensor -> the contiguous group (`Op.contiguous`) it is already stored in."""
    return {t: stack for op in graph.ops for stack in op.contiguous for t in stack}


def _concat_parts(graph: OpGraph, tensor_id: int) -> tuple[int, ...] | None:
    """The inputs of the data op that produced `tensor_id` when it concatenates 2-D tensors of
    the same rows along their columns (`Net.concat` of a timestep's input and state)."""
    p = graph.producer(tensor_id)
    if p is None:
        return None
    op = graph.ops[p]
    out = graph.tensors[tensor_id].shape
    parts = [graph.tensors[t].shape for t in op.inputs]
    if (op.kind != "data" or len(op.inputs) < 2 or len(op.outputs) != 1 or len(out) != 2
            or any(len(s) != 2 or s[0] != out[0] for s in parts)
            or sum(s[1] for s in parts) != out[1]):
        return None
    return op.inputs


def hoist_recurrent_input_gemms(graph: OpGraph) -> tuple[OpGraph, int]:
    """Run the input half of a recurrent layer's per-timestep GEMMs as one GEMM before the loop.

    Pattern: a weight W read by two or more forward GEMMs z_t = concat(x_t, h_t) @ W (batch 1,
    neither operand transposed, one shape), where every x_t exists before the first of them
    (it does not depend on the recurrence). A kernel library (cuDNN) computes
    [x_0; ...; x_T] @ W_x for all timesteps in one GEMM before the loop and, per timestep, only
    h_t @ W_h added to that timestep's slice (the GEMM's epilogue reads it). So the loop reads
    only W's recurrent rows each timestep. The x_t and the slices are stored contiguously
    (`Op.contiguous`); the concat stays (the weight gradient reads it). FLOPs are unchanged:
    the hoisted GEMM has the x-part FLOPs of all timesteps, each step keeps the h-part. Inputs
    that depend on the recurrence (a decoder fed its previous attention) are not hoisted.
    Returns the new graph and the number of GEMMs hoisted (one per layer).
    """
    member_of = _stacks_of(graph)
    uses: dict[int, list[Op]] = {}
    for op in graph.ops:
        if (op.kind == "gemm" and op.phase == "forward" and len(op.inputs) == 2
                and not op.accumulate and op.batch_count == 1 and not op.trans_a
                and not op.trans_b and graph.tensors[op.inputs[1]].role == "weight"):
            uses.setdefault(op.inputs[1], []).append(op)
    tensors = list(graph.tensors)
    replaced: dict[int, Op] = {}
    inserted: dict[int, Op] = {}  # before old op id -> new op
    hoisted = 0
    for w, steps in uses.items():
        if len(steps) < 2 or any((g.m, g.n, g.k) != (steps[0].m, steps[0].n, steps[0].k)
                                 for g in steps):
            continue
        parts = [_concat_parts(graph, g.inputs[0]) for g in steps]
        pairs = [p for p in parts if p is not None and len(p) == 2]
        if len(pairs) != len(steps):
            continue
        xs = [p[0] for p in pairs]
        hs = [p[1] for p in pairs]
        first = steps[0].id
        k_x = tensors[xs[0]].shape[1]
        made_at = [graph.producer(x) for x in xs]
        if (any(at is None or at >= first for at in made_at)
                or any(tensors[x].shape[1] != k_x for x in xs)
                or any(tensors[x].persistent for x in xs) or len(set(xs)) != len(xs)):
            continue
        x_stack = tuple(sorted(xs, key=lambda x: (graph.producer(x) or 0, x)))
        if any(member_of.get(x, x_stack) != x_stack for x in x_stack):
            continue
        m, n, k = steps[0].m, steps[0].n, steps[0].k
        k_h = k - k_x
        slices = []
        for x in x_stack:
            piece = Tensor(id=len(tensors), name=f"{tensors[x].name}/input_gemm", shape=(m, n),
                           dtype=tensors[steps[0].outputs[0]].dtype, role="activation")
            tensors.append(piece)
            slices.append(piece.id)
        slice_of = dict(zip(x_stack, slices, strict=True))
        w_name = tensors[w].name
        inserted[first] = Op(
            id=-1, name=f"{w_name}/input_gemm/all_timesteps", kind="gemm", phase="forward",
            inputs=(x_stack[0], w, *x_stack[1:]), outputs=tuple(slices),
            flops=2.0 * m * len(steps) * k_x * n, m=m * len(steps), n=n, k=k_x,
            layer=steps[0].layer, contiguous=(x_stack, tuple(slices)))
        for g, x, h in zip(steps, xs, hs, strict=True):
            replaced[g.id] = attrs.evolve(
                g, inputs=(h, w, slice_of[x]), k=k_h, b_row_offset=k_x, accumulate=True,
                flops=2.0 * m * k_h * n)
        for t in x_stack:
            member_of[t] = x_stack
        hoisted += 1
    if not hoisted:
        return graph, 0
    return _rebuild(OpGraph(graph.name, tensors, graph.ops), replaced, set(), inserted), hoisted


def execute(graph: OpGraph, recurrent: str = "library") -> tuple[OpGraph, dict[str, int]]:
    """The executed graph of an algorithmic one: with `recurrent="library"` recurrent weight
    gradients run as one GEMM over all timesteps and recurrent input GEMMs are hoisted out of
    the loop, then every remaining gradient accumulation folds into its GEMM's epilogue.
    Returns the graph and what each pass did (GEMMs stacked away, GEMMs hoisted, folds)."""
    if recurrent not in RECURRENT_EXECUTIONS:
        raise ValueError(f"recurrent execution {recurrent!r}: expected one of "
                         f"{', '.join(RECURRENT_EXECUTIONS)}")
    stacked = hoisted = 0
    if recurrent == "library":
        graph, stacked = stack_recurrent_weight_gradients(graph)
        graph, hoisted = hoist_recurrent_input_gemms(graph)
    graph, fused = fuse_gemm_accumulate(graph)
    return graph, {"stacked_weight_gradients": stacked, "hoisted_input_gemms": hoisted,
                   "fused_accumulations": fused}
