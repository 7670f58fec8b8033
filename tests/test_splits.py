"""Grouped k-fold splits: disjoint by patient, every case tested once, validation share, seed, scikit-learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from medseg.data import assign_folds, fold_datalists, kfold_splits


def _datalist(n_cases: int = 60, n_patients: int = 23) -> list[dict]:
    rng = np.random.default_rng(5)
    patients = rng.integers(0, n_patients, n_cases)
    return [
        {"image": f"/d/{i}.png", "label": f"/d/{i}@.png", "case": f"c{i:03d}", "patient": f"p{p:02d}"}
        for i, p in enumerate(patients)
    ]


def test_folds_are_disjoint_by_patient_and_cover_every_case_once():
    datalist = _datalist()
    patient = {e["case"]: e["patient"] for e in datalist}
    folds = kfold_splits(datalist)  # defaults: k = 4, validation 10 %, seed 0
    assert len(folds) == 4
    tested = [case for fold in folds for case in fold.test]
    assert sorted(tested) == sorted(patient)  # every case in exactly one test subset
    for fold in folds:
        subsets = [set(fold.train), set(fold.validation), set(fold.test)]
        assert set().union(*subsets) == set(patient) and sum(map(len, subsets)) == len(patient)
        groups = [{patient[c] for c in s} for s in subsets]
        assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
        train_groups = len(groups[0] | groups[1])
        assert len(groups[1]) == math.ceil(0.1 * train_groups)  # scikit-learn rounds the test share up


def test_test_subsets_are_scikit_learns_group_k_fold():
    datalist = _datalist()
    cases = np.array([e["case"] for e in datalist])
    groups = np.array([e["patient"] for e in datalist])
    expected = [
        sorted(cases[test]) for _, test in GroupKFold(4, shuffle=True, random_state=9).split(cases, groups=groups)
    ]
    assert [fold.test for fold in kfold_splits(datalist, seed=9)] == expected


def test_seed_reproduces_and_changes_the_splits():
    datalist = _datalist()
    assert kfold_splits(datalist, seed=1) == kfold_splits(list(reversed(datalist)), seed=1)
    assert kfold_splits(datalist, seed=1) != kfold_splits(datalist, seed=2)


def test_cases_without_patient_are_their_own_group_and_no_validation_when_zero():
    datalist = [{"case": f"s{i}"} for i in range(8)]
    folds = kfold_splits(datalist, n_folds=4, val_fraction=0.0)
    assert [len(f.test) for f in folds] == [2, 2, 2, 2] and all(not f.validation for f in folds)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        kfold_splits([{"case": "a"}, {"case": "a"}, {"case": "b"}], n_folds=2)
    with pytest.raises(ValueError, match=r"between 2 and the number of groups \(3\), got 4"):
        kfold_splits([{"case": c} for c in "abc"])
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        kfold_splits(_datalist(), val_fraction=1.0)


def test_folds_saved_in_the_datalist_and_read_back(tmp_path):
    datalist = _datalist()
    folds = kfold_splits(datalist)
    entries = assign_folds(datalist, folds)
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": entries, "folds": [f.to_dict() for f in folds]}))
    for fold in folds:
        subsets = fold_datalists(path, fold.fold)
        assert [e["case"] for e in subsets["test"]] == fold.test
        assert all(e["fold"] == fold.fold for e in subsets["test"])
        assert all(e["fold"] != fold.fold for e in subsets["train"] + subsets["validation"])
    with pytest.raises(ValueError, match="fold 4 not in the datalist, which has 4 fold"):
        fold_datalists(path, 4)


def test_one_fold_trains_on_every_group_but_the_validation_share():
    """``n_folds=1``: a model to use rather than to measure: no test subset, a validation share of whole groups."""
    from medseg.data import training_split

    entries = [{"case": f"scan{k}-slice{s}", "patient": f"scan{k}"} for k in range(4) for s in range(3)]
    fold = training_split(entries, val_fraction=0.1, seed=0)
    assert fold.test == [] and len(fold.validation) == 3 and len(fold.train) == 9
    assert len({case.split("-")[0] for case in fold.validation}) == 1  # one whole scan, never split
    assert not {case.split("-")[0] for case in fold.validation} & {case.split("-")[0] for case in fold.train}
