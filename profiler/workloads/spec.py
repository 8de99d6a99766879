"""Frozen, validated descriptions of a workload: length distributions, arrivals, datasets.

Every spec validates itself in ``__post_init__`` and raises :class:`WorkloadError` with a
message naming the field and the accepted values, so a typo on the command line fails before
a run starts. Nothing here draws random numbers except :meth:`LengthDist.sample`, which takes
the generator it uses.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from profiler.workloads.errors import WorkloadError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ARRIVAL_KINDS",
    "DATASET_KINDS",
    "DEFAULT_OUTPUT_LEN",
    "LENGTH_KINDS",
    "ArrivalKind",
    "ArrivalSpec",
    "DatasetKind",
    "DatasetSpec",
    "LengthDist",
    "LengthKind",
    "WorkloadError",
]

LengthKind = Literal["fixed", "uniform", "normal", "lognormal"]
ArrivalKind = Literal["closed", "constant", "poisson", "gamma", "trace"]
DatasetKind = Literal["synthetic", "jsonl", "sharegpt", "shared_prefix", "multi_turn", "trace"]
LENGTH_KINDS: tuple[str, ...] = get_args(LengthKind)
ARRIVAL_KINDS: tuple[str, ...] = get_args(ArrivalKind)
DATASET_KINDS: tuple[str, ...] = get_args(DatasetKind)


def unknown_name(what: str, name: str, valid: tuple[str, ...] | list[str]) -> WorkloadError:
    """An error for a name not in ``valid``, listing the valid ones and the closest match."""
    hint = difflib.get_close_matches(name, list(valid), n=1)
    guess = f" (did you mean {hint[0]!r}?)" if hint else ""
    return WorkloadError(f"unknown {what} {name!r}{guess}; valid: {', '.join(valid)}")


def _finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WorkloadError(f"{name} must be a finite number, got {value!r}")


def _int(name: str, value: object, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkloadError(f"{name} must be an integer, got {value!r}")
    if value < lowest:
        raise WorkloadError(f"{name} must be >= {lowest}, got {value}")


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A distribution of token counts, sampled as integers clipped to ``[min, max]``.

    ``fixed``: always ``mean``. ``uniform``: integers in ``[min, max]`` inclusive (``mean``
    must be their midpoint; :meth:`uniform` builds it). ``normal``: rounded N(mean, stdev).
    ``lognormal``: ``mean``/``stdev`` are those of the resulting lengths (not of the log),
    converted with sigma² = ln(1 + (stdev/mean)²), mu = ln(mean) - sigma²/2.
    """

    kind: LengthKind
    mean: float
    stdev: float = 0
    min: int = 1
    max: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in LENGTH_KINDS:
            raise unknown_name("length distribution", str(self.kind), LENGTH_KINDS)
        _finite("mean", self.mean)
        _finite("stdev", self.stdev)
        _int("min", self.min, 1)
        if self.max is not None:
            _int("max", self.max, self.min)
        hi = math.inf if self.max is None else self.max
        if not self.min <= self.mean <= hi:
            raise WorkloadError(
                f"{self.kind}: mean {self.mean} lies outside [min={self.min}, max={self.max}]"
            )
        if self.stdev < 0:
            raise WorkloadError(f"{self.kind}: stdev must be >= 0, got {self.stdev}")
        if self.kind == "fixed" and self.stdev != 0:
            raise WorkloadError(f"fixed: takes no stdev, got {self.stdev}")
        if self.kind == "fixed" and self.mean != round(self.mean):
            raise WorkloadError(f"fixed: length must be an integer, got {self.mean}")
        if self.kind == "uniform":
            if self.max is None:
                raise WorkloadError("uniform: needs max (sample in [min, max])")
            mid = (self.min + self.max) / 2
            if abs(self.mean - mid) > 1e-9 or self.stdev != 0:
                raise WorkloadError(
                    f"uniform: mean must be (min+max)/2 = {mid} and stdev 0; "
                    "use LengthDist.uniform(lo, hi)"
                )
        if self.kind == "lognormal" and self.stdev == 0:
            raise WorkloadError("lognormal: stdev must be > 0 (use fixed for a constant)")

    @classmethod
    def fixed(cls, n: int) -> LengthDist:
        return cls("fixed", n)

    @classmethod
    def uniform(cls, lo: int, hi: int) -> LengthDist:
        return cls("uniform", (lo + hi) / 2, min=lo, max=hi)

    @classmethod
    def normal(cls, mean: float, stdev: float, lo: int = 1, hi: int | None = None) -> LengthDist:
        return cls("normal", mean, stdev, min=lo, max=hi)

    @classmethod
    def lognormal(
        cls, mean: float, stdev: float, lo: int = 1, hi: int | None = None
    ) -> LengthDist:
        return cls("lognormal", mean, stdev, min=lo, max=hi)

    @classmethod
    def parse(cls, text: str) -> LengthDist:
        """Parse ``fixed:N``, ``uniform:LO,HI``, ``normal:MEAN,STDEV[,MIN[,MAX]]`` or
        ``lognormal:MEAN,STDEV[,MIN[,MAX]]`` (the CLI form; :meth:`to_text` inverts it)."""
        form = "fixed:N | uniform:LO,HI | normal:MEAN,STDEV[,MIN[,MAX]] | lognormal:MEAN,STDEV[…]"
        kind, sep, rest = text.strip().partition(":")
        kind = kind.strip().lower()
        if not sep or not rest.strip():
            raise WorkloadError(f"length distribution {text!r}: expected {form}")
        if kind not in LENGTH_KINDS:
            raise unknown_name("length distribution", kind, LENGTH_KINDS)
        try:
            nums = [float(p) for p in rest.split(",")]
        except ValueError:
            raise WorkloadError(f"length distribution {text!r}: not a number in {rest!r}") from None
        arity = {"fixed": (1, 1), "uniform": (2, 2), "normal": (2, 4), "lognormal": (2, 4)}[kind]
        if not arity[0] <= len(nums) <= arity[1]:
            raise WorkloadError(f"length distribution {text!r}: expected {form}")
        ints = nums if kind in ("fixed", "uniform") else nums[2:]
        if any(not math.isfinite(v) or v != round(v) for v in ints):
            raise WorkloadError(f"length distribution {text!r}: lengths must be integers")
        if kind == "fixed":
            return cls("fixed", int(nums[0]))
        if kind == "uniform":
            return cls.uniform(int(nums[0]), int(nums[1]))
        lo = int(nums[2]) if len(nums) > 2 else 1
        hi = int(nums[3]) if len(nums) > 3 else None
        shaped: LengthKind = "normal" if kind == "normal" else "lognormal"
        return cls(shaped, nums[0], nums[1], min=lo, max=hi)

    def to_text(self) -> str:
        """The :meth:`parse` form of this distribution."""
        if self.kind == "fixed":
            return f"fixed:{int(self.mean)}"
        if self.kind == "uniform":
            return f"uniform:{self.min},{self.max}"
        text = f"{self.kind}:{self.mean:g},{self.stdev:g}"
        if self.min != 1 or self.max is not None:
            text += f",{self.min}"
        if self.max is not None:
            text += f",{self.max}"
        return text

    def sample(self, rng: np.random.Generator, n: int) -> list[int]:
        """``n`` integer lengths, each in ``[min, max]`` (and so >= 1)."""
        _int("n", n, 0)
        hi = self.max
        if self.kind == "fixed":
            return [int(self.mean)] * n
        if self.kind == "uniform":
            if hi is None:
                raise WorkloadError("uniform: needs max")
            return [int(v) for v in rng.integers(self.min, hi, size=n, endpoint=True)]
        if self.kind == "normal":
            raw = rng.normal(self.mean, self.stdev, size=n)
        else:
            sigma2 = math.log1p((self.stdev / self.mean) ** 2)
            raw = rng.lognormal(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2), size=n)
        return [int(v) for v in raw.round().clip(self.min, hi)]


