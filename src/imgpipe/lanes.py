"""The records of one batch, processed concurrently without reordering any key.

SQS hands a batch of messages; each carries events about some keys. Messages that share a key
(transitively) form one *lane*, processed in batch order by one worker; lanes run side by side.
So two events of one key are never handled at once or out of order, while the network waits of
different keys overlap (on Lambda the billed time is the wall time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_MEMORY_MB = 1024


def lanes(keys_per_item: Sequence[Iterable[str]]) -> list[list[int]]:
    """Item indices grouped into lanes (union-find over shared keys), each lane in input
    order, lanes ordered by their first item."""
    parent = list(range(len(keys_per_item)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for index, keys in enumerate(keys_per_item):
        for key in keys:
            if key in first_with:
                a, b = root(first_with[key]), root(index)
                parent[max(a, b)] = min(a, b)
            else:
                first_with[key] = index
    grouped: dict[int, list[int]] = {}
    for index in range(len(keys_per_item)):
        grouped.setdefault(root(index), []).append(index)
    return sorted(grouped.values(), key=lambda lane: lane[0])


def record_workers(memory: int) -> int:
    """Lanes run at once: mostly waiting on the network, so more than Lambda's vCPUs (1,769
    MB buys one), bounded so that fetched originals waiting for a render slot stay small."""
    return max(2, min(8, memory // 256))


def render_slots(memory: int, max_decode_bytes: int) -> int:
    """Decodes at once: each may reach the decode budget (imaging.budget), and the runtime and
    libraries take about 256 MiB of their own."""
    return max(1, (memory - 256) * 1024 * 1024 // max_decode_bytes)
