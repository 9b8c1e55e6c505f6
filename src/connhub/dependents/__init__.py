"""Dependents: another system's record that it relies on a connection (blocks its delete).

Models, syncs or a source referring to a shared connection register themselves here; the
``connection_dependents`` foreign key is ``ON DELETE RESTRICT``, so the database itself refuses
to delete a connection that still has any, whichever face asks.
"""
