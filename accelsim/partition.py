"""Partition pass: one executed graph and a `ParallelPlan` -> one graph per distinct chip.

Runs beside `fusion`, on the executed graph. Chips of one pipeline stage run the same graph
(data-parallel replicas and tensor-parallel peers differ only in the data they hold), so the
pass returns one `Stage` per pipeline stage: its graph, the chips that run it, and the
communication it needs (`Transfer`s, priced by `accelsim.collectives`):

- layers: ops are grouped by the first component of their name (`lstm0/t3/matmul` ->
  `lstm0`; `grad/` and `update/` prefixes stripped), or the first two for a name that holds
  several layers (`encoder/fw`, `encoder/bw`: `deep_groups`); a group without weights (a
  reshape, the loss) joins the weighted layer before it. Stages are contiguous runs of layers.
- pipeline: a tensor one stage produces and another reads becomes an input of the reader;
  its bytes cross each stage boundary between them (`send`, per chunk).
- tensor parallel: every op is split `tensor` ways (a GEMM along the weight's split
  dimension, other ops by their elements); a forward GEMM that reads a weight is followed by an
  all-gather of its output, a backward GEMM that reads a weight (the data gradient, a partial
  sum) by an all-reduce of its output: Megatron's column-parallel layer applied to every layer.
- sharded embedding: each chip of a replica holds 1/(pipeline x tensor) of the table's rows
  (padded up), looks its rows up, and the rows are gathered to the stage that reads them
  (all-gather forward, reduce-scatter of the row gradients backward).
- data parallel: each weight gradient is all-reduced over the replicas after the op producing
  it; the weight's update waits for it.

FLOPs are conserved: the sum over chips equals `replicas x` the replica graph (exactly, when
the split sizes divide evenly). Against one chip running the global batch that is the
reference plus what the split adds (`overhead_flops`): work every replica repeats whatever its
batch (weight updates, the running sums of weight gradients over timesteps, embedding-gradient
scatters), shards padded to equal rows, dimensions rounded up.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from accelsim.errors import LocatedError
from accelsim.graph import Op, OpGraph, Tensor
from accelsim.plan import ParallelPlan

GROUPS = ("data", "tensor", "pipeline", "shard")
_TIMESTEP = re.compile(r"/t(\d+)/")


@attrs.frozen
class Transfer:
    """One collective (or send) a stage's chips take part in."""

    kind: str          # all_reduce, all_gather, reduce_scatter, send
    nbytes: float      # the whole buffer on one chip
    group: str         # which chips: one of GROUPS
    phase: str         # forward, backward
    after_op: int      # index of the op (in the stage graph) whose output it moves; -1: none
    what: str          # tensor name, for reports
    per_chunk: bool = False  # pipeline sends happen once per chunk (timestep / microbatch)
    to_stage: int = -1  # send: the receiving stage


@attrs.frozen
class PipelineEdge:
    """A dependency of the executed graph between two stages: op `from_op` of stage
    `from_stage` before op `to_op` of stage `to_stage` (indices in the stage graphs), with the
    bytes sent for it (`what`; 0: an order dependency, nothing sent)."""

    from_stage: int
    from_op: int
    to_stage: int
    to_op: int
    what: str
    nbytes: float


@attrs.define(eq=False)
class Stage:
    """One pipeline stage: the graph each of its chips runs and what it sends."""

    index: int
    layers: tuple[str, ...]
    graph: OpGraph
    chips: int
    transfers: tuple[Transfer, ...]

    def key(self) -> tuple:
        """Equal for stages whose chips would simulate identically (results are reused)."""
        g = self.graph
        return (tuple((op.signature, op.inputs, op.outputs, op.deps) for op in g.ops),
                tuple((t.shape, t.dtype, t.role) for t in g.tensors))


