from __future__ import annotations

import pytest

from server.ratelimit import TokenBucket


def test_burst_then_retry_after() -> None:
    bucket = TokenBucket(rate=50, burst=100, now=0.0)
    assert all(bucket.take(0.0) is None for _ in range(100))
    assert bucket.take(0.0) == pytest.approx(1 / 50)


def test_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.take(0.0) is None
    assert bucket.take(0.25) == pytest.approx(0.25)  # half a token earned, half missing
    assert bucket.take(0.5) is None  # one token earned after 0.5 s
    assert bucket.take(100.0) is None  # a long pause refills only up to the burst
    assert bucket.take(100.0) is None
    assert bucket.take(100.0) is None
    assert bucket.take(100.0) is not None


def test_clock_going_backwards_neither_mints_nor_blocks_forever() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0) is None
    assert bucket.take(5.0) == pytest.approx(1.0)
    assert bucket.take(11.0) is None


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_invalid_parameters(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, now=0.0)


def test_retry_after_is_rounded_up_to_the_ms_and_never_zero() -> None:
    bucket = TokenBucket(rate=50, burst=1, now=0.0)
    assert bucket.take(0.0) is None
    # 0.0199999 s later the bucket lacks a millionth of a token: the wait rounds up, not to 0.
    assert bucket.take(0.0199999) == 0.001
    assert bucket.take(0.0199999) == 0.001
    assert bucket.take(0.0) == 0.001  # the clock stepping back does not mint tokens either
