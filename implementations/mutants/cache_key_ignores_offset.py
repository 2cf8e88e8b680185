"""A cos/sin cache keyed on the sequence length only, so a new offset reuses stale angles.

The first call with a given length fills the cache; a later call with the same length at
another offset (the next chunk of a KV cache, another batch) gets the first call's angles.
lucidrains/rotary-embedding-torch issue 11 ("Bug in cache": ``cache_key = f'freqs:{seq_len}'``
left the offset out, "if I pass the same t with different offsets I get the same result").
"""

from ._base import TorchRope


class CacheKeyIgnoresOffset(TorchRope):
    def __init__(self) -> None:
        self._cache = {}

    def cos_sin(self, x, positions, spec):
        # BUG: the key has the spec, the shape and the dtype, but not the positions (the offset).
        key = (spec, tuple(positions.shape), x.dtype)
        if key not in self._cache:
            self._cache[key] = super().cos_sin(x, positions, spec)
        return self._cache[key]


IMPLEMENTATION = CacheKeyIgnoresOffset()
