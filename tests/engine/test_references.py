"""The literature beside each verdict: every ablation cites its reference measurement, and the report shows it."""

import html

import pytest

from ablations.engine.registry import all_ablations
from ablations.engine.report import write_report
from ablations.engine.spec import Reference

ABLATIONS = all_ablations()


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_claim_names_its_reference_measurement_and_how_it_was_checked(name):
    reference = ABLATIONS[name].reference
    assert isinstance(reference, Reference)
    assert all(getattr(reference, field).strip() for field in ("citation", "short", "where", "value", "regime", "here", "checked"))
    assert reference.short.split()[-1] in reference.citation  # the year the report names is the cited one
    assert reference.comparison() == f"{reference.short}, {reference.where}: {reference.regime}; here: {reference.here}"


def test_the_report_shows_each_reference_beside_its_claim_even_before_a_run(tracker):
    report = write_report(tracker=tracker).read_text()
    summary, sections = report.split("<p class='rule'>")
    for ablation in ABLATIONS.values():
        reference = ablation.reference
        cell = f"<td>{html.escape(reference.short)}, {html.escape(reference.where)}: {html.escape(reference.value)}</td></tr>"
        assert cell in summary, ablation.name
        section = sections.split(f"<h2 id='{ablation.name}'>")[1].split("<h2 ")[0]
        assert html.escape(reference.citation) in section and html.escape(reference.comparison()) in section
        assert html.escape(reference.checked) in section
