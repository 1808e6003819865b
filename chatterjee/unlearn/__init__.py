"""Deep unlearning: remove training samples from a trained PyTorch model.

Needs torch (``pip install chatterjee[torch]``); ``import chatterjee`` does not import
this subpackage.
"""
