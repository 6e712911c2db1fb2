"""The actor runtime: actors, mailboxes, supervisors.  Knows nothing of plugins."""

from .actor import Actor, ActorRef, Envelope, Mailbox, handles, run_actor
from .supervisor import ChildSpec, Escalation, Restart, Strategy, Supervisor

__all__ = [
    "Actor", "ActorRef", "ChildSpec", "Envelope", "Escalation", "Mailbox", "Restart",
    "Strategy", "Supervisor", "handles", "run_actor",
]
