"""Developer tooling, not shipped with the product or its models: the record generator
(`tooling.synth`) that makes test fixtures and benchmark data."""