@attrs.define(eq=False)
class Partition:
    """A plan applied to a graph."""

    plan: ParallelPlan
    stages: list[Stage]
    layers: tuple[str, ...]
    schedule: str
    chunks: int
    replica_flops: float     # the unsplit replica graph's FLOPs
    update_flops: float      # of which the weight updates
    replicated_flops: float = 0.0  # of the replica's FLOPs, what every tensor-parallel chip repeats

    @property
    def chips(self) -> int:
        return sum(s.chips for s in self.stages)

    @property
    def total_flops(self) -> float:
        """FLOPs over every chip of the system."""
        return float(sum(s.graph.flops * s.chips for s in self.stages))

    #: FLOPs of one chip running the whole global batch: the global-batch graph's when the
    #: caller built it, else the replica's times the replicas less the repeated updates.
    reference: float | None = None

    #: dependencies between stages (the pipeline schedule's cross-stage edges)
    edges: tuple[PipelineEdge, ...] = ()

    @property
    def reference_flops(self) -> float:
        if self.reference is not None:
            return self.reference
        dp = self.plan.data or 1
        return dp * self.replica_flops - (dp - 1) * self.update_flops

    @property
    def overhead_flops(self) -> float:
        """What the split adds: repeated updates, padded shards, unsplit ops."""
        return self.total_flops - self.reference_flops


# --- layers ----------------------------------------------------------------------------------
def layer_of_name(name: str, deep: frozenset[str] = frozenset()) -> str:
    """`grad/lstm1/t0/h:out/accumulate` -> `lstm1`; `update/softmax/kernel` -> `softmax`;
    `encoder/fw/t3/matmul` -> `encoder/fw` when `encoder` is in `deep`."""
    for prefix in ("grad/", "update/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    parts = name.split(":", 1)[0].split("/")
    if parts[0] in deep and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0]


def deep_groups(graph: OpGraph) -> frozenset[str]:
    """Top-level names that hold several layers (`encoder` of `encoder/fw`, `encoder/bw`).

    A top-level name is split one level deeper when it is not itself a numbered block
    (`layer3`, `stage1`), every weight under it is named at least three deep, and each of
    their second components also names forward ops: then each is a layer with its own ops.
    """
    weights: dict[str, set[str]] = {}
    shallow: set[str] = set()
    for t in graph.tensors:
        if t.role != "weight":
            continue
        parts = t.name.split("/")
        if len(parts) < 3:
            shallow.add(parts[0])
        else:
            weights.setdefault(parts[0], set()).add(parts[1])
    op_groups = {tuple(op.name.split("/")[:2]) for op in graph.ops if op.phase == "forward"}
    return frozenset(top for top, subs in weights.items()
                     if top not in shallow and not top[-1:].isdigit() and len(subs) > 1
                     and all((top, sub) in op_groups for sub in subs))


def op_layers(graph: OpGraph) -> tuple[list[str], list[int]]:
    """The graph's layers in forward order and each op's layer index."""
    deep = deep_groups(graph)
    weighted = {layer_of_name(t.name, deep) for t in graph.tensors if t.role == "weight"}
    order: list[str] = []
    for op in graph.ops:
        name = layer_of_name(op.name, deep)
        if op.phase == "forward" and name not in order:
            order.append(name)
    for op in graph.ops:
        name = layer_of_name(op.name, deep)
        if name not in order:
            order.append(name)
    # weightless groups join the weighted layer before them (or the first one after)
    home: dict[str, str] = {}
    last = None
    for name in order:
        if name in weighted:
            last = name
        home[name] = name if name in weighted else (last or "")
    first_weighted = next((n for n in order if n in weighted), order[0] if order else "")
    layers = [n for n in order if n in weighted] or [first_weighted]
    index = {n: i for i, n in enumerate(layers)}
    of_op = [index.get(home.get(layer_of_name(op.name, deep)) or first_weighted, 0)
             for op in graph.ops]
    return layers, of_op


