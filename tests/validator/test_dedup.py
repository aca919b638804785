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


def test_changelog_values_round_trip() -> None:
    assert decode_seen(encode_seen(1_796_166_971_777)) == 1_796_166_971_777
    assert decode_seen(b"short") is None
    assert decode_seen(None) is None
