"""Failure files are read only under the configured roots: no path traversal, no foreign bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_userattrs.ui import failures


def test_paths_inside_the_roots_are_allowed(tmp_path: Path) -> None:
    roots = [f"file://{tmp_path}", "s3://bucket/userattrs"]
    inside = tmp_path / "dag" / "run" / "failures.jsonl"
    assert failures.check_allowed(f"file://{inside}", roots) == f"file://{inside}"
    assert failures.check_allowed(str(inside), roots) == str(inside)
    assert failures.check_allowed("s3://bucket/userattrs/dag/run/failures.jsonl", roots)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "file://{root}/../outside.jsonl",
        "file://{root}/dag/../../outside.jsonl",
        "{root}",
        "s3://other-bucket/userattrs/x.jsonl",
        "s3://bucket/userattrs/../secrets.jsonl",
        "s3://bucket/userattrs-evil/x.jsonl",
        "",
        "file://{root}/x\x00.jsonl",
    ],
)
def test_paths_outside_the_roots_are_refused(tmp_path: Path, url: str) -> None:
    roots = [f"file://{tmp_path}", "s3://bucket/userattrs"]
    with pytest.raises(failures.FailureFileRefused):
        failures.check_allowed(url.format(root=tmp_path), roots)


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text('{"user_id": "x"}\n')
    (root / "link").symlink_to(outside)
    with pytest.raises(failures.FailureFileRefused):
        failures.check_allowed(f"file://{root}/link/secret.jsonl", [f"file://{root}"])


def test_extra_roots_come_from_the_airflow_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__USERATTRS__FAILURE_ROOTS", f"s3://bucket/a, {tmp_path}")
    roots = failures.configured_roots()
    assert "s3://bucket/a" in roots and str(tmp_path) in roots
    from airflow_provider_userattrs.sync.storage import default_failure_root

    assert roots[0] == default_failure_root()


def test_reasons_group_without_the_users_own_id() -> None:
    lines = [
        {"user_id": f"user-{i}", "attribute": "a", "reason": f"user user-{i}: not a date", "retryable": False}
        for i in range(3)
    ] + [{"user_id": 5, "attribute": "b", "reason": "record 17 has no field 'id'", "retryable": False}]
    summary = failures.summarize(iter(lines))
    assert [(g.reason, g.count) for g in summary.groups] == [
        ("user <user>: not a date", 3),
        ("record <n> has no field 'id'", 1),
    ]
