"""The keyset rule's pure parts: resume points, skipping settled rows, planning ranges."""

from __future__ import annotations

import datetime
import decimal

from airflow_provider_userattrs.sync.keyset import KeyRange, ResumePoint, key_of, key_ranges, skip_settled


def test_key_ranges_never_split_one_id_and_put_null_ids_in_the_first_chunk():
    keys = [None, None, "a", "b", "b", "b", "b", "c", "d"]
    ranges = key_ranges(keys, 3)  # b's four rows stay together: that chunk is larger than 3
    assert ranges == [KeyRange(None, "b", True), KeyRange("b", "c", False), KeyRange("c", None, False)]
    assert key_ranges([], 3) == []
    assert key_ranges(["a"], 3) == [KeyRange(None, None, True)]
    assert [r.low for r in key_ranges(range(10), 3)] == [None, 3, 6, 9]


def test_rows_settled_at_the_last_id_are_skipped_whatever_order_they_come_back_in():
    rows = [{"id": "b", "v": 1}, {"id": "b", "v": 2}, {"id": "b", "v": 3}, {"id": "c", "v": 4}]
    point = ResumePoint().after([("a", {"id": "a"}), ("b", rows[1]), ("b", rows[2])])
    assert (point.offset, point.key, len(point.at_key)) == (3, "b", 2)
    again = [rows[2], rows[0], rows[1], rows[3]]  # the engine returns the ties in another order
    assert list(skip_settled(again, "id", point)) == [rows[0], rows[3]]


def test_keys_keep_json_types_and_turn_the_rest_into_text():
    assert key_of(decimal.Decimal("7")) == 7 and isinstance(key_of(decimal.Decimal("7")), int)
    assert key_of(decimal.Decimal("7.5")) == 7.5
    assert key_of(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert key_of(b"x") == "x" and key_of(None) is None and key_of("u") == "u"
