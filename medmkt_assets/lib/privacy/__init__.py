"""Privacy rules of the data contract (section 3), as code every layer above applies.

`identifiers`: which columns identify a person and where they may live; `pseudonym`: the keyed
HMAC that replaces patient ids; `suppression`: small cells hidden in anything that counts people;
`audiences`: consent-aware marketing audiences with holdouts.

May import: lib.engine.
"""
