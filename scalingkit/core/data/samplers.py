"""Training batch samplers: random windows, or every window once (no repeated data).

:class:`BatchSampler` draws window starts uniformly with replacement: cheap, and
the right model of "an unlimited stream" when the corpus is far larger than the
run, but two windows may overlap. :class:`EpochSampler` cuts the training array
into disjoint windows and visits them in a seeded random order, so a run that
takes less than one pass never sees a token twice. Both keep their state in a
uint8/int64 tensor, saved in checkpoints so a resumed run draws the same batches.

Units: ``n_ctx`` and window lengths are tokens.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLERS = ("random", "epoch")


class _WindowSampler:
    """What both samplers share: batches cut from ``tokens`` at :meth:`starts`."""

    tokens: np.ndarray
    _offsets: np.ndarray

    def starts(self) -> np.ndarray:  # pragma: no cover - each sampler defines its own
        raise NotImplementedError

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: inputs and targets, each ``(batch_size, n_ctx)`` int64."""
        idx = self.starts()[:, None] + self._offsets  # (B, T + 1)
        window = torch.from_numpy(np.asarray(self.tokens[idx], dtype=np.int64))  # (B, T + 1)
        return window[:, :-1], window[:, 1:]


class BatchSampler(_WindowSampler):
    """Random windows of ``n_ctx + 1`` tokens from a token array.

    Parameters
    ----------
    tokens : np.ndarray
        Token ids (a memmap is fine).
    batch_size : int
        Windows per batch.
    n_ctx : int
        Context length (tokens); inputs are ``tokens[i : i + n_ctx]`` and targets are
        shifted by one.
    seed : int, default=0
        Seed of the sampler's own ``torch.Generator``; its state is saved in
        checkpoints so that a resumed run draws the same batches.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, n_ctx: int, *, seed: int = 0) -> None:
        if batch_size < 1 or n_ctx < 1:
            raise ValueError("batch_size and n_ctx must be positive")
        if len(tokens) < n_ctx + 1:
            raise ValueError(
                f"token array has {len(tokens)} tokens, fewer than n_ctx + 1 = {n_ctx + 1}"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.n_ctx = n_ctx
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(n_ctx + 1)

    def starts(self) -> np.ndarray:
        """Draw ``batch_size`` window start positions."""
        hi = len(self.tokens) - self.n_ctx  # last start i has i + n_ctx <= len - 1
        return torch.randint(0, hi, (self.batch_size,), generator=self.generator).numpy()

    def state(self) -> torch.Tensor:
        """The generator state (a uint8 tensor, safe for ``weights_only`` loading)."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a state from :meth:`state`."""
        self.generator.set_state(state)


class EpochSampler(_WindowSampler):
    """Disjoint windows of ``n_ctx + 1`` tokens, each visited once per pass, in random order.

    The array is cut into ``len(tokens) // (n_ctx + 1)`` windows that share no token
    (inputs and targets included). Pass ``e`` visits them in the order of a permutation
    seeded by ``(seed, e)``; a run shorter than one pass sees every token at most once.

    Parameters
    ----------
    tokens : np.ndarray
        Token ids (a memmap is fine).
    batch_size : int
        Windows per batch.
    n_ctx : int
        Context length (tokens).
    seed : int, default=0
        Seeds the order of the windows.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, n_ctx: int, *, seed: int = 0) -> None:
        if batch_size < 1 or n_ctx < 1:
            raise ValueError("batch_size and n_ctx must be positive")
        self.n_windows = len(tokens) // (n_ctx + 1)
        if self.n_windows < batch_size:
            raise ValueError(
                f"token array has {len(tokens)} tokens, fewer than one batch of "
                f"{batch_size} disjoint windows of n_ctx + 1 = {n_ctx + 1}"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.n_ctx = n_ctx
        self.seed = seed
        self._offsets = np.arange(n_ctx + 1)
        self._cursor = 0  # windows drawn so far, over all passes
        self._order_pass = -1
        self._order = np.empty(0, dtype=np.int64)

    @property
    def passes(self) -> float:
        """Passes over the array so far (windows drawn / windows in the array)."""
        return self._cursor / self.n_windows

    def _order_of(self, epoch: int) -> np.ndarray:
        if epoch != self._order_pass:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.n_windows, generator=gen).numpy()
            self._order_pass = epoch
        return self._order

    def starts(self) -> np.ndarray:
        """The next ``batch_size`` window start positions."""
        out = np.empty(self.batch_size, dtype=np.int64)
        for i in range(self.batch_size):
            epoch, j = divmod(self._cursor, self.n_windows)
            out[i] = self._order_of(epoch)[j] * (self.n_ctx + 1)
            self._cursor += 1
        return out

    def state(self) -> torch.Tensor:
        """The position in the stream (an int64 tensor, safe for ``weights_only`` loading)."""
        return torch.tensor([self._cursor], dtype=torch.int64)

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a state from :meth:`state`."""
        self._cursor = int(state[0])


def make_sampler(kind: str, tokens: np.ndarray, batch_size: int, n_ctx: int, *,
                 seed: int = 0) -> BatchSampler | EpochSampler:
    """The sampler named ``kind`` (one of :data:`SAMPLERS`)."""
    if kind == "random":
        return BatchSampler(tokens, batch_size, n_ctx, seed=seed)
    if kind == "epoch":
        return EpochSampler(tokens, batch_size, n_ctx, seed=seed)
    raise ValueError(f"unknown sampler {kind!r}; use one of {SAMPLERS}")
