"""Observers of a sweep, which read it and never change a result: the progress lines and ``status``
(``progress``), the live view (``watch``) and the process that feeds experiment trackers (``tracking``)."""
