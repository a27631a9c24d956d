"""What one op moves through the memory hierarchy: bytes per level and hit rates.

The record the cache simulation (`trace.StepTraffic.traffics`) or the analytic model
(`timing.analytic_traffic`) hands to the timing model. A small room of its own so that
`timing` reads traffic without importing the cache simulation.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Traffic:
    """Bytes served or moved by each cache level and by memory (`vocabulary.MEMORY`), reads
    plus writes; hit rate of each cache level (0 where the op did not reach it)."""

    level_bytes: dict[str, float]
    hit_rate: dict[str, float]
