"""What every step of one bisection shares: the repository, the prober (and through it the
evidence), the trails of `git bisect` verdicts, and the search settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..gitrepo import Repository
from ..progress import Progress, Silent
from .bisect_log import Trails
from .evidence import Evidence
from .prober import Prober


@dataclass
class Context:
    repo: Repository
    prober: Prober
    jobs: int = 1
    max_untestable: int | None = None
    confidence: float = 0.99
    max_probes: int | None = None
    progress: Progress = field(default_factory=Silent)
    trails: Trails = field(default_factory=Trails)
    # tests whose stored history, before this bisection ran anything, shows them steady
    # (conclude.STEADY_RUNS clean runs): their culprits need fewer confirming runs
    steady: frozenset[str] = frozenset()

    @property
    def evidence(self) -> Evidence:
        return self.prober.evidence
