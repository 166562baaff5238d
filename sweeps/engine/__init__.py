"""The engine: one Ray Tune experiment that runs a sweep's tune and seed stages (``experiment``), the Ray
side of it (``ray_setup``, ``schedulers``, ``trial_entry`` on the workers) and the LR range tests before
tuning (``calibrate``)."""
