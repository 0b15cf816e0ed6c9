"""Progress bars (ddlib.core.progress): labels that say what runs, and a final 100 % state for every bar."""

import io
from types import SimpleNamespace

from ddlib.core.progress import bar_label, dataset_tag, progress, run_tag, weighting_tag


def _dataset(name="colored_mnist", ratio=0.05, unbiased=False):
    return SimpleNamespace(name=name, provenance={"spec": {"conflict_ratio": ratio, "unbiased": unbiased}})


def test_labels_name_the_data_set_ratio_method_weighting_ipc_seed_and_stage():
    assert dataset_tag(_dataset()) == "colored_mnist 5%"
    assert dataset_tag(_dataset(ratio=0.005)) == "colored_mnist 0.5%"
    assert dataset_tag(_dataset(unbiased=True)) == "colored_mnist unbiased"
    assert weighting_tag({"kind": "none"}) == "" and weighting_tag(None) == ""
    assert weighting_tag({"kind": "kde", "kde": {}}) == "+kde"
    assert run_tag("DM", 10, {"kind": "kde"}, 2) == "DM+kde ipc=10 seed=2"
    assert bar_label(_dataset(), run_tag("DM", 10), "distil") == "colored_mnist 5% · DM ipc=10 · distil"
    assert ":" not in bar_label(_dataset(), "evaluate [1/3]")  # the terminal reads "<label>: NN%|"


def test_a_bar_cleared_on_close_shows_its_final_state_first():
    out = io.StringIO()
    bar = progress(range(4), desc="x", leave=False, file=out, mininterval=1e9)
    for _ in bar:
        pass
    assert "x: 100%" in out.getvalue().replace("\r", "\n")


def test_a_bar_that_stops_early_ends_at_100_percent_of_what_ran():
    out = io.StringIO()
    bar = progress(None, desc="full data", total=10, leave=False, file=out, mininterval=1e9)
    bar.update(3)
    bar.stop_early("plateau")
    bar.close()
    final = [s for s in out.getvalue().replace("\r", "\n").splitlines() if s.strip()][-1]
    assert "100%" in final and "3/3" in final and "plateau at 3 of 10" in final


def test_a_disabled_bar_prints_nothing():
    out = io.StringIO()
    bar = progress(None, desc="x", total=5, disable=True, file=out)
    bar.update(2)
    bar.stop_early()
    bar.close()
    assert out.getvalue() == ""
