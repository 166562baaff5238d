"""The tune stage's Ray Tune searcher (``searcher.PairSearcher``): every pair tuned alike in its own Optuna
studies (``journal``, with the indexed ``samplers``), then the seed runs its seed design asks for, queued in
populations (``seed_queue``). What follows a pair's tuning is the design's to say (``sweeps.designs``)."""
