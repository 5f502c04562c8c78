"""Where a segment filling the ring buffer is cut."""

from __future__ import annotations

import pytest

from theo.session.ring_buffer import BYTES_PER_SECOND
from theo.session.speech import _force_commit_at


@pytest.mark.parametrize(
    ("ring_s", "cut_at_s"),
    [(60, 54), (120, 108), (24, 18), (10, 5), (4, 2)],
)
def test_a_segment_is_cut_at_90_percent_or_6_s_short_of_a_full_ring(
    ring_s: int, cut_at_s: float
) -> None:
    assert _force_commit_at(ring_s * BYTES_PER_SECOND) * ring_s == pytest.approx(cut_at_s)
