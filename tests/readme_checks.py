"""The README's checks table, written out by hand: which check runs on which stack.

Tests compare the program (the catalogue, `verify list`, the Verify resources of each stack)
with this table, never with the program's own lookup, so a check wired to the wrong stack fails
a test. `tests/fast/test_catalogue.py` keeps this copy and README's table equal.
"""

from __future__ import annotations

STACKS = ("overlay", "geneve", "native-auto", "static", "bgp")
_ALL = STACKS
_TUNNEL = ("overlay", "geneve")
_NATIVE = ("native-auto", "static", "bgp")

# check -> stacks, in README order
README_CHECKS: dict[str, tuple[str, ...]] = {
    "intranode.ping": _ALL,
    "intranode.path": ("overlay",),
    "datapath.bpf-hooks": _ALL,
    "datapath.cilium-host": _ALL,
    "overlay.routes": _TUNNEL,
    "overlay.device": _TUNNEL,
    "overlay.capture": _TUNNEL,
    "native.no-tunnel": _NATIVE,
    "native.routes": ("native-auto",),
    "native.pools": ("native-auto",),
    "native.capture": ("native-auto", "static"),
    "static.fails-without-routes": ("static",),
    "static.routes": ("static",),
    "static.ping": ("static",),
    "datapath.trace": _ALL,
    "path.mtu": _ALL,
    "bgp.sessions": ("bgp",),
    "bgp.pod-cidrs": ("bgp",),
    "bgp.ecmp": ("bgp",),
    "bgp.ecmp-spread": ("bgp",),
    "bgp.transit": ("bgp",),
}


def checks_of(stack: str) -> list[str]:
    """The README's checks of one stack, in README order."""
    return [check for check, stacks in README_CHECKS.items() if stack in stacks]
