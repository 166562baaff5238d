"""lrsweep's results layer: the Parquet tables' schema (`schema`), reading and writing them on a local
path or a URI (`store`), one way to write a file whole (`store.write_whole`) and the named write points
the kill tests stop at (`crashpoints`).

pyarrow and the standard library only, below `sweeps` (which writes the tables) and `reports` (which
reads them), and importing neither (tests/test_import_layers.py): a report runs without Ray or torch.
"""
