-- One row per event of a current patient's history (core.patient_events), numbered in
-- the order a case narrative tells them: event_order, 1 = first, per site_id and
-- patient_key.
--   order: the event's local date (an infusion's and its reactions' = the infusion's
--     started_local_date; an irAE's = its onset_date); within a date, infusions and their
--     reactions (by started_at, the infusion before its reactions, reactions by onset_min,
--     then reaction_ref) before irAEs (by irae_ref).
-- A view: the Case timeline page reads one patient at a time, and DuckDB numbers only
-- that patient's rows (the filter on site_id and patient_key goes below the window).
CREATE OR REPLACE VIEW marts.patient_timeline AS
SELECT
    row_number() OVER (
        PARTITION BY site_id, patient_key
        ORDER BY event_date, event_type = 'irae', started_at, infusion_ref,
                 event_type = 'reaction', onset_min, reaction_ref, irae_ref
    ) AS event_order,
    *
FROM core.patient_events;
