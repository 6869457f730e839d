"""The sans-I/O core: rooms, members, presence and the tick, as plain objects with no I/O inside."""

from shoal.core.actions import Action, Close, Send
from shoal.core.engine import Engine
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.core.room import Room

__all__ = ["Action", "Close", "Engine", "Limits", "Member", "Room", "Send"]
