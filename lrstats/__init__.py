"""lrsweep's statistics: pure functions over arrays (numpy, scipy and the standard library; no I/O).

The tests, intervals and multiple-comparison corrections of the report (`stats`), Kim & Nelson's
selection procedure, MCB and the fixed designs with their simulations (`selection`), the selection
design replayed from seed scores (`replay`), the interval over seeds and test rows (`two_level`) and
the statistics of several tuning studies per pair (`studies`). `sweeps` asks them during a sweep and
`reports` for the verdict; this package imports neither, nor Ray, torch, pyarrow or pandas
(tests/test_import_layers.py), so a simulation can call it thousands of times.

Named `lrstats`, not `stats` or `statistics`: a top-level `statistics` would shadow the standard
library's, and a bare `stats` invites a clash with other installed top-level packages.
"""
