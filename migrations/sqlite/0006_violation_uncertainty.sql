-- How sure a violation is, given its terminal's GPS noise (issue 15): a JSON
-- object {sigma_m, confidence, low, high, fixes}, NULL for the codes that do not
-- depend on position and for violations raised before this column.
ALTER TABLE violations ADD COLUMN uncertainty TEXT;
