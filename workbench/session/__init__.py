"""The Session: one method per user action over a workspace folder, its state and its observers."""

from .session import Change, Session

__all__ = ["Change", "Session"]
