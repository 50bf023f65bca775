"""The history store: every run and result, per commit, over SQLAlchemy Core.

`HistoryStore` (store.py) is the door; behind it `engine`, `runs`, `reads`, `journal`,
`ledger` and `prune` each do one job (docs/adr/0018).
"""

from .store import HistoryStore, MissingStore, Pruned, ResultRow, RunRow, display_url

__all__ = ["HistoryStore", "MissingStore", "Pruned", "ResultRow", "RunRow", "display_url"]
