"""Tile runs reused from a template (`RunTemplates`) equal freshly generated runs."""

import attrs
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.graph import GraphBuilder
from accelsim.mapping import GemmMapping
from accelsim.trace_runs import RunTemplates, gemm_op_runs

FIELDS = ("addr", "nbytes", "is_write", "unit")


@st.composite
def gemm_cases(draw):
    m, n, k = (draw(st.integers(1, 160)) for _ in range(3))
    batch = draw(st.sampled_from([1, 1, 3]))
    g = GraphBuilder("g")
    shape = (batch,) if batch > 1 else ()
    a, b = g.input("a", (*shape, m, k)), g.input("b", (*shape, k, n))
    g.matmul("mm", a, b)
    graph = g.build()
    op = graph.ops[0]
    if draw(st.booleans()):
        d = g.input("d", (*shape, m, n))
        graph = g.build()
        op = attrs.evolve(graph.ops[0], inputs=(*op.inputs, d.id), accumulate=True)
    op = attrs.evolve(op, trans_a=draw(st.booleans()), trans_b=draw(st.booleans()))
    tm, tn, tk = (draw(st.sampled_from([8, 16, 32])) for _ in range(3))
    mp = GemmMapping(tm, tn, tk, draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([0, 1])),
                     draw(st.integers(1, 6)), 1, 1)
    granule = draw(st.sampled_from([64, 256, 1024]))
    opts = dict(tile_major=draw(st.booleans()), min_run_bytes=draw(st.sampled_from([0, 128, 512])),
                max_runs=draw(st.sampled_from([1 << 40, 50])), scratch_base=1 << 36,
                shared_bytes=draw(st.sampled_from([0, 1 << 16, 1 << 22])), granule=granule,
                line_bytes=draw(st.sampled_from([b for b in (32, 64) if b <= granule])))
    n_tensors = len(graph.tensors)

    def bases():
        # the allocator aligns bases; a recurrent B may start mid-granule: any residue
        return np.array([draw(st.integers(0, 1 << 34)) * draw(st.sampled_from([1, 4096]))
                         for _ in range(n_tensors)], np.int64)

    return graph, op, mp, opts, [bases() for _ in range(3)]


@settings(max_examples=120, deadline=None)
@given(gemm_cases())
def test_templates_give_the_runs_of_a_fresh_trace(case):
    graph, op, mp, opts, layouts = case
    templates = RunTemplates()
    for bases in layouts + layouts[:1]:  # later layouts hit the template when residues match
        fresh = gemm_op_runs(graph, op, mp, bases, **opts)
        reused = gemm_op_runs(graph, op, mp, bases, templates=templates, **opts)
        for f in FIELDS:
            got, want = getattr(reused, f), getattr(fresh, f)
            assert got.dtype == want.dtype and (got == want).all(), f
        assert (reused.hit_blocks, reused.hit_bytes, reused.hit_lines) == (
            fresh.hit_blocks, fresh.hit_bytes, fresh.hit_lines)
    assert templates.hits >= 1  # the repeated first layout


def test_templates_stay_within_their_budget():
    g = GraphBuilder("g")
    a, b = g.input("a", (64, 64)), g.input("b", (64, 64))
    g.matmul("mm", a, b)
    graph = g.build()
    mp = GemmMapping(8, 8, 8, 1, 0, 4, 1, 1)
    one = gemm_op_runs(graph, graph.ops[0], mp, np.zeros(3, np.int64), tile_major=True,
                       min_run_bytes=0, max_runs=1 << 40, scratch_base=1 << 30)
    size = sum(getattr(one, f).nbytes for f in FIELDS)
    templates = RunTemplates(max_bytes=size * 3 // 2)  # room for one template, not two
    for shift in range(4):  # four residues: four templates, one kept at a time
        bases = np.arange(len(graph.tensors), dtype=np.int64) * (1 << 20) + shift * 64
        gemm_op_runs(graph, graph.ops[0], mp, bases, tile_major=True, min_run_bytes=0,
                     max_runs=1 << 40, scratch_base=1 << 30, granule=256, line_bytes=64,
                     templates=templates)
        assert templates._bytes == size and len(templates._items) == 1
    assert templates.misses == 4
