"""The user's entry points: the ``lrsweep`` command line (``cli``) and what its verbs run: ``launch``
(run, resume), ``extend``, ``reproduce`` and ``estimate`` (``lrsweep plan``)."""
