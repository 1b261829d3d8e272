"""The quota arithmetic per flavor, as tables: nominal, borrowing and lending in a cohort."""

from __future__ import annotations

import pytest

from placement.queueing import Flavor, FlavorQuota, Queue, QuotaBook

H100 = Flavor.of("H100", "on-demand")


def book(*queues: tuple[str, int, int | None, int | None, int], cohort: str | None = "c") -> QuotaBook:
    """Queues as (name, nominal, borrowingLimit, lendingLimit, usage) on H100 on-demand."""
    b = QuotaBook(Queue(n, (FlavorQuota(H100, nom, bl, ll),), cohort=cohort) for n, nom, bl, ll, _ in queues)
    for n, _, _, _, used in queues:
        b.add(n, H100, used)
    return b


@pytest.mark.parametrize(
    ("queues", "available_to_a"),
    [
        # Alone: nominal - usage.
        ([("a", 16, None, None, 0)], 16),
        ([("a", 16, None, None, 10)], 6),
        # b idle lends all 16: a gets 16 own + 16 borrowed.
        ([("a", 16, None, None, 0), ("b", 16, None, None, 0)], 32),
        # borrowingLimit 4 caps a at 16 + 4 = 20.
        ([("a", 16, 4, None, 0), ("b", 16, None, None, 0)], 20),
        ([("a", 16, 4, None, 18), ("b", 16, None, None, 0)], 2),
        # b lends at most 6 (lendingLimit): 16 + 6.
        ([("a", 16, None, None, 0), ("b", 16, None, 6, 0)], 22),
        # b uses 12 of its 16; it keeps 10 (16 - lendingLimit 6) for itself, so 2 of its
        # lendable 6 are in use: a may borrow 4 → 16 + 4.
        ([("a", 16, None, None, 0), ("b", 16, None, 6, 12)], 20),
        # b borrowed 8 of a's nominal (b at 24/16): a has 16 - 8 = 8 left though it uses nothing.
        ([("a", 16, None, None, 0), ("b", 16, None, None, 24)], 8),
        # a's lendingLimit 0 keeps all of its 16 for itself, whatever b does: b cannot borrow it.
        ([("a", 16, None, 0, 0), ("b", 16, None, None, 16)], 16),
        # Three queues, b at 10/16 and c at 20/16 (borrowing 4): pool 48 - used 30 = 18 for a.
        ([("a", 16, None, None, 0), ("b", 16, None, None, 10), ("c", 16, None, None, 20)], 18),
    ],
)
def test_available_quota_is_own_unused_nominal_plus_what_the_cohort_lends_within_limits(
    queues: list[tuple[str, int, int | None, int | None, int]], available_to_a: int
) -> None:
    assert book(*queues).available("a", H100) == available_to_a


def test_a_queue_without_a_cohort_borrows_nothing() -> None:
    b = QuotaBook([Queue("a", (FlavorQuota(H100, 16),)), Queue("b", (FlavorQuota(H100, 16),))])
    assert b.available("a", H100) == 16
    b.add("a", H100, 16)
    assert b.available("a", H100) == 0 and b.available("b", H100) == 16


def test_the_status_line_shows_usage_borrowing_lending_and_what_the_cohort_has_left() -> None:
    b = book(("a", 16, 8, None, 16), ("b", 16, None, None, 16))
    assert b.status("a", H100).describe(8) == (
        "queue a: H100 on-demand 16/16 used, cohort has 0 to lend; needs 8, 0 available"
    )
    b = book(("a", 16, 8, None, 20), ("b", 16, None, None, 4))
    s = b.status("a", H100)
    # pool 32, used 20 + 4 = 24: 8 free, but a's limit is 16 + 8 = 24 → 4 more.
    assert (s.used, s.borrowed, s.available, s.borrowable) == (20, 4, 4, 4)
    assert s.describe() == "queue a: H100 on-demand 20/16 used (borrowing 4, limit 8), cohort has 4 to lend"
    # b: 4 of 16 used, own unused 12, but only 8 are free in the pool: 4 of its quota lent to a.
    assert b.status("b", H100).describe() == (
        "queue b: H100 on-demand 4/16 used, 4 of its quota lent to the cohort, cohort has 0 to lend"
    )


def test_flavors_in_different_regions_do_not_share_a_pool() -> None:
    east, west = Flavor.of("H100", "on-demand", "east"), Flavor.of("H100", "on-demand", "west")
    b = QuotaBook([Queue("a", (FlavorQuota(east, 8),), cohort="c"), Queue("b", (FlavorQuota(west, 8),), cohort="c")])
    assert b.available("a", east) == 8 and b.available("a", west) == 0


def test_most_ever_is_the_ceiling_with_the_cohort_idle() -> None:
    b = book(("a", 16, 4, None, 0), ("b", 16, None, None, 16))
    assert b.most_ever("a", H100) == 20  # 16 + borrowingLimit 4, although b uses all of its own now
    b = book(("a", 16, None, None, 0), ("b", 16, None, 6, 0))
    assert b.most_ever("a", H100) == 22
