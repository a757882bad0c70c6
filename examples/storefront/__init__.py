"""The example shop: a Django storefront that sends TriggerHub its signals, and ``manage.py demo``.

An example, not the product: installed and routed in development only (``TRIGGERHUB_MODE``
other than production), never packaged. Its app label stays ``storefront``, so its tables,
migrations and URL names are those it had when it lived at the top of the repository.
"""
