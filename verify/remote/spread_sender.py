"""Send one UDP datagram per flow to the VIP, each from its own source port (bgp.ecmp-spread).

With fib_multipath_hash_policy=1 the router hashes on L4 ports, so distinct source ports are
distinct flows that ECMP may place on different nodes. Standard library only: it runs in the
router's namespace, not in this project's virtualenv.
Usage: python3 spread_sender.py <dst> <port> <first source port> <flows>
"""

import socket
import sys


def main() -> None:
    dst, port, first, flows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    for sport in range(first, first + flows):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("", sport))
            s.sendto(b"cdl-ecmp-spread", (dst, port))
    print(flows)


main()
