"""What a sweep leaves on disk and how it is read back: the sweep directory (``storage``), the durable
record a resume rebuilds from (``durable``), the Parquet tables (``results``) and an extended sweep's
steps (``extensions``). Nothing here starts Ray (docs/DURABILITY.md)."""
