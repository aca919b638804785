"""The seen-ids window of one partition."""

from __future__ import annotations

from validator.dedup import SeenIds, decode_seen, encode_seen

DAY_MS = 86_400_000


def test_a_second_copy_within_the_window_is_a_duplicate() -> None:
    seen = SeenIds(7 * DAY_MS)
    assert seen.first_time("a", 1_000)
    assert not seen.first_time("a", 2_000)  # pending, same transaction
    seen.commit()
    assert not seen.first_time("a", 1_000 + 7 * DAY_MS)
    assert seen.first_time("a", 1_001 + 7 * DAY_MS)


def test_an_aborted_transaction_forgets_its_ids() -> None:
    seen = SeenIds(DAY_MS)
    assert seen.first_time("a", 1)
    seen.abort()
    assert seen.first_time("a", 1)
    seen.commit()
    assert len(seen) == 1


def test_restore_and_expiry() -> None:
    seen = SeenIds(DAY_MS)
    seen.restore("old", 0)
    seen.restore("new", 2 * DAY_MS)
    assert not seen.first_time("new", 2 * DAY_MS + 5)
    assert seen.expire() == 1
    assert len(seen) == 1
    assert seen.first_time("old", 2 * DAY_MS + 5)


def test_changelog_values_round_trip_in_bounded_records() -> None:
    entries = [(f"file:{i}", 1_796_166_971_777 + i) for i in range(12_001)]
    values = list(encode_seen(entries))
    assert len(values) == 3  # at most IDS_PER_RECORD ids per record
    assert [e for v in values for e in decode_seen(v)] == entries
    assert decode_seen(b"not json") == []
    assert decode_seen(b'[["a", 1], ["b"], [2, 3], "c"]') == [("a", 1)]
    assert decode_seen(None) == []
