"""One module per notebook: the runs, tables and figures each notebook shows.

* :mod:`.datasets` — ``00_datasets``: samples, counts and provenance of the biased data sets;
* :mod:`.bias_analysis` — ``01_bias_analysis``: does distillation amplify or suppress a bias?
* :mod:`.kde_supcon_distillation` — ``02_kde_supcon_distillation``: the paper's method and its ablations.
"""
