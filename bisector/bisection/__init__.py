"""The pipeline one bisection flows through (docs/adr/0016-bisection-pipeline.md).

`plan` (tests, range, mode) → `prober` (reuse what the store knows, run the rest as a round
through an `Executor`, record each probe: the only writer) → `drive` (one loop for every
`search.Search`) → `merges`, `conclude` (findings, owners); `evidence` is the pure record of
outcomes and verdicts, `ends` the checks of the range's ends, `deterministic` the bisection,
merges and confirmation of the tests that allow it, `flaky` the flake-aware search,
`bisect_log` the replayable `git bisect` log, `journal` the bisection's resumable row.
`finder.Finder` wires them.
"""
