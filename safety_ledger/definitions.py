"""The definitions every figure is shown with: one dictionary, read by the dashboard
(dashboard/data.py) and the board pack (safety_ledger/report.py).

Plain data, no Streamlit: the core never imports it.  The wording follows
shared/contracts/marts-v1.md and warehouse/README.md.
"""
from __future__ import annotations

DEFINITIONS = {
    "reaction_rate": "Reaction rate = infusions with ≥1 current reaction / current infusions; "
                     "95% Wilson score interval.",
    "grade3plus_rate": "Grade 3+ rate = infusions whose highest current reaction grade is ≥3 / "
                       "current infusions; 95% Wilson score interval.",
    "rechallenge_success": "Rechallenge success = (tolerated + breakthrough) / rechallenged patients "
                           "(rechallenge = first infusion after the index reaction); "
                           "95% Wilson score interval.",
    "rechallenge_tiers": "Tolerated = completed with no reaction; breakthrough = completed, reactions "
                         "all grade 1–2; failed = not completed, or any reaction of grade ≥3.",
    "rechallenge_protocol": "Protocol = that of the rechallenge infusion, as the site sent it: "
                            "standard; extended (slowed rate); stepwise (a graded fraction, then the "
                            "remainder); desensitization. Success by protocol = (tolerated + "
                            "breakthrough) / rechallenged patients whose rechallenge used that "
                            "protocol; 95% Wilson score interval; no rate (—) when none did.",
    "rechallenge_reference": "Reference: the seed case series' Table 4 (“Premedication, infusion "
                             "adjustments, and outcomes of cadonilimab rechallenge in hypersensitivity "
                             "cases”), cases 1, 2 and 4, as published. The table has no protocol "
                             "column: protocol is read from its “Infusion adjustment” wording (case 1 "
                             "“infused over 2 h (instead of 1 h)” → extended; case 2 “Stepwise "
                             "infusion” → stepwise; case 4 “Extended infusion to 2 h” → extended) and "
                             "the tier from its reaction and outcome columns (it gives no CTCAE "
                             "grade). Published figures, not this warehouse's.",
    "observed_expected": "Observed/expected = the site's infusions with a reaction / the sum over its "
                         "infusions of the pooled reaction rate of their (cycle, tumor type) stratum; "
                         "outside funnel = outside the exact binomial 99.8% limits around that "
                         "expectation.",
    "irae": "irAE month = calendar month of onset_date; treated patients = distinct patients with an "
            "infusion started in that month.",
    "submission_rows": "Rows = events + duplicates + quarantined: every data row of an accepted "
                       "submission ends as exactly one of the three.",
    "current": "All figures count current records only: the latest version of each record, "
               "without retracted records and what hangs off them.",
}
