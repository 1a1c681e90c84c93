"""Operating the pipeline: checks that gate it and what it hands to people.

`quality`: Great Expectations suites and Data Docs; `mart_checks`: the published marts' own rules;
`contract_check`: a warehouse against the contract's shapes and privacy rules; `alerts`: failed runs
and rejected batches; `insight`: the snapshot the insight app reads.

May import: every other lib package (the top layer).
"""