def _balanced_groups(costs: list[tuple[float, float]], parts: int) -> list[int]:
    """Contiguous split of `costs` into `parts` groups minimizing the largest group sum
    (compared lexicographically: weight bytes first, then FLOPs); layers per group.

    Minimizing the largest weight bytes first makes the split monotone: one more stage never
    raises the most any stage holds (the optimum over k+1 groups is at most that over k).
    """
    n = len(costs)
    prefix = [(0.0, 0.0)]
    for a, b in costs:
        prefix.append((prefix[-1][0] + a, prefix[-1][1] + b))
    inf = (float("inf"), float("inf"))
    best = [[inf] * (n + 1) for _ in range(parts + 1)]
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = (0.0, 0.0)
    for k in range(1, parts + 1):
        for j in range(k, n + 1):
            for i in range(k - 1, j):
                group = (prefix[j][0] - prefix[i][0], prefix[j][1] - prefix[i][1])
                v = max(best[k - 1][i], group)
                if v < best[k][j]:
                    best[k][j], cut[k][j] = v, i
    sizes, j = [], n
    for k in range(parts, 0, -1):
        i = cut[k][j]
        sizes.append(j - i)
        j = i
    return sizes[::-1]


def recurrent_steps(graph: OpGraph) -> int:
    """Timesteps of an unrolled recurrent graph (0: not recurrent)."""
    steps = {int(m.group(1)) for op in graph.ops if op.phase == "forward"
             for m in [_TIMESTEP.search(op.name)] if m}
    return max(steps) + 1 if len(steps) > 1 else 0


# --- the pass --------------------------------------------------------------------------------
def partition(graph: OpGraph, plan: ParallelPlan, *, subbatch: int,
              reference_flops: float | None = None) -> Partition:
    """Apply a resolved `plan` (data degree known) to the executed `graph`.

    `reference_flops`: the FLOPs of the global-batch graph, if the caller built it.
    """
    layers, of_op = op_layers(graph)
    pp, tp = plan.pipeline, plan.tensor
    if pp > len(layers):
        raise LocatedError(
            "plan", "plan", "parallel.pipeline", f"at most {len(layers)} stages (the model's "
            f"layers: {', '.join(layers)})", str(pp))
    if plan.stages is not None:
        if sum(plan.stages) != len(layers):
            raise LocatedError(
                "plan", "plan", "parallel.stages", f"layer counts adding up to {len(layers)} "
                f"({', '.join(layers)})", f"{list(plan.stages)} (sum {sum(plan.stages)})")
        sizes = list(plan.stages)
    else:
        weight_bytes = [0.0] * len(layers)
        flops = [0.0] * len(layers)
        index = {name: i for i, name in enumerate(layers)}
        deep = deep_groups(graph)
        for t in graph.tensors:
            if t.role == "weight" and layer_of_name(t.name, deep) in index:
                weight_bytes[index[layer_of_name(t.name, deep)]] += t.nbytes
        for op, li in zip(graph.ops, of_op, strict=True):
            flops[li] += op.flops
        sizes = _balanced_groups(list(zip(weight_bytes, flops, strict=True)), pp)
    stage_of_layer = [s for s, n in enumerate(sizes) for _ in range(n)]
    stage_of_op = [stage_of_layer[li] for li in of_op]

    steps = recurrent_steps(graph)
    schedule = plan.schedule
    if schedule == "auto":
        schedule = "timestep" if steps else "1f1b"
    if schedule == "timestep":
        chunks = max(1, steps)
    else:
        chunks = plan.microbatches or min(subbatch, 4 * pp)
        if chunks > subbatch:
            raise LocatedError("plan", "plan", "parallel.microbatches",
                               f"at most the subbatch ({subbatch})", str(chunks))
    if pp == 1:
        chunks = 1

    shard = pp * tp if plan.shard_embedding else 1
    if plan.shard_embedding and shard == 1:
        raise LocatedError("plan", "plan", "parallel.shard_embedding",
                           "pipeline x tensor > 1 chips per replica to shard over", "1")
    tables = embedding_tables(graph) if shard > 1 else {}

    layout = tensor_layout(graph, tp, frozenset(_table_family(graph, tables))) if tp > 1 \
        else None
    stages = []
    local: list[dict[int, int]] = []  # original op -> its index in each stage's graph
    for s in range(pp):
        ops = [i for i, st in enumerate(stage_of_op) if st == s]
        stage_graph, transfers, shift = _stage_graph(graph, ops, s, stage_of_op, tp, tables,
                                                     shard, chunked=pp > 1, layout=layout)
        local.append({o: shift + k for k, o in enumerate(ops)})
        dp_transfers = tuple(
            Transfer("all_reduce", float(stage_graph.tensors[g].nbytes), "data", "backward",
                     p, stage_graph.tensors[g].name)
            for _u, (_w, g, p) in stage_graph.weight_gradients().items())
        names = tuple(layers[i] for i, st in enumerate(stage_of_layer) if st == s)
        stages.append(Stage(s, names, stage_graph, (plan.data or 1) * tp,
                            transfers + (dp_transfers if (plan.data or 1) > 1 else ())))
    update = sum(op.flops for op in graph.ops if op.kind == "update")
    repeated = 0.0
    if layout is not None:
        family = _table_family(graph, tables)
        repeated = sum(op.flops for op in graph.ops
                       if op.id in layout.replicated and not _reads_table(op, family))
    return Partition(plan=plan, stages=stages, layers=tuple(layers), schedule=schedule,
                     chunks=chunks, replica_flops=graph.flops, update_flops=update,
                     replicated_flops=repeated,
                     reference=reference_flops,
                     edges=_pipeline_edges(graph, stage_of_op, local, stages))


