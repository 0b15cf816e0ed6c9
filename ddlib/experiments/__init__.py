"""One module per notebook (the runs, tables and figures each notebook shows), and the grid runner
they share.

* :mod:`.grid` — distil + evaluate + weight diagnostics per cell and seed, summaries with 95 %
  intervals over seeds, comparisons beyond noise, selection on the validation split;
* :mod:`.datasets` — ``00_datasets``: samples, counts and provenance of the biased data sets;
* :mod:`.bias_analysis` — ``01_bias_analysis``: does distillation amplify or suppress a bias?
* :mod:`.kde_supcon_distillation` — ``02_kde_supcon_distillation``: the paper's method on every data set
  and matching method, against its competitors;
* :mod:`.training_time_debiasing` — ``04_training_time_debiasing``: LfF, DFA, SelecMix and JTT on
  full data and on synthetic sets.
"""
