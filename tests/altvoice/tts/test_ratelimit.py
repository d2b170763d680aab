"""The token bucket, on a fake clock: no test waits for real time."""
import pytest

from altvoice.tts.ratelimit import TokenBucket, process_bucket


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float):
        assert seconds > 0
        self.now += seconds


def acquisition_times(bucket: TokenBucket, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        bucket.acquire()
        times.append(round(clock.now - 100.0, 6))
    return times


def test_spaces_requests_evenly():
    clock = FakeClock()
    bucket = TokenBucket(per_minute=30, clock=clock, sleep=clock.sleep)
    assert acquisition_times(bucket, clock, 4) == [0.0, 2.0, 4.0, 6.0]


def test_burst_then_steady_rate_and_idle_time_refills_only_up_to_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(per_minute=60, burst=3, clock=clock, sleep=clock.sleep)
    assert acquisition_times(bucket, clock, 5) == [0.0, 0.0, 0.0, 1.0, 2.0]
    clock.now += 60  # a minute idle
    assert acquisition_times(bucket, clock, 4) == [62.0, 62.0, 62.0, 63.0]


def test_acquire_reports_the_wait():
    clock = FakeClock()
    bucket = TokenBucket(per_minute=120, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.5, 0.5]


def test_time_between_requests_counts_toward_the_next():
    clock = FakeClock()
    bucket = TokenBucket(per_minute=60, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 0.75
    assert bucket.acquire() == pytest.approx(0.25)


@pytest.mark.parametrize("per_minute, burst", [(0, 1), (-5, 1), (10, 0)])
def test_rejects_impossible_limits(per_minute, burst):
    with pytest.raises(ValueError):
        TokenBucket(per_minute, burst)


def test_one_bucket_per_process_and_rate():
    assert process_bucket("t", 60) is process_bucket("t", 60)
    assert process_bucket("t", 60) is not process_bucket("t", 120)
