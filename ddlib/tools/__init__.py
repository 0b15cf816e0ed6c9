"""Command-line tools: benchmarks (``python -m ddlib.tools.benchmark_dm`` and siblings), the README
report (``python -m ddlib.tools.report``) and notebook hygiene (``python -m ddlib.tools.notebooks``)."""
