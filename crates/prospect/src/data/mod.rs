//! Datasets: readers, the bundled default, fetching, and dataset operations.
