-- One row: what the dashboard's filters offer, from the current infusions: every site,
-- tumor type and regimen class, and the first and last day an infusion started.  Every
-- page reads it; reading one row instead of scanning every current infusion takes a
-- page load from about 70 ms to a few at 10 million events.
CREATE OR REPLACE TABLE core.filter_options AS
SELECT
    list(DISTINCT site_id ORDER BY site_id) AS sites,
    list(DISTINCT tumor_type ORDER BY tumor_type) FILTER (WHERE tumor_type IS NOT NULL)
        AS tumor_types,
    list(DISTINCT regimen_class ORDER BY regimen_class) AS regimen_classes,
    min(started_local_date) AS first_day,
    max(started_local_date) AS last_day
FROM core.infusion_outcomes;
