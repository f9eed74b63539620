"""One module per domain, each declaring its routes: method, path, permission, schemas,
handler. :func:`api.app.build_routes` puts them in one table (room is left for recordings
and the audit log, each a module here)."""
