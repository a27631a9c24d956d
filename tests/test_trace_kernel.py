"""Tiled address streams: exact small cases and byte-coverage properties."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.kernels.trace import elementwise_runs, expand_lines, gemm_runs


def as_list(runs):
    addr, nbytes, is_write, unit = runs
    return list(zip(addr.tolist(), nbytes.tolist(), is_write.tolist(), unit.tolist(),
                    strict=True))


def test_gemm_2x2x2_by_hand():
    # tiles 1x1x2 (one k-step), 2 units, row-major A[2,2] @ B[2,2], 4 B elements
    a, b, c = 0, 100, 200
    runs = as_list(gemm_runs(2, 2, 2, 1, 1, 2, 4, a, b, c, False, False, 0, 2, False))
    wave0 = [
        (a + 0, 8, 0, 0), (b + 0, 4, 0, 0), (b + 8, 4, 0, 0),  # unit 0: A row 0, B col 0
        (a + 0, 8, 0, 1), (b + 4, 4, 0, 1), (b + 12, 4, 0, 1),  # unit 1: A row 0, B col 1
        (c + 0, 4, 1, 0), (c + 4, 4, 1, 1),  # C[0,0], C[0,1]
    ]
    wave1 = [
        (a + 8, 8, 0, 0), (b + 0, 4, 0, 0), (b + 8, 4, 0, 0),
        (a + 8, 8, 0, 1), (b + 4, 4, 0, 1), (b + 12, 4, 0, 1),
        (c + 8, 4, 1, 0), (c + 12, 4, 1, 1),
    ]
    assert runs == wave0 + wave1


def test_gemm_lockstep_k_steps_and_column_order():
    # 2 output tiles (2x1 grid) on 2 units, 2 k-steps: A/B reads interleave per k-step
    runs = as_list(gemm_runs(2, 1, 2, 1, 1, 1, 1, 0, 10, 20, False, False, 1, 2, True))
    assert runs == [
        (0, 1, 0, 0), (10, 1, 0, 0), (2, 1, 0, 1), (10, 1, 0, 1),  # k-step 0
        (1, 1, 0, 0), (11, 1, 0, 0), (3, 1, 0, 1), (11, 1, 0, 1),  # k-step 1
        (20, 1, 1, 0), (21, 1, 1, 1),
    ]


def test_gemm_transposed_a_reads_columns_of_storage():
    # A^T stored [k=3, m=2]; tile 2x3 of op(A) = all of it: one run per stored row (k)
    addr, nbytes, _, _ = gemm_runs(2, 1, 3, 2, 1, 3, 4, 0, 1000, 2000, True, False, 0, 1, False)
    assert addr[:3].tolist() == [0, 8, 16] and nbytes[:3].tolist() == [8, 8, 8]


def coverage(addr, nbytes, lo, hi):
    """How many times each byte in [lo, hi) is covered by the runs."""
    cnt = np.zeros(hi - lo, np.int64)
    for a, n in zip(addr.tolist(), nbytes.tolist(), strict=True):
        if lo <= a < hi:
            assert a + n <= hi
            cnt[a - lo:a - lo + n] += 1
    return cnt


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 13), n=st.integers(1, 13), k=st.integers(1, 13),
       tm=st.integers(1, 6), tn=st.integers(1, 6), tk=st.integers(1, 6),
       eb=st.sampled_from([1, 2, 4]), at=st.booleans(), bt=st.booleans(),
       order=st.integers(0, 1), units=st.integers(1, 5), tile_major=st.booleans())
def test_gemm_reads_every_element_once_per_output_tile(m, n, k, tm, tn, tk, eb, at, bt, order,
                                                       units, tile_major):
    tiles_m, tiles_n, tiles_k = -(-m // tm), -(-n // tn), -(-k // tk)
    if tile_major:  # full-tile slots
        size_a, size_b = tiles_m * tiles_k * tm * tk * eb, tiles_k * tiles_n * tk * tn * eb
        size_c = tiles_m * tiles_n * tm * tn * eb
    else:
        size_a, size_b, size_c = m * k * eb, k * n * eb, m * n * eb
    a, b, c = 0, size_a, size_a + size_b
    addr, nbytes, is_write, unit = gemm_runs(m, n, k, tm, tn, tk, eb, a, b, c, at, bt, order,
                                             units, tile_major)
    rd = is_write == 0
    for lo, hi, sel, times, elems in ((a, b, rd, tiles_n, m * k), (b, c, rd, tiles_m, k * n),
                                      (c, c + size_c, ~rd, 1, m * n)):
        cov = coverage(addr[sel], nbytes[sel], lo, hi)
        assert set(np.unique(cov).tolist()) <= {0, times}
        assert (cov > 0).sum() == elems * eb  # every element, nothing else
    assert unit.min() >= 0 and unit.max() < units
    assert (nbytes > 0).all()
    if tile_major:
        assert (~rd).sum() == tiles_m * tiles_n  # one run per C tile
    else:
        assert (~rd).sum() == m * tiles_n  # one run per row segment


def test_gemm_tile_major_layout_is_tile_by_tile():
    # 3x3 C, 2x2 tiles in 4-element slots: (0,0) 4 elems at 0, (0,1) 2 at 4, (1,0) 2 at 8,
    # (1,1) 1 at 12
    addr, nbytes, w, _ = gemm_runs(3, 3, 1, 2, 2, 1, 1, 100, 200, 0, False, False, 0, 4, True)
    assert list(zip(addr[w == 1].tolist(), nbytes[w == 1].tolist(), strict=True)) == [
        (0, 4), (4, 2), (8, 2), (12, 1)]


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(0, 3), n_out=st.integers(0, 2), n_elems=st.integers(0, 200),
       eb=st.sampled_from([1, 2, 4]), units=st.integers(1, 4), chunk=st.integers(1, 100))
def test_elementwise_streams(n_in, n_out, n_elems, eb, units, chunk):
    size = n_elems * eb
    bases = np.arange(n_in + n_out, dtype=np.int64) * (size + 7)
    addr, nbytes, w, unit = elementwise_runs(bases[:n_in], bases[n_in:], n_elems, eb, units,
                                             chunk)
    for i, base in enumerate(bases):
        sel = (addr >= base) & (addr < base + max(size, 1))
        assert (w[sel] == (1 if i >= n_in else 0)).all()
        assert (coverage(addr[sel], nbytes[sel], base, base + size) == 1).all()
    n_chunks = -(-size // chunk)
    assert addr.shape[0] == n_chunks * (n_in + n_out)
    if n_in + n_out:
        per_chunk = unit.reshape(n_chunks, n_in + n_out)
        assert (per_chunk == (np.arange(n_chunks) % units)[:, None]).all()


def test_expand_lines():
    lines = expand_lines(np.array([30, 64, 0], np.int64), np.array([40, 0, 1], np.int64), 32)
    assert lines.tolist() == [0, 1, 2, 0]
