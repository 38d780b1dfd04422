from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder.core.placement import centre_on, free_shift

SIZE = (180.0, 74.0)
coords = st.tuples(st.floats(-2000, 2000), st.floats(-2000, 2000))


@given(taken=st.lists(coords, max_size=60), group=st.lists(coords, min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_shifted_group_overlaps_no_block(taken, group):
    sx, sy = free_shift(taken, group, SIZE, (200.0, 0.0))
    for x, y in group:
        for px, py in taken:
            assert abs(px - (x + sx)) >= SIZE[0] + 10 or abs(py - (y + sy)) >= SIZE[1] + 10


def test_free_spot_needs_no_shift_and_centring():
    assert free_shift([(1000.0, 1000.0)], [(0.0, 0.0)], SIZE, (200.0, 0.0)) == (0.0, 0.0)
    assert free_shift([(0.0, 0.0)], [(0.0, 0.0)], SIZE, (200.0, 0.0)) == (200.0, 0.0)
    assert centre_on([(0.0, 0.0), (0.0, 100.0)], SIZE, (500.0, 500.0)) == (410.0, 413.0)
