"""Task networking: pinned network namespaces (pyroute2) and CNI attachment.

- ``netns``: create/pin/remove a network namespace file with loopback up
- ``cni``: run a CNI network configuration list (ADD/DEL) against a netns
"""
