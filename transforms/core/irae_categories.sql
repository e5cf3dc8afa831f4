-- One row per irAE category with at least one current irAE (of any patient): the
-- categories of the irAE follow-up (core.irae_followup) and of its two Kaplan-Meier marts.
CREATE OR REPLACE VIEW core.irae_categories AS
SELECT DISTINCT category FROM core.current_iraes;
