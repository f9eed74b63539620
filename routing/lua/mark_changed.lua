-- Hashes written outside the scripts: recorded in the change log so every copy reads them.
-- KEYS: version, changed ; ARGV: names ('a:<agent id>', 'c:<call id>', ...)
-- Returns 'marked'.
changed(unpack(ARGV))
return 'marked'