@dataclass(frozen=True, slots=True)
class ArrivalSpec:
    """When sessions start.

    ``closed``: ``concurrency`` slots, each starting its next session when the last ends (no
    schedule). ``constant``/``poisson``/``gamma``: an open-loop schedule at ``rate_per_s``;
    ``concurrency``, if set, caps sessions in flight. ``gamma`` draws inter-arrival gaps with
    shape k = ``burstiness`` and mean 1/rate (k<1 bursty, k=1 Poisson, large k near constant:
    the convention of ``vllm bench serve --burstiness``). ``trace``: each session carries its
    own ``arrival_offset_ns`` from a trace dataset.
    """

    kind: ArrivalKind
    concurrency: int | None = None
    rate_per_s: float | None = None
    burstiness: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ARRIVAL_KINDS:
            raise unknown_name("arrival kind", str(self.kind), ARRIVAL_KINDS)
        if self.concurrency is not None:
            _int("concurrency", self.concurrency, 1)
        _finite("burstiness", self.burstiness)
        if self.burstiness <= 0:
            raise WorkloadError(f"burstiness must be > 0, got {self.burstiness}")
        if self.kind != "gamma" and self.burstiness != 1.0:
            raise WorkloadError(f"{self.kind}: burstiness only applies to gamma arrivals")
        if self.kind in ("closed", "trace"):
            if self.rate_per_s is not None:
                raise WorkloadError(f"{self.kind}: takes no rate_per_s")
            if self.kind == "closed" and self.concurrency is None:
                raise WorkloadError("closed: needs concurrency (number of parallel slots)")
            return
        if self.rate_per_s is None:
            raise WorkloadError(f"{self.kind}: needs rate_per_s")
        _finite("rate_per_s", self.rate_per_s)
        if self.rate_per_s <= 0:
            raise WorkloadError(f"rate_per_s must be > 0, got {self.rate_per_s}")

    @property
    def open_loop(self) -> bool:
        return self.kind != "closed"


