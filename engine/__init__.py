"""The host side of the local Docker engine (see dockerd.sh); the runc wrapper is importable for its tests."""
