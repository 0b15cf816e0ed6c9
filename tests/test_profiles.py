

def test_each_profiles_summary_is_computed_from_its_budgets():
    from ddlib.profiles import PROFILES
    for profile in PROFILES.values():
        e = profile.evaluation
        assert f"× {e.train.epochs:,} evaluation epochs" in profile.summary
        assert f"{len(profile.seeds)} seed(s) × {e.n_models} model(s)" in profile.summary
        assert f"{profile.kde_method.dm.iterations:,} DM iterations" in profile.summary