def _default_input() -> LengthDist:
    return LengthDist("fixed", 256)


def _default_turns() -> LengthDist:
    return LengthDist("fixed", 3)


DEFAULT_OUTPUT_LEN = LengthDist("fixed", 128)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Where prompts come from. Fields a kind does not use are ignored by that kind.

    - ``path``: the data file (``jsonl``, ``sharegpt``, ``trace``: required).
    - ``tokenizer``: a ``tokenizer.json`` or a directory holding one; ``None`` counts
      whitespace words instead (counts then flagged ``"words"``, approximate).
    - ``input_len``: prompt tokens (``synthetic``, ``multi_turn``: each user message;
      ``shared_prefix``: the unique suffix after the group prefix).
    - ``output_len``: ``max_tokens``. ``None`` means: the file's own value (``jsonl``
      ``max_tokens``/``output_len``, the ShareGPT answer's length, the trace's output length),
      else :data:`DEFAULT_OUTPUT_LEN`. When given it overrides the file's values.
    - ``num_groups``, ``prefix_len``: ``shared_prefix`` groups and their prefix tokens.
    - ``turns``, ``think_time_s``: ``multi_turn`` turns per conversation and the pause before
      each later turn (also the think time of ``sharegpt`` with ``multi_turn``).
    - ``multi_turn``: ``sharegpt`` keeps every human turn of a conversation as one session.
    - ``shuffle``: ``jsonl``/``sharegpt`` take entries in a seeded random order (else file
      order). ``max_input_tokens``: ``jsonl``/``sharegpt`` skip entries with a longer prompt.
    - ``time_scale``: ``trace`` speed-up (2.0 replays twice as fast). ``block_size``: tokens
      per Mooncake ``hash_ids`` block.
    """

    kind: DatasetKind
    path: str | None = None
    tokenizer: str | None = None
    input_len: LengthDist = field(default_factory=_default_input)
    output_len: LengthDist | None = None
    num_groups: int = 8
    prefix_len: int = 512
    turns: LengthDist = field(default_factory=_default_turns)
    think_time_s: float = 0.0
    multi_turn: bool = False
    shuffle: bool = True
    max_input_tokens: int | None = None
    time_scale: float = 1.0
    block_size: int = 512

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise unknown_name("dataset kind", str(self.kind), DATASET_KINDS)
        if self.kind in ("jsonl", "sharegpt", "trace") and not self.path:
            raise WorkloadError(f"{self.kind}: needs path (the data file)")
        for name in ("input_len", "turns"):
            if not isinstance(getattr(self, name), LengthDist):
                raise WorkloadError(f"{name} must be a LengthDist")
        if self.output_len is not None and not isinstance(self.output_len, LengthDist):
            raise WorkloadError("output_len must be a LengthDist or None")
        _int("num_groups", self.num_groups, 1)
        _int("prefix_len", self.prefix_len, 1)
        _int("block_size", self.block_size, 1)
        if self.max_input_tokens is not None:
            _int("max_input_tokens", self.max_input_tokens, 1)
        _finite("think_time_s", self.think_time_s)
        if self.think_time_s < 0:
            raise WorkloadError(f"think_time_s must be >= 0, got {self.think_time_s}")
        _finite("time_scale", self.time_scale)
        if self.time_scale <= 0:
            raise WorkloadError(f"time_scale must be > 0, got {self.time_scale}")

    def output_len_or_default(self) -> LengthDist:
        return DEFAULT_OUTPUT_LEN if self.output_len is None else self.output_len