def _pipeline_edges(graph: OpGraph, stage_of_op: list[int], local: list[dict[int, int]],
                    stages: list[Stage]) -> tuple[PipelineEdge, ...]:
    """The graph's dependencies that cross stages: each (producer -> consumer) of the
    executed graph whose ops sit in different stages, with the bytes sent for it (the send
    the partition made for that tensor; 0 for an explicit order dependency)."""
    sent = {(st.index, t.after_op, t.what, t.to_stage): t.nbytes for st in stages
            for t in st.transfers if t.group == "pipeline"}
    out = []
    for op in graph.ops:
        r = stage_of_op[op.id]
        for p in graph.predecessors(op):
            s = stage_of_op[p]
            if s == r:
                continue
            names = [graph.tensors[t].name for t in op.inputs if graph.producer(t) == p]
            what = names[0] if names else ""
            nbytes = sent.get((s, local[s][p], what, r), 0.0) if names else 0.0
            out.append(PipelineEdge(s, local[s][p], r, local[r][op.id], what, nbytes))
    return tuple(out)


def embedding_tables(graph: OpGraph) -> dict[int, int]:
    """Embedding table tensor -> its lookup op (a data op reading a weight and int ids)."""
    out = {}
    for op in graph.ops:
        if (op.kind == "data" and op.phase == "forward" and len(op.inputs) == 2
                and graph.tensors[op.inputs[0]].role == "weight"
                and graph.tensors[op.inputs[1]].dtype.startswith("int")):
            out[op.inputs[0]] = op.id
    return out


def _split_shape(shape: tuple[int, ...], ways: int, prefer: int | None = None) -> tuple[int, ...]:
    """`shape` with one dimension divided by `ways` (the preferred size, else the last one that
    divides evenly, else the last rounded up)."""
    if ways == 1 or not shape:
        return shape
    dims = list(shape)
    order = ([i for i, d in enumerate(dims) if d == prefer] if prefer else []) + \
        [i for i in range(len(dims) - 1, -1, -1)]
    for i in order:
        if dims[i] % ways == 0:
            dims[i] //= ways
            return tuple(dims)
    dims[-1] = math.ceil(dims[-1] / ways)
    return tuple(dims)


@attrs.frozen
class TensorLayout:
    """Which tensors a tensor-parallel split divides, and the collectives that keeps exact."""

    split: frozenset[int]                      # tensors each chip holds 1/tp of
    split_dim: dict[int, int]                  # weight -> the size of its divided dimension
    gemm_dim: dict[int, str]                   # GEMM op -> which of m, n, k it divides
    comms: dict[int, tuple[tuple[str, float, str], ...]]  # op -> (kind, bytes, tensor name)
    replicated: frozenset[int]                 # ops every chip runs whole (nothing split)


