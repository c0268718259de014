"""load_car_parc and detector rates from model cards: strict readers with errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseline.aggregate import CarParc, load_car_parc, load_detector_rates, rates_from_cards
from baseline.errors import ConfigError, InputFileError, UnknownCityError

GOOD = """\
name: helsinki
display_name: Helsinki (central, OpenStreetMap extract)
timezone: Europe/Helsinki
car_parc: {value: 240000, year: 2023, source: "Traficom open data", note: "rounded, whole city", illustrative: true}
"""


def catalog(tmp_path: Path, text: str = GOOD, city: str = "helsinki") -> Path:
    (tmp_path / "cities").mkdir(exist_ok=True)
    (tmp_path / "cities" / f"{city}.yaml").write_text(text)
    return tmp_path


def test_reads_the_car_parc(tmp_path):
    parc = load_car_parc(catalog(tmp_path), "helsinki")
    assert parc == CarParc(240000, 2023, "Traficom open data", "rounded, whole city", True, "city")


def test_unknown_city_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownCityError, match="helsinki") as err:
        load_car_parc(catalog(tmp_path), "atlantis")
    assert "atlantis" in str(err.value)


@pytest.mark.parametrize("field", ["value", "year", "source", "note", "illustrative"])
def test_a_missing_field_is_named(tmp_path, field):
    entry = {"value": 240000, "year": 2023, "source": "s", "note": "n", "illustrative": True}
    del entry[field]
    text = "name: helsinki\ntimezone: Europe/Helsinki\ncar_parc: " + json.dumps(entry) + "\n"
    with pytest.raises(ConfigError, match=repr(field)):
        load_car_parc(catalog(tmp_path, text), "helsinki")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: helsinki\n", "no car_parc section"),
        ("car_parc: {value: many, year: 2023, source: s, note: n, illustrative: true}\n", "car_parc.value"),
        ("car_parc: {value: 10, year: 2023, source: s, note: n, illustrative: maybe}\n", "car_parc.illustrative"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_malformed_entries_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_car_parc(catalog(tmp_path, text), "helsinki")


def test_rates_from_model_cards(tmp_path):
    vehicle_card = {
        "name": "vehicles-centernet", "version": "1.0",
        "evaluation": {
            "tp": 900, "fp": 100, "fn": 300,
            "per_class": {"large": {"precision": 0.8, "recall": 0.5, "n_truth": 40}},
            "per_context": {"parked": {"tp": 300, "fp": 60, "fn": 200}},
            "per_class_context": {"car": {"moving": {"tp": 50, "fp": 5, "fn": 5}}},
        },
    }
    path = tmp_path / "card.json"
    path.write_text(json.dumps(vehicle_card))
    rates = load_detector_rates(None, path)
    assert rates.buildings is None
    assert rates.vehicles.precision == pytest.approx(0.9) and rates.vehicles.recall == pytest.approx(0.75)
    assert rates.vehicles.n_truth == 1200 and rates.vehicles.n_pred == 1000
    large = rates.vehicle_rate("large", ("parked",))
    assert large.recall == 0.5 and large.n_truth == 40 and large.n_pred == pytest.approx(25.0)
    assert rates.vehicle_rate("car", ("moving", "on_road")).n_truth == 55
    assert rates.vehicle_rate("car", ("parked",)).n_pred == 360
    assert rates.source == "vehicles-centernet@1.0"


def test_bad_cards_are_errors_that_say_where(tmp_path):
    with pytest.raises(ConfigError, match="no 'evaluation' section"):
        rates_from_cards({"name": "b"}, None)
    with pytest.raises(ConfigError, match=r"per_class\.car"):
        rates_from_cards(None, {"evaluation": {"tp": 1, "fp": 0, "fn": 0, "per_class": {"car": {"tp": 1}}}})
    with pytest.raises(ConfigError, match="recall"):
        rates_from_cards({"evaluation": {"precision": 0.9, "recall": 0.0, "n_truth": 10}}, None)
    with pytest.raises(InputFileError):
        load_detector_rates(tmp_path / "missing.yaml", None)


def test_per_class_rates_without_a_true_detection_fall_back_to_the_overall_rate():
    card = {"name": "v", "evaluation": {
        "tp": 90, "fp": 10, "fn": 30,
        "per_class": {"car": {"tp": 90, "fp": 8, "fn": 20}, "large": {"tp": 0, "fp": 0, "fn": 4}},
        "per_context": {"moving": {"tp": 0, "fp": 3, "fn": 2, "precision": None}},
    }}
    rates = rates_from_cards(None, card)
    assert "large" not in rates.vehicle_classes and "moving" not in rates.vehicle_contexts
    assert rates.vehicle_rate("large", ("moving", "on_road")) is rates.vehicles
    assert rates.vehicle_classes["car"].n_truth == 110
    assert any("per_class.large" in note for note in rates.notes)


def test_a_null_value_means_no_ratio_but_must_say_what_is_wanted(tmp_path):
    text = ("car_parc: {value: null, year: 2023, source: 'SDES, commune 75056', "
            "note: 'no count found yet', illustrative: true}\n")
    assert load_car_parc(catalog(tmp_path, text), "helsinki") is None
    without_note = "car_parc: {value: null, year: 2023, source: 'SDES'}\n"
    with pytest.raises(ConfigError, match="'note'"):
        load_car_parc(catalog(tmp_path, without_note), "helsinki")
