"""The ``adversarial`` check: search generated inputs for ones a backend gets wrong.

``specs`` registers it (import-light); ``check`` scores a generated corpus in batches and
``search`` lets Hypothesis shrink and replay failures. docs/adversarial.md has the details.
"""