def tensor_layout(graph: OpGraph, tp: int, exclude: frozenset[int] = frozenset()
                  ) -> TensorLayout:
    """Propagate Megatron-style splits through the graph in program order.

    Weights are split. A GEMM reading a weight whose other operand is whole splits the
    weight's output columns (column-parallel: output split, no communication); one whose
    operand is split either contracts over the split (row-parallel: an all-reduce of its
    output) or all-gathers the operand first, whichever moves fewer bytes (2 (p-1)/p x output
    vs (p-1)/p x operand): for a transformer block this finds Megatron's pairing, two
    all-reduces forward and two backward. Elementwise ops take any split input as their
    output's split (whole inputs are sliced locally); data ops (concat, split, reshape) mixing
    split and whole inputs all-gather the split ones; a softmax over split logits all-reduces
    its row statistics. Weight-gradient GEMMs produce their shard without communication.
    Choosing the gather where it is cheaper leaves the residual stream split between layers,
    as Megatron's sequence parallelism does (Korthikanti et al. 2022: all-gather and
    reduce-scatter instead of all-reduce, the same bytes); the norm's statistics over a split
    row are not charged. Biases and norm scales stay whole (sliced locally where needed).
    A lookup in a split table all-reduces the rows it gathers (Megatron's vocabulary-parallel
    embedding). `exclude`: tensors kept whole (embedding tables sharded by rows instead).
    """
    tensors = graph.tensors
    split: set[int] = {t.id for t in tensors if t.role == "weight" and t.id not in exclude
                       and len(t.shape) >= 2}  # biases and norm scales stay whole (tiny)
    split_dim: dict[int, int] = {}
    gemm_dim: dict[int, str] = {}
    comms: dict[int, tuple[tuple[str, float, str], ...]] = {}
    replicated: set[int] = set()

    def is_split(t: int) -> bool:
        return t in split

    for op in graph.ops:
        acts = [t for t in op.inputs if tensors[t].role != "weight"
                and not tensors[t].dtype.startswith("int")]
        weights = [t for t in op.inputs if tensors[t].role == "weight" and t in split]
        out = list(op.outputs)
        here: list[tuple[str, float, str]] = []
        if op.kind == "update":
            w = op.inputs[0]
            grads = [t for t in op.inputs if tensors[t].role == "weight_gradient"]
            if w in split:
                split.update(t for t in (*op.inputs, *op.outputs)
                             if not tensors[t].dtype.startswith("int"))
            else:  # a whole bias or norm scale: gather its gradient's slices, update whole
                here += [("all_gather", float(tensors[t].nbytes), tensors[t].name)
                         for t in grads if t in split]
                replicated.add(op.id)
            if here:
                comms[op.id] = tuple(here)
            continue
        if op.kind == "gemm" and weights and not any(
                tensors[t].role == "weight_gradient" for t in out):
            w = weights[0]
            operand = next((t for t in op.inputs[:2] if t != w), None)
            out_bytes = float(sum(tensors[t].nbytes for t in out))
            if operand is not None and is_split(operand):
                op_bytes = float(tensors[operand].nbytes)
                if 2 * out_bytes <= op_bytes:  # row-parallel: contract over the split
                    here.append(("all_reduce", out_bytes, tensors[out[0]].name))
                    gemm_dim[op.id] = "k"
                    split_dim.setdefault(w, op.k)
                    split.difference_update(out)
                else:  # gather the operand, then column-parallel
                    here.append(("all_gather", op_bytes, tensors[operand].name))
                    gemm_dim[op.id] = "n"
                    split_dim.setdefault(w, op.n)
                    split.update(out)
            else:  # column-parallel
                gemm_dim[op.id] = "n"
                split_dim.setdefault(w, op.n)
                split.update(out)
        elif op.kind == "gemm":
            if any(tensors[t].role == "weight_gradient" for t in out) or any(
                    is_split(t) for t in acts):
                split.update(out)
                gemm_dim[op.id] = "m" if any(tensors[t].role == "weight_gradient"
                                            for t in out) else "n"
        elif op.kind == "data" and weights:  # a lookup in a vocabulary-split table
            here.append(("all_reduce", float(sum(tensors[t].nbytes for t in out)),
                         tensors[out[0]].name))
            split.difference_update(out)
        elif op.kind == "data" and any(is_split(t) for t in acts) and not all(
                is_split(t) for t in acts):
            for t in acts:
                if is_split(t):
                    here.append(("all_gather", float(tensors[t].nbytes), tensors[t].name))
            split.difference_update(out)
        elif any(is_split(t) for t in (*acts, *weights)):
            split.update(out)
            if op.kind == "softmax" and len(out) > 1:
                here.append(("all_reduce", 2.0 * tensors[out[0]].nbytes, tensors[out[0]].name))
        if here:
            comms[op.id] = tuple(here)
        if not any(t in split for t in (*op.inputs, *op.outputs)):
            replicated.add(op.id)
    return TensorLayout(split=frozenset(split), split_dim=split_dim, gemm_dim=gemm_dim,
                        comms=comms, replicated=frozenset(replicated))


