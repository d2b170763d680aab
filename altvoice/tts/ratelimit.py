"""Client-side request rate limits: a token bucket shared by all threads of one process."""
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most `per_minute` acquisitions a minute on average, `burst` of them back to back.

    `acquire` reserves a token and sleeps until it is due, so concurrent callers queue in order.
    """

    def __init__(self, per_minute: float, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Takes one token, waiting for it if none is left; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            self._sleep(wait)
        return wait


_BUCKETS: dict = {}
_BUCKETS_LOCK = threading.Lock()


def process_bucket(name: str, per_minute: float, burst: int = 1) -> TokenBucket:
    """The one bucket of this process for `name` and this rate, made on first use."""
    key = (name, per_minute, burst)
    with _BUCKETS_LOCK:
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(per_minute, burst)
        return _BUCKETS[key]
