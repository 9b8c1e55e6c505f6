"""The Warehouse face's domain: Snowflake key-pair onboarding over core connections.

``service`` maps the face onto ``connections`` (status, singleton, test), ``keypair`` makes
the RSA pair, ``setup_script`` renders the SQL the customer runs.
"""
