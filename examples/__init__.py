"""Examples that show TriggerHub at work; none of them is part of the product.

They are not packaged (``pyproject.toml`` leaves ``examples*`` out) and the product never
imports them: settings install and route ``examples.storefront`` in development and in
``manage.py demo`` only.
"""
