"""Association-rule stage: which products, categories and conditions go together."""
