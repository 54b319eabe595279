"""Data: dataset sources chosen by spec string, split into a :class:`Dataset`."""
from edgekit.data.dataset import Dataset, DatasetInfo, load_dataset
from edgekit.data.idx import load_idx_folder, read_idx
from edgekit.data.sources import SOURCES, parse_spec

__all__ = ["Dataset", "DatasetInfo", "load_dataset", "load_idx_folder", "read_idx", "SOURCES", "parse_spec"]
