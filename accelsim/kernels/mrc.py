"""LRU stack distances in one pass (numba), for miss-ratio curves.

For a fully associative LRU cache of C lines, an access hits iff fewer than C distinct other
lines were touched since the previous access to its line (Mattson et al., 1970). That count is
a prefix sum over "this time step holds the latest access of some line" marks, kept in a
Fenwick tree indexed by time: O(N log N) for N accesses, every capacity at once.
"""

import numba as nb
import numpy as np


@nb.njit(cache=True)
def stack_distance_histogram(line_ids: np.ndarray, n_distinct: int) -> np.ndarray:
    """Histogram of LRU stack distances of a stream of dense line ids in [0, n_distinct).

    ``hist[d]`` counts accesses that found exactly ``d`` distinct other lines since their
    line's previous access (so they hit in any fully associative LRU cache of more than ``d``
    lines); ``hist[n_distinct]`` counts cold (first) accesses.
    """
    n = line_ids.shape[0]
    hist = np.zeros(n_distinct + 1, np.int64)
    last = np.full(n_distinct, -1, np.int64)
    tree = np.zeros(n + 1, np.int64)  # Fenwick tree over time steps 1..n
    live = 0  # marks currently set = distinct lines seen so far
    for t in range(n):
        x = line_ids[t]
        p = last[x]
        if p < 0:
            hist[n_distinct] += 1
            live += 1
        else:
            # marks at times <= p (1-based p + 1)
            i = p + 1
            upto = 0
            while i > 0:
                upto += tree[i]
                i -= i & (-i)
            hist[live - upto] += 1
            i = p + 1
            while i <= n:
                tree[i] -= 1
                i += i & (-i)
        i = t + 1
        while i <= n:
            tree[i] += 1
            i += i & (-i)
        last[x] = t
    return hist
