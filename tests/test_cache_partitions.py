"""Set-partitioned simulation on several threads equals one thread, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cache import CacheHierarchy, Trace, partitions
from accelsim.testing import cache_hierarchies, cache_level, traces

FAST = settings(max_examples=150, deadline=None)


@st.composite
def partitionable_hierarchies(draw):
    """Hierarchies whose every level has an even number of sets per chunk of the largest
    line, so that two or four partitions are allowed (any policy but random)."""
    levels, n_units = draw(cache_hierarchies(policies=("lru", "fifo", "mru", "plru", "lfu")))
    big = max(lv.line_bytes for lv in levels)
    out = []
    for lv in levels:
        ways = lv.ways or draw(st.sampled_from([1, 2, 4]))
        sets = (big // lv.line_bytes) * draw(st.sampled_from([2, 4, 6, 8, 12]))
        out.append(cache_level(name=lv.name, capacity_bytes=sets * ways * lv.line_bytes,
                               line_bytes=lv.line_bytes, ways=ways, replacement=lv.replacement,
                               write_policy=lv.write_policy, write_allocate=lv.write_allocate,
                               inclusion=lv.inclusion, sharing=lv.sharing))
    return out, n_units


def same_as_serial(levels, n_units, compat, actions, threads):
    one = CacheHierarchy(levels, n_units, seed=5, compat_pycachesim=compat, threads=1)
    many = CacheHierarchy(levels, n_units, seed=5, compat_pycachesim=compat, threads=threads)
    many.parallel_min_runs = 0  # partition even the tiny traces of the test
    many.parallel_retry_calls = 0  # ... however little the threads overlapped
    for t in actions:
        if t is None:
            assert (many.flush().data == one.flush().data).all()
        else:
            assert (many.run(t).data == one.run(t).data).all()
        assert (many.slots == one.slots).all()
        assert (many.meta == one.meta).all()
    return many.n_partitions


@FAST
@given(partitionable_hierarchies(), st.booleans(), st.sampled_from([2, 4]), st.data())
def test_partitioned_equals_serial(design, compat, threads, data):
    """Counters and the final state (lines, LRU order, dirty bits, policy metadata) are
    those of one thread, for every kernel the wrapper picks (reads on a clean state, LRU
    write-back, general) and across flushes."""
    levels, n_units = design
    actions = []
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["reads", "writes", "flush"]))
        actions.append(None if kind == "flush" else
                       data.draw(traces(n_units=n_units, writes=kind == "writes")))
    assert same_as_serial(levels, n_units, compat, actions, threads) > 1


@FAST
@given(cache_hierarchies(), st.data())
def test_any_design_is_exact_with_threads(design, data):
    """Designs that do not partition (odd set counts, fully associative, random policy)
    fall back to fewer partitions and stay exact."""
    levels, n_units = design
    actions = [data.draw(traces(n_units=n_units)) for _ in range(2)]
    same_as_serial(levels, n_units, False, actions, 2)


def test_partition_rule_by_hand():
    lv = cache_level(name="L2", capacity_bytes=24 * 16 * 128, line_bytes=128, ways=16)
    h = CacheHierarchy([lv], 1, threads=2)
    assert partitions(h.cfg, 2) == (2, 9)  # 24 sets = 2 x 4 x 3: chunks of 4 lines
    assert partitions(h.cfg, 4) == (4, 8)  # 4 x 2 x 3
    assert partitions(h.cfg, 8) == (8, 7)  # 8 x 3
    assert partitions(h.cfg, 16) == (8, 7)
    assert partitions(h.cfg, 1)[0] == 1
    # a 64 B level above a 256 B one: its set index must fix the 256 B chunk's partition
    up = cache_level(name="L1", capacity_bytes=4 * 2 * 64, line_bytes=64, ways=2)  # 4 sets
    down = cache_level(name="L2", capacity_bytes=16 * 4 * 256, line_bytes=256, ways=4)
    h = CacheHierarchy([up, down], 1)
    assert partitions(h.cfg, 2)[0] == 1  # 4 sets of 64 B lines span one 256 B chunk
    up8 = cache_level(name="L1", capacity_bytes=8 * 2 * 64, line_bytes=64, ways=2)
    assert partitions(CacheHierarchy([up8, down], 1).cfg, 2) == (2, 8)
    fully = cache_level(name="L1", capacity_bytes=8 * 64, line_bytes=64, ways=0)
    assert partitions(CacheHierarchy([fully], 1).cfg, 4)[0] == 1
    rnd = cache_level(name="L1", capacity_bytes=8 * 64, line_bytes=64, ways=2,
                      replacement="random")
    assert partitions(CacheHierarchy([rnd], 1).cfg, 4)[0] == 1


def test_long_trace_runs_on_two_threads():
    """A trace past the size threshold really takes the partitioned path."""
    lv = cache_level(name="L2", capacity_bytes=24 * 16 * 128, line_bytes=128, ways=16)
    rng = np.random.default_rng(0)
    n = 50_000
    t = Trace.single_op(rng.integers(0, 1 << 22, n), rng.integers(1, 600, n),
                        (rng.random(n) < 0.3).astype(np.uint8))
    one, two = CacheHierarchy([lv], 1, threads=1), CacheHierarchy([lv], 1, threads=2)
    assert two.n_partitions == 2 and n >= two.parallel_min_runs
    assert (two.run(t).data == one.run(t).data).all()
    assert (two.slots == one.slots).all()


def test_threads_that_took_turns_on_one_core_fall_back_to_one_thread_for_a_while():
    """A split call whose threads' CPU time did not exceed its wall time (no second core)
    sends the next `PARALLEL_RETRY_CALLS` long traces to one thread; exact either way."""
    from accelsim.cache import PARALLEL_MIN_OVERLAP, PARALLEL_RETRY_CALLS

    lv = cache_level(name="L2", capacity_bytes=24 * 16 * 128, line_bytes=128, ways=16)
    rng = np.random.default_rng(2)
    n = 40_000
    t = Trace.single_op(rng.integers(0, 1 << 22, n), rng.integers(1, 600, n))
    one, two = CacheHierarchy([lv], 1, threads=1), CacheHierarchy([lv], 1, threads=2)
    two.note_overlap(cpu_s=1.9, wall_s=1.0)  # both cores busy with the call: keep splitting
    assert two.serial_calls_left == 0 and two.last_overlap == pytest.approx(1.9)
    two.note_overlap(cpu_s=1.0, wall_s=1.0)  # the threads took turns
    assert 1.0 < PARALLEL_MIN_OVERLAP and two.serial_calls_left == PARALLEL_RETRY_CALLS > 0
    for k in range(PARALLEL_RETRY_CALLS):
        assert (two.run(t).data == one.run(t).data).all()
        assert two.serial_calls_left == PARALLEL_RETRY_CALLS - 1 - k
    assert (two.slots == one.slots).all()
    small = Trace.single_op(t.addr[:100], t.nbytes[:100])
    two.note_overlap(cpu_s=1.0, wall_s=1.0)
    two.run(small)  # short traces run on one thread anyway and do not count
    assert two.serial_calls_left == PARALLEL_RETRY_CALLS


def _child_run(queue):
    lv = cache_level(name="L2", capacity_bytes=24 * 16 * 128, line_bytes=128, ways=16)
    rng = np.random.default_rng(1)
    n = 40_000
    t = Trace.single_op(rng.integers(0, 1 << 22, n), rng.integers(1, 600, n))
    queue.put(int(CacheHierarchy([lv], 1, threads=2).run(t).data.sum()))


def test_a_process_forked_after_threaded_runs_still_simulates():
    """The threads live for one call only (numba's own pool, once started, breaks forked
    children): a child forked after a partitioned run runs partitioned too."""
    import multiprocessing as mp

    test_long_trace_runs_on_two_threads()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_run, args=(queue,))
    proc.start()
    got = queue.get(timeout=120)
    proc.join(timeout=60)
    assert proc.exitcode == 0 and got > 0


def test_threads_default_to_the_usable_cpus_up_to_two_and_follow_the_environment(monkeypatch):
    from accelsim.cache import DEFAULT_MAX_THREADS, THREADS_ENV, default_threads, usable_cpus

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert DEFAULT_MAX_THREADS == 2
    assert default_threads() == min(2, usable_cpus())
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert default_threads() == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert default_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "3")
    assert default_threads() == 3
    monkeypatch.setenv(THREADS_ENV, "auto")
    assert default_threads() >= 1
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=THREADS_ENV):
        default_threads()
