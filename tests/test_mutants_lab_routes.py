"""lab/routes.py cases a mutation run (`make mutation`) found no test for."""

from __future__ import annotations

from lab.routes import RouteTable


def test_only_gateway_routes_are_declared() -> None:
    """A three-word line that is not `<dest> via <gateway>` (a device route) declares nothing:
    its device must never reach the checks as a next hop."""
    table = RouteTable(
        {
            "n1": ("10.0.0.0/27 via 172.30.4.3", "192.168.9.0/24 dev eth0"),
            "n2": ("10.0.0.0/16 nexthop via 172.30.5.254 nexthop via 172.30.5.253",),
        }
    )
    assert table.declared() == [{"node": "n1", "dest": "10.0.0.0/27", "via": "172.30.4.3"}]
