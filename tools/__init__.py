"""Tools beside the domain: the synthetic landing generator and the benchmark."""
