"""The whole checks catalogue: the datapath checks and the BGP checks, in one order."""

from __future__ import annotations

from verify.bgp_checks import BGP_CATALOGUE
from verify.checks import DATAPATH_CHECKS, Check

CATALOGUE: tuple[Check, ...] = DATAPATH_CHECKS + BGP_CATALOGUE


def for_stack(stack: str) -> list[Check]:
    return [c for c in CATALOGUE if stack in c.stacks]


def by_id(check_id: str) -> Check:
    for c in CATALOGUE:
        if c.id == check_id:
            return c
    raise KeyError(f"unknown check {check_id!r}; known: {', '.join(c.id for c in CATALOGUE)}")
