"""Shared-prefix plans: which rows encode a common prefix once, and how long it is."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_identical_prompts_share_all_but_their_last_token() -> None:
    from reasonloop.training.prefixes import shared_prefixes

    a, b = [1, 2, 3, 4, 5], [9, 8, 7]
    runs = shared_prefixes([a, b, a, a, b])
    assert sorted((p, sorted(rows)) for p, rows in runs) == [(2, [1, 4]), (4, [0, 2, 3])]


def test_rows_sharing_little_stay_apart_and_every_row_appears_once() -> None:
    from reasonloop.training.prefixes import shared_prefixes

    long = list(range(10, 40))
    prompts = [[*long, 1], [*long, 2], [5], [*long[:2], 99], [*long, 1, 7]]
    runs = shared_prefixes(prompts)
    assert sorted(i for _, rows in runs for i in rows) == [0, 1, 2, 3, 4]
    by_row = {i: p for p, rows in runs for i in rows}
    assert by_row[0] == by_row[1] == by_row[4] == 30  # the 30 shared ids, encoded once for three rows
    assert by_row[2] == 0  # a one-token prompt encodes its token itself
    for p, rows in runs:  # a prefix is common to its rows and leaves each at least one token
        assert all(prompts[i][:p] == prompts[rows[0]][:p] and len(prompts[i]) > p for i in rows)


def test_padding_helpers_place_tokens_and_positions() -> None:
    from reasonloop.training.prefixes import left_padded, positions_of, right_padded

    ids, mask = left_padded([[7, 8], [9]], 3, 0)
    assert ids.tolist() == [[0, 7, 8], [0, 0, 9]] and mask.tolist() == [[0, 1, 1], [0, 0, 1]]
    assert positions_of(mask).tolist() == [[0, 0, 1], [0, 0, 0]]
    ids, mask = right_padded([[7, 8], []], 3, 0)
    assert ids.tolist() == [[7, 8, 0], [0, 0, 0]] and mask.tolist() == [[1, 1, 0], [0, 0, 0]]
