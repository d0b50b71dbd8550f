"""The command line: `observance …` on top of the domain (pipelines) and the asset graph."""
