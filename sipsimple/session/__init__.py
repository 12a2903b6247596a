"""Sessions: the seed's ``sipsimple.session.Session`` and ``SessionManager``."""

from sipsimple.session.manager import SessionManager
from sipsimple.session.session import STATES, Session, SessionError, SessionOutcome, SessionStateError

__all__ = ["Session", "SessionManager", "SessionError", "SessionOutcome", "SessionStateError", "STATES"]