def _stage_graph(graph: OpGraph, op_ids: list[int], s: int, stage_of_op: list[int], tp: int,
                 tables: dict[int, int], shard: int, chunked: bool,
                 layout: TensorLayout | None = None
                 ) -> tuple[OpGraph, tuple[Transfer, ...], int]:
    """The graph one chip of stage `s` runs, and the sends and tensor collectives it needs."""
    tensors = graph.tensors
    shard_rows = {t: math.ceil(tensors[t].shape[0] / shard) for t in tables}
    # the tensors this stage touches, and how each is resized
    used: list[int] = []
    seen: set[int] = set()
    for i in op_ids:
        for t in (*graph.ops[i].inputs, *graph.ops[i].outputs):
            if t not in seen:
                seen.add(t)
                used.append(t)
    table_family = _table_family(graph, tables)
    layout = layout if layout is not None else tensor_layout(
        graph, tp, frozenset(table_family) if tables else frozenset())
    split_dim = layout.split_dim

    def new_shape(t: Tensor) -> tuple[int, ...]:
        fam = table_family.get(t.id)
        if fam is not None and t.shape == tensors[fam].shape:
            return (shard_rows[fam], *t.shape[1:])  # a table, its gradient or optimizer state
        if tp == 1 or t.dtype.startswith("int") or t.id not in layout.split:
            return t.shape
        return _split_shape(t.shape, tp, split_dim.get(t.id))

    remap: dict[int, int] = {}
    new_tensors: list[Tensor] = []
    for t in used:
        old = tensors[t]
        remap[t] = len(new_tensors)
        new_tensors.append(Tensor(id=len(new_tensors), name=old.name, shape=new_shape(old),
                                  dtype=old.dtype, role=old.role))
    new_ops: list[Op] = []
    op_remap = {}
    transfers: list[Transfer] = []
    for i in op_ids:
        op = graph.ops[i]
        new_id = len(new_ops)
        op_remap[i] = new_id
        scale = _op_scale(graph, op, tp, table_family, shard_rows)
        if (layout is not None and tp > 1 and op.id in layout.replicated
                and not _reads_table(op, table_family)):
            scale = 1.0  # every tensor-parallel chip runs it whole
        gemm: dict[str, Any] = {}
        if op.kind == "gemm" and tp > 1 and not _reads_table(op, table_family):
            dim = layout.gemm_dim.get(op.id)
            gemm = ({dim: -(-getattr(op, dim) // tp)} if dim is not None
                    else _split_gemm(graph, op, tp, split_dim))
        extra = op.extra_bytes
        if op.id in tables.values():
            table = new_tensors[remap[op.inputs[0]]]
            out = new_tensors[remap[op.outputs[0]]]
            extra = out.nbytes - table.nbytes
        new_ops.append(attrs.evolve(
            op, id=new_id, inputs=tuple(remap[t] for t in op.inputs),
            outputs=tuple(remap[t] for t in op.outputs), flops=op.flops * scale,
            deps=tuple(op_remap[d] for d in op.deps if d in op_remap), extra_bytes=extra,
            # issue 9: tensors a stacked recurrent GEMM reads or writes as one buffer
            contiguous=tuple(tuple(remap[t] for t in group) for group in op.contiguous),
            **gemm))
        if tp > 1:
            for kind, nbytes, what in layout.comms.get(op.id, ()):
                transfers.append(Transfer(kind, nbytes, "tensor",
                                          "backward" if op.phase == "backward" else "forward",
                                          new_id, what))
        if op.id in tables.values():
            out_t = tensors[op.outputs[0]]
            transfers.append(Transfer("all_gather", float(out_t.nbytes), "shard", "forward",
                                      new_id, out_t.name))
            transfers.append(Transfer("reduce_scatter", float(out_t.nbytes), "shard",
                                      "backward", -1, out_t.name + "/grad"))
        # pipeline sends: outputs read by later (forward) or earlier (backward) stages
        for t in op.outputs:
            readers = {stage_of_op[c] for c in graph.consumers(t)} - {s}
            for r in sorted(readers):
                transfers.append(Transfer("send", float(new_tensors[remap[t]].nbytes),
                                          "pipeline", op.phase, new_id, tensors[t].name,
                                          per_chunk=chunked, to_stage=r))
    out_graph = OpGraph(graph.name, new_tensors, new_ops)
    shift = 0
    if shard > 1:
        out_graph, more, shift = _add_table_shards(graph, out_graph, op_ids, tables, shard_rows)
        transfers = [attrs.evolve(t, after_op=t.after_op + shift) if t.after_op >= 0 else t
                     for t in transfers] + more
    return out_graph, tuple(transfers), shift


def _table_family(graph: OpGraph, tables: dict[int, int]) -> dict[int, int]:
    """Tensor -> its embedding table, for the table, its gradients and its optimizer state."""
    fam: dict[int, int] = {t: t for t in tables}
    for op in graph.ops:
        if op.kind == "update" and op.inputs and op.inputs[0] in tables:
            table = op.inputs[0]
            for t in (*op.inputs, *op.outputs):
                if graph.tensors[t].shape == graph.tensors[table].shape:
                    fam.setdefault(t, table)
    for g in graph.tensors:
        if g.role == "weight_gradient" and g.id not in fam:
            targets = [u for u in _gradient_targets(graph, g.id) if u in tables]
            if targets and g.shape == graph.tensors[targets[0]].shape:
                fam[g.id] = targets[0]
    return fam


def _gradient_targets(graph: OpGraph, t: int) -> list[int]:
    """Weights whose update reads gradient tensor `t` (directly or through accumulation)."""
    out = []
    frontier = [t]
    seen = set()
    while frontier:
        x = frontier.pop()
        if x in seen:
            continue
        seen.add(x)
        for c in graph.consumers(x):
            op = graph.ops[c]
            if op.kind == "update":
                out += [u for u in op.inputs if graph.tensors[u].role == "weight"]
            elif op.tag == "accumulate" or op.accumulate:
                frontier += list(op.outputs)
    return out


def _reads_table(op: Op, family: dict[int, int]) -> bool:
    return any(t in family for t in (*op.inputs, *op.outputs))


def _op_scale(graph: OpGraph, op: Op, tp: int, family: dict[int, int],
              shard_rows: dict[int, int]) -> float:
    """Fraction of the op's FLOPs one chip does."""
    touched = [family[t] for t in (*op.inputs, *op.outputs) if t in family]
    if touched:
        table = touched[0]
        return shard_rows[table] / graph.tensors[table].shape[0]
    return 1.0 / tp


def _split_gemm(graph: OpGraph, op: Op, tp: int, split_dim: dict[int, int]) -> dict[str, int]:
    """The GEMM dimension a tensor-parallel split divides: the weight's split size if the op
    has it (n, then m, then k), else the largest that divides evenly, else n rounded up."""
    weights = [t for t in (*op.inputs, *op.outputs) if t in split_dim]
    prefer = split_dim[weights[0]] if weights else None
    dims = {"n": op.n, "m": op.m, "k": op.k}
    for name in ("n", "m", "k"):
        if prefer is not None and dims[name] == prefer and dims[name] % tp == 0:
            return {name: dims[name] // tp}
    for name in sorted(dims, key=lambda d: -dims[d]):
        if dims[name] % tp == 0:
            return {name: dims[name] // tp}
    return {"n": math.ceil(op.n / tp)}


def _add_table_shards(graph: OpGraph, stage: OpGraph, op_ids: list[int],
                      tables: dict[int, int], shard_rows: dict[int, int]
                      ) -> tuple[OpGraph, list[Transfer], int]:
    """Give a stage that does not own an embedding table its shard: lookup, row gradient,
    update, and its part of the gather of looked-up rows."""
    owned = set(op_ids)
    tensors = list(stage.tensors)
    ops = list(stage.ops)
    transfers: list[Transfer] = []
    first: list[Op] = []
    last: list[Op] = []
    for table, lookup_id in tables.items():
        if lookup_id in owned:
            continue
        lookup = graph.ops[lookup_id]
        src_table = graph.tensors[table]
        rows = shard_rows[table]

        def add(name: str, shape: tuple[int, ...], role: str, dtype: str | None = None,
                default_dtype: str = src_table.dtype) -> int:
            tensors.append(Tensor(id=len(tensors), name=name, shape=shape,
                                  dtype=dtype or default_dtype, role=role))
            return len(tensors) - 1

        shard = add(src_table.name, (rows, *src_table.shape[1:]), "weight")
        ids_t = graph.tensors[lookup.inputs[1]]
        ids = add(ids_t.name, ids_t.shape, "input", ids_t.dtype)
        out_t = graph.tensors[lookup.outputs[0]]
        out = add(out_t.name, out_t.shape, "activation")
        first.append(attrs.evolve(lookup, inputs=(shard, ids), outputs=(out,), deps=(),
                                  extra_bytes=tensors[out].nbytes - tensors[shard].nbytes))
        transfers.append(Transfer("all_gather", float(out_t.nbytes), "shard", "forward", -1,
                                  out_t.name))
        transfers.append(Transfer("reduce_scatter", float(out_t.nbytes), "shard", "backward",
                                  -1, out_t.name + "/grad"))
        dout = add(out_t.name + "/grad", out_t.shape, "gradient")
        grad = add(src_table.name + "/grad", (rows, *src_table.shape[1:]), "weight_gradient")
        update = next(op for op in graph.ops if op.kind == "update" and op.inputs[0] == table)
        scatter_flops = float(rows * math.prod(src_table.shape[1:]))
        last.append(Op(id=0, name=f"{lookup.name}/grad", kind="data", phase="backward",
                       inputs=(dout, ids), outputs=(grad,), flops=scatter_flops))
        states = [add(graph.tensors[t].name, (rows, *src_table.shape[1:]), "optimizer_state")
                  for t in update.inputs if graph.tensors[t].role == "optimizer_state"]
        per_param = update.flops / max(1, src_table.elements)
        last.append(attrs.evolve(update, id=0, inputs=(shard, grad, *states),
                                 outputs=(shard, *states), deps=(),
                                 flops=per_param * rows * math.prod(src_table.shape[1:])))
    if not first:
        return stage, transfers, 0
    # renumber: shard lookups first, the stage's ops, then the shard gradients and updates
    shift = len(first)
    out_ops = [attrs.evolve(op, id=i, deps=()) for i, op in enumerate(first)]
    out_ops += [attrs.evolve(op, id=op.id + shift, deps=tuple(d + shift for d in op.deps))
                for op in ops]
    out_ops += [attrs.evolve(op, id=len(out_ops) + i, deps=()) for i, op in enumerate(last)]
    return OpGraph(stage.name, tensors, out_ops), transfers, shift
