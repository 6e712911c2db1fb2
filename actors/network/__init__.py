"""Task networking: pinned network namespaces (plain system calls) and CNI attachment.

- ``netns``: create/pin/remove a network namespace file with loopback up
- ``cni``: run a CNI network configuration list (ADD/DEL) against a netns
"""
