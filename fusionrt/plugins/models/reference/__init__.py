"""The reference fused perception model (plugin ``reference``).

``model`` is the plugin (numpy only), ``network`` and ``weights`` the PyTorch side, ``train``
the training code and ``eval`` the evaluation (``fusionrt train`` / ``fusionrt eval``).
"""
