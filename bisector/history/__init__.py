"""The history store: every run and result, per commit, over SQLAlchemy Core."""

from .store import HistoryStore, Pruned, ResultRow, RunRow, display_url

__all__ = ["HistoryStore", "Pruned", "ResultRow", "RunRow", "display_url"]
